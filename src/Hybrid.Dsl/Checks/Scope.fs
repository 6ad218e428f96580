namespace Hybrid

open System.Collections.Generic

/// Items grouped by name, each group in the items' order; built once, so a look-up costs the size of its
/// group rather than of the whole list. A null name is a key like any other.
type internal ByName<'T>(items: 'T list, nameOf: 'T -> string) =
    let groups = Dictionary<string, ResizeArray<'T>>()
    let nulls = ResizeArray<'T>()

    do
        for x in items do
            let n = nameOf x

            if isNull n then
                nulls.Add x
            else
                match groups.TryGetValue n with
                | true, g -> g.Add x
                | _ -> groups[n] <- ResizeArray [ x ]

    /// The items with this name, in order.
    member _.Get(name: string) : 'T list =
        if isNull name then
            List.ofSeq nulls
        else
            match groups.TryGetValue name with
            | true, g -> List.ofSeq g
            | _ -> []

    /// The first item with this name.
    member _.TryFirst(name: string) : 'T option =
        if isNull name then
            Seq.tryHead nulls
        else
            match groups.TryGetValue name with
            | true, g -> Some g[0]
            | _ -> None

    /// True when some item has this name.
    member _.Contains(name: string) : bool =
        if isNull name then
            nulls.Count > 0
        else
            groups.ContainsKey name

/// The model a check reads, with its declarations, equations, initial and boundary conditions indexed by
/// name once, so that the checks run in time linear in the model's size, and the syntax it was written in (the
/// syntax of the fixes its messages suggest).
type internal CheckScope(m: Model, syntax: ModelSyntax) =
    let declarations = Model.declarations m
    let declared = ByName(declarations, fst)
    let fields = ByName(m.Fields, (fun f -> f.Name))
    let closures = ByName(m.Closures, (fun c -> c.Name))
    let equations = ByName(m.Equations, (fun e -> e.Field))
    let initials = ByName(m.Initials, (fun i -> i.Field))
    let boundaries = ByName(m.Boundaries, (fun b -> b.Field))
    let diagnostics = ByName(m.Diagnostics, (fun d -> d.Name))
    let elliptic = ByName(m.EllipticEquations, (fun e -> e.Field))

    /// The model checked.
    member _.Model = m

    /// The syntax the model was written in.
    member _.Syntax = syntax

    /// Declared names with their kind ("field", "parameter", …), in declaration order (duplicates kept).
    member _.Declarations = declarations

    /// Declared names in declaration order (duplicates kept): the candidates of "Did you mean".
    member val Names = List.map fst declarations

    /// Field names in declaration order: the candidates of "Did you mean" for a field.
    member val FieldNames = m.Fields |> List.map (fun f -> f.Name)

    /// Closure names in declaration order.
    member val ClosureNames = m.Closures |> List.map (fun c -> c.Name)

    /// The kind of the first declaration of a name.
    member _.KindOf(name: string) : string option =
        declared.TryFirst name |> Option.map snd

    /// True when the name is declared (as anything).
    member _.IsDeclared(name: string) = declared.Contains name

    /// True when the name is a declared field.
    member _.IsField(name: string) = fields.Contains name

    /// True when the name is a declared fast field.
    member _.IsFast(name: string) =
        fields.Get name |> List.exists (fun f -> f.Fast)

    /// The first field declared with this name.
    member _.Field(name: string) = fields.TryFirst name

    /// True when the name is a declared closure.
    member _.IsClosure(name: string) = closures.Contains name

    /// The first closure declared with this name.
    member _.Closure(name: string) = closures.TryFirst name

    /// The equations of a field, in order.
    member _.EquationsOf(field: string) = equations.Get field

    /// The initial conditions of a field, in order.
    member _.InitialsOf(field: string) = initials.Get field

    /// The boundary conditions of a field, in order.
    member _.BoundariesOf(field: string) = boundaries.Get field

    /// True when the name is a declared diagnostic field.
    member _.IsDiagnostic(name: string) = diagnostics.Contains name

    /// Diagnostic field names in declaration order.
    member val DiagnosticNames = m.Diagnostics |> List.map (fun d -> d.Name)

    /// The elliptic equations of a diagnostic field, in order.
    member _.EllipticOf(field: string) = elliptic.Get field

    /// Number of spatial dimensions of the domain.
    member val Dims = Model.spatialDims m.Domain

    /// The sides of the domain.
    member val Sides = Model.sides m.Domain

    /// True on a lattice with a fast sub-lattice.
    member val FastLattice =
        match m.Domain with
        | Domain.Lattice(_, j) -> j > 0
        | _ -> false
