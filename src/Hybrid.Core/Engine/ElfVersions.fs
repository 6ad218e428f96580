/// Reading and editing the symbol versions (`.gnu.version_r`, `.gnu.version_d`) of a 64-bit
/// little-endian ELF shared library. Used to make `libLibTorchSharp.so` loadable on systems whose
/// libstdc++ lacks one version node that the library names but never uses (see NativeLoader).
module internal Hybrid.Native.ElfVersions

open System
open Hybrid
open System.Buffers.Binary
open System.Text

/// `SHT_GNU_verneed`: the section type of `.gnu.version_r`.
[<Literal>]
let private ShtGnuVerneed = 0x6ffffffeu

/// `SHT_GNU_verdef`: the section type of `.gnu.version_d`.
[<Literal>]
let private ShtGnuVerdef = 0x6ffffffdu

/// `VER_FLG_WEAK`: a weak version reference; the dynamic loader does not fail when it is missing.
[<Literal>]
let VerFlagWeak = 0x2us

/// One `Elf64_Vernaux` entry: a version (e.g. `GLIBCXX_3.4.32`) required from a library
/// (e.g. `libstdc++.so.6`), with the file offset of its `vna_flags` field.
type VersionNeed = {
    Library: string
    Version: string
    Flags: uint16
    FlagsOffset: int
}

/// What `markWeak` did.
type PatchOutcome =
    /// The entry's flags were changed; the byte at this file offset was rewritten.
    | Patched of flagsOffset: int
    /// The entry was already weak; nothing changed.
    | AlreadyWeak
    /// No entry names this version; nothing changed.
    | NotRequired

let private fail (what: string) : 'a =
    raise (
        EngineException(
            $"Cannot read the ELF version requirements: {what}. The file is not a complete 64-bit little-endian ELF library; reinstall the TorchSharp NuGet package."
        )
    )

let private u16 (b: byte[]) (o: int) =
    BinaryPrimitives.ReadUInt16LittleEndian(ReadOnlySpan(b, o, 2))

let private u32 (b: byte[]) (o: int) =
    BinaryPrimitives.ReadUInt32LittleEndian(ReadOnlySpan(b, o, 4))

let private u64 (b: byte[]) (o: int) =
    BinaryPrimitives.ReadUInt64LittleEndian(ReadOnlySpan(b, o, 8))

/// Checks that [offset, offset + length) lies inside the file; names the structure otherwise.
let private within (b: byte[]) (what: string) (offset: uint64) (length: uint64) =
    if offset > uint64 b.Length || length > uint64 b.Length - offset then
        fail
            $"{what} at offset {offset} (+{length} bytes) lies past the end of the file ({b.Length} bytes); the file is truncated"

    int offset

let private cString (b: byte[]) (start: int) (limit: int) =
    let mutable e = start

    while e < limit && b[e] <> 0uy do
        e <- e + 1

    if e >= limit then
        fail $"a string at offset {start} is not terminated inside its string table"

    Encoding.ASCII.GetString(b, start, e - start)

/// One section header of an ELF file (the fields the version patch reads).
type private Section = {
    Type: uint32
    Offset: uint64
    Size: uint64
    Link: uint32
    Info: uint32
}

/// Checks the ELF header; returns the section headers as (type, offset, size, link, info).
let private sections (b: byte[]) : Section[] =
    if b.Length < 64 then
        fail $"the file has {b.Length} bytes, fewer than an ELF header (64)"

    if not (b[0] = 0x7fuy && b[1] = byte 'E' && b[2] = byte 'L' && b[3] = byte 'F') then
        fail $"the first bytes are %02x{b[0]} %02x{b[1]} %02x{b[2]} %02x{b[3]}, not the ELF magic 7f 45 4c 46"

    if b[4] <> 2uy then
        fail $"ELF class {b[4]} is not 64-bit (2)"

    if b[5] <> 1uy then
        fail $"ELF data encoding {b[5]} is not little-endian (1)"

    let shoff = u64 b 40
    let shentsize = uint64 (u16 b 58)
    let shnum = uint64 (u16 b 60)

    if shentsize < 64UL then
        fail $"section header size {shentsize} is smaller than 64"

    let table = within b "the section header table" shoff (shentsize * shnum)

    Array.init (int shnum) (fun i ->
        let o = table + int (uint64 i * shentsize)

        {
            Type = u32 b (o + 4)
            Offset = u64 b (o + 24)
            Size = u64 b (o + 32)
            Link = u32 b (o + 40)
            Info = u32 b (o + 44)
        })

/// For each section of `sectionType`: its bounds [start, end) and a reader of its linked string table.
let private versionSections (b: byte[]) (sectionType: uint32) (name: string) =
    let all = sections b

    [
        for s in all do
            if s.Type = sectionType then
                if int s.Link >= all.Length then
                    fail $"{name} links to string table section {s.Link}, but there are only {all.Length} sections"

                let strtab = all[int s.Link]
                let strStart = within b "the .dynstr string table" strtab.Offset strtab.Size
                let strEnd = strStart + int strtab.Size
                let start = within b $"the {name} section" s.Offset s.Size

                yield
                    start,
                    start + int s.Size,
                    int s.Info,
                    (fun (offset: uint32) -> cString b (strStart + int offset) strEnd)
    ]

/// Checks that a `size`-byte entry at `offset` lies inside its section [.., sectionEnd).
let private entry (b: byte[]) (what: string) (offset: uint64) (size: int) (sectionEnd: int) =
    let o = within b what offset (uint64 size)

    if o + size > sectionEnd then
        fail $"{what} at offset {o} runs past the end of its section"

    o

/// All version requirements of the library in `bytes`, in file order.
/// Raises `EngineException` for a file that is not a 64-bit little-endian ELF or is truncated.
let needs (bytes: byte[]) : VersionNeed list =
    let b = bytes

    [
        for start, sectionEnd, count, name in versionSections b ShtGnuVerneed ".gnu.version_r" do
            let mutable need = uint64 start

            for _ in 1..count do
                // Elf64_Verneed { u16 vn_version; u16 vn_cnt; u32 vn_file; u32 vn_aux; u32 vn_next }
                let n = entry b "an Elf64_Verneed entry" need 16 sectionEnd
                let library = name (u32 b (n + 4))
                let mutable aux = uint64 n + uint64 (u32 b (n + 8))

                for _ in 1 .. int (u16 b (n + 2)) do
                    // Elf64_Vernaux { u32 vna_hash; u16 vna_flags; u16 vna_other; u32 vna_name; u32 vna_next }
                    let a = entry b "an Elf64_Vernaux entry" aux 16 sectionEnd

                    yield {
                        Library = library
                        Version = name (u32 b (a + 8))
                        Flags = u16 b (a + 4)
                        FlagsOffset = a + 4
                    }

                    aux <- uint64 a + uint64 (u32 b (a + 12))

                need <- uint64 n + uint64 (u32 b (n + 12))
    ]

/// The version nodes a library defines (`.gnu.version_d`), e.g. `GLIBCXX_3.4.30` for libstdc++.
let definitions (bytes: byte[]) : string list =
    let b = bytes

    [
        for start, sectionEnd, count, name in versionSections b ShtGnuVerdef ".gnu.version_d" do
            let mutable def = uint64 start

            for _ in 1..count do
                // Elf64_Verdef { u16 vd_version; u16 vd_flags; u16 vd_ndx; u16 vd_cnt; u32 vd_hash; u32 vd_aux; u32 vd_next }
                let d = entry b "an Elf64_Verdef entry" def 20 sectionEnd
                // The first Elf64_Verdaux { u32 vda_name; u32 vda_next } names the version.
                let a =
                    entry b "an Elf64_Verdaux entry" (uint64 d + uint64 (u32 b (d + 12))) 8 sectionEnd

                yield name (u32 b a)
                def <- uint64 d + uint64 (u32 b (d + 16))
    ]

/// Marks every requirement of `version` in `bytes` weak (`vna_flags |= VER_FLG_WEAK`), in place.
/// Exactly one byte changes per entry; a second call is a no-op (`AlreadyWeak`).
let markWeak (version: string) (bytes: byte[]) : PatchOutcome =
    match needs bytes |> List.filter (fun n -> n.Version = version) with
    | [] -> NotRequired
    | needs when needs |> List.forall (fun n -> n.Flags &&& VerFlagWeak <> 0us) -> AlreadyWeak
    | needs ->
        for n in needs do
            BinaryPrimitives.WriteUInt16LittleEndian(Span(bytes, n.FlagsOffset, 2), n.Flags ||| VerFlagWeak)

        Patched (needs |> List.head).FlagsOffset
