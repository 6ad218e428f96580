/// Reads the method calls an assembly makes, from its IL, with the source line of each call taken from its
/// portable PDB. Used to check that Hybrid never lets TorchSharp create a temporary Scalar behind its back.
module Hybrid.Tests.Engine.IlCalls

open System
open System.IO
open System.Reflection.Metadata
open System.Reflection.Metadata.Ecma335
open System.Reflection.PortableExecutable

/// One call site: the calling method, the callee as `Namespace.Type::Name(parameter types)`, and where in
/// the source it is (file name and line, when a PDB is there).
type Call = {
    Caller: string
    Callee: string
    File: string
    Line: int
}

/// Names types for member signatures; generic instantiations are written out so overloads stay distinct.
type private TypeNames() =
    interface ISignatureTypeProvider<string, obj> with
        member _.GetPrimitiveType code = string code

        member _.GetTypeFromDefinition(reader, handle, _) =
            let t = reader.GetTypeDefinition handle
            reader.GetString t.Namespace + "." + reader.GetString t.Name

        member _.GetTypeFromReference(reader, handle, _) =
            let t = reader.GetTypeReference handle
            reader.GetString t.Namespace + "." + reader.GetString t.Name

        member _.GetTypeFromSpecification(_, _, _, _) = "spec"
        member _.GetSZArrayType element = element + "[]"
        member _.GetArrayType(element, _) = element + "[,]"
        member _.GetByReferenceType element = element + "&"
        member _.GetPointerType element = element + "*"
        member _.GetGenericInstantiation(g, args) = g + "<" + String.Join(",", args) + ">"
        member _.GetGenericTypeParameter(_, i) = "!" + string i
        member _.GetGenericMethodParameter(_, i) = "!!" + string i
        member _.GetFunctionPointerType _ = "fnptr"
        member _.GetModifiedType(_, unmodified, _) = unmodified
        member _.GetPinnedType element = element

/// Lengths of an IL instruction's opcode and operand at position i (ECMA-335 partition III).
let private instructionSize (il: byte[]) (i: int) : int * int =
    if il[i] = 0xFEuy then
        let operand =
            match il[i + 1] with
            | 0x06uy
            | 0x07uy
            | 0x15uy
            | 0x16uy
            | 0x1Cuy -> 4
            | 0x09uy
            | 0x0Auy
            | 0x0Buy
            | 0x0Cuy
            | 0x0Duy
            | 0x0Euy -> 2
            | 0x12uy
            | 0x19uy -> 1
            | _ -> 0

        2, operand
    else
        let operand =
            match il[i] with
            | b when b >= 0x0Euy && b <= 0x13uy -> 1 // ldarg.s … stloc.s
            | 0x1Fuy -> 1 // ldc.i4.s
            | 0x20uy
            | 0x22uy -> 4 // ldc.i4, ldc.r4
            | 0x21uy
            | 0x23uy -> 8 // ldc.i8, ldc.r8
            | b when b >= 0x27uy && b <= 0x29uy -> 4 // jmp, call, calli
            | b when b >= 0x2Buy && b <= 0x37uy -> 1 // short branches
            | b when b >= 0x38uy && b <= 0x44uy -> 4 // branches
            | 0x45uy -> 4 + 4 * BitConverter.ToInt32(il, i + 1) // switch
            | b when b >= 0x6Fuy && b <= 0x75uy -> 4 // callvirt … isinst
            | 0x79uy -> 4 // unbox
            | b when b >= 0x7Buy && b <= 0x81uy -> 4 // field access, stobj
            | 0x8Cuy
            | 0x8Duy
            | 0x8Fuy
            | 0xA3uy
            | 0xA4uy
            | 0xA5uy
            | 0xC2uy
            | 0xC6uy
            | 0xD0uy
            | 0xDDuy -> 4 // box, newarr, ldelema, ldelem, stelem, unbox.any, refanyval, mkrefany, ldtoken, leave
            | 0xDEuy -> 1 // leave.s
            | _ -> 0

        1, operand

/// Every call, callvirt, newobj, ldftn and ldvirtftn in the assembly at `path`.
let read (path: string) : Call list =
    use pe = new PEReader(File.OpenRead path)
    let md = pe.GetMetadataReader()
    let names = TypeNames()
    let pdbPath = Path.ChangeExtension(path, ".pdb")

    use pdbProvider =
        if File.Exists pdbPath then
            MetadataReaderProvider.FromPortablePdbStream(File.OpenRead pdbPath)
        else
            null

    let pdb = pdbProvider |> Option.ofObj |> Option.map (fun p -> p.GetMetadataReader())

    let typeName (handle: EntityHandle) =
        match handle.Kind with
        | HandleKind.TypeReference ->
            let t = md.GetTypeReference(TypeReferenceHandle.op_Explicit handle)
            md.GetString t.Namespace + "." + md.GetString t.Name
        | HandleKind.TypeDefinition ->
            let t = md.GetTypeDefinition(TypeDefinitionHandle.op_Explicit handle)
            md.GetString t.Namespace + "." + md.GetString t.Name
        | HandleKind.TypeSpecification ->
            md.GetTypeSpecification(TypeSpecificationHandle.op_Explicit handle).DecodeSignature(names, null)
        | _ -> "?"

    let rec methodName (handle: EntityHandle) : string option =
        match handle.Kind with
        | HandleKind.MethodDefinition ->
            let d = md.GetMethodDefinition(MethodDefinitionHandle.op_Explicit handle)
            let parameters = d.DecodeSignature(names, null).ParameterTypes
            let owner = typeName (TypeDefinitionHandle.op_Implicit (d.GetDeclaringType()))
            Some $"""{owner}::{md.GetString d.Name}({String.Join(",", parameters)})"""
        | HandleKind.MemberReference ->
            let r = md.GetMemberReference(MemberReferenceHandle.op_Explicit handle)

            if r.GetKind() = MemberReferenceKind.Method then
                let parameters = r.DecodeMethodSignature(names, null).ParameterTypes
                Some $"""{typeName r.Parent}::{md.GetString r.Name}({String.Join(",", parameters)})"""
            else
                None
        | HandleKind.MethodSpecification ->
            methodName (md.GetMethodSpecification(MethodSpecificationHandle.op_Explicit handle).Method)
        | _ -> None

    let where (m: MethodDefinitionHandle) (offset: int) =
        match pdb with
        | None -> "?", 0
        | Some r ->
            r.GetMethodDebugInformation(m.ToDebugInformationHandle()).GetSequencePoints()
            |> Seq.filter (fun p -> not p.IsHidden && p.Offset <= offset)
            |> Seq.tryLast
            |> Option.map (fun p -> Path.GetFileName(r.GetString(r.GetDocument(p.Document).Name)), p.StartLine)
            |> Option.defaultValue ("?", 0)

    [
        for m in md.MethodDefinitions do
            let d = md.GetMethodDefinition m

            if d.RelativeVirtualAddress <> 0 then
                let caller = (methodName (MethodDefinitionHandle.op_Implicit m)).Value
                let il = pe.GetMethodBody(d.RelativeVirtualAddress).GetILBytes()
                let mutable i = 0

                while i < il.Length do
                    let opLength, operandLength = instructionSize il i
                    let op = if opLength = 2 then 0xFE00 ||| int il[i + 1] else int il[i]

                    if op = 0x28 || op = 0x6F || op = 0x73 || op = 0xFE06 || op = 0xFE07 then
                        let token = BitConverter.ToInt32(il, i + opLength)

                        match methodName (MetadataTokens.EntityHandle token) with
                        | Some callee ->
                            let file, line = where m i

                            yield {
                                Caller = caller
                                Callee = callee
                                File = file
                                Line = line
                            }
                        | None -> ()

                    i <- i + opLength + operandLength
    ]
