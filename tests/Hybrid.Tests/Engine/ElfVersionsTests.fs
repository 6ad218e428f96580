/// The weak-flag fix for libLibTorchSharp.so, checked on a real copy of the library.
module Hybrid.Tests.Engine.ElfVersionsTests

open System
open System.Diagnostics
open System.IO
open System.Threading.Tasks
open Expecto
open Hybrid
open Hybrid.Native

let private bridgePath () =
    NativeLoader.candidateFolders ()
    |> List.map (fun d -> Path.Combine(d, NativeLoader.BridgeFile))
    |> List.tryFind File.Exists
    |> Option.defaultWith (fun () -> failwith "libLibTorchSharp.so not found; build the solution first")

let private node = NativeLoader.UnusedVersionNode

let private tempDir () =
    let d =
        Path.Combine(Path.GetTempPath(), "hybrid-tests", Guid.NewGuid().ToString "N")

    Directory.CreateDirectory d |> ignore
    d

let private engineErrorMessage (f: unit -> unit) =
    try
        f ()
        failtest "expected an EngineException"
        ""
    with :? EngineException as e ->
        e.Message

/// The libstdc++ that the dynamic loader would pick for this process, if we can find it.
let private systemLibstdcxx () =
    [
        "/usr/lib/x86_64-linux-gnu/libstdc++.so.6"
        "/lib/x86_64-linux-gnu/libstdc++.so.6"
        "/usr/lib64/libstdc++.so.6"
    ]
    |> List.tryFind File.Exists

let tests =
    testList "ELF version needs" [
        test "the real bridge requires GLIBCXX_3.4.32 from libstdc++, not yet weak" {
            let needs = ElfVersions.needs (File.ReadAllBytes(bridgePath ()))
            let entry = needs |> List.filter (fun n -> n.Version = node)
            Expect.hasLength entry 1 "exactly one entry names the node"
            Expect.equal entry.Head.Library "libstdc++.so.6" "required from libstdc++"
            Expect.equal (entry.Head.Flags &&& ElfVersions.VerFlagWeak) 0us "not weak as shipped"
            Expect.isGreaterThan needs.Length 10 "other requirements (GLIBC_*, CXXABI_*) are read too"
        }

        test "patching changes exactly one byte: the flags of that one Vernaux entry" {
            let original = File.ReadAllBytes(bridgePath ())
            let patched = Array.copy original
            let outcome = ElfVersions.markWeak node patched

            let offset =
                match outcome with
                | ElfVersions.Patched o -> o
                | other -> failtestf "expected Patched, got %A" other

            let differing = [
                for i in 0 .. original.Length - 1 do
                    if original[i] <> patched[i] then
                        i
            ]

            Expect.equal differing [ offset ] "only the low byte of vna_flags changes"
            Expect.equal (patched[offset] ^^^ original[offset]) 2uy "the change is VER_FLG_WEAK (0x2)"

            let before = ElfVersions.needs original
            let after = ElfVersions.needs patched
            Expect.equal after.Length before.Length "same number of entries"

            for b, a in List.zip before after do
                if b.Version = node then
                    Expect.equal a.Flags (b.Flags ||| ElfVersions.VerFlagWeak) "the node is now weak"
                else
                    Expect.equal a b $"entry {b.Library}/{b.Version} is unchanged"
        }

        test "patching twice is a no-op" {
            let bytes = File.ReadAllBytes(bridgePath ())
            ElfVersions.markWeak node bytes |> ignore
            let once = Array.copy bytes
            Expect.equal (ElfVersions.markWeak node bytes) ElfVersions.AlreadyWeak "second patch reports AlreadyWeak"
            Expect.sequenceEqual bytes once "no byte changes the second time"
        }

        test "a version that is not required is reported, not invented" {
            let bytes = File.ReadAllBytes(bridgePath ())
            let copy = Array.copy bytes
            Expect.equal (ElfVersions.markWeak "GLIBCXX_9.9.99" bytes) ElfVersions.NotRequired "nothing to do"
            Expect.sequenceEqual bytes copy "file untouched"
        }

        test "readelf agrees that the patched copy's entry is WEAK" {
            let readelf = [ "/usr/bin/readelf"; "/bin/readelf" ] |> List.tryFind File.Exists

            match readelf with
            | None -> skiptest "readelf is not installed"
            | Some exe ->
                let copy = NativeLoader.patchedCopy (tempDir ()) (bridgePath ())
                let psi = ProcessStartInfo(exe, $"-V \"{copy}\"", RedirectStandardOutput = true)
                use p = Process.Start psi
                let output = p.StandardOutput.ReadToEnd()
                p.WaitForExit()
                let line = output.Split('\n') |> Array.find (fun l -> l.Contains $"Name: {node}")
                Expect.stringContains line "Flags: WEAK" "readelf -V shows the flag"
        }

        test "the patched copy is cached by content hash and rewritten only when stale" {
            let cache = tempDir ()
            let first = NativeLoader.patchedCopy cache (bridgePath ())
            let written = File.GetLastWriteTimeUtc first
            let second = NativeLoader.patchedCopy cache (bridgePath ())
            Expect.equal second first "same path"
            Expect.equal (File.GetLastWriteTimeUtc second) written "not rewritten"
            File.WriteAllBytes(first, [| 1uy; 2uy |])
            let third = NativeLoader.patchedCopy cache (bridgePath ())
            let needs = ElfVersions.needs (File.ReadAllBytes third)

            Expect.isTrue
                (needs
                 |> List.exists (fun n -> n.Version = node && n.Flags = ElfVersions.VerFlagWeak))
                "repaired"
        }

        test "concurrent writers never leave a partial or temporary file" {
            let cache = tempDir ()
            let bridge = bridgePath ()

            let paths =
                Array.init 8 (fun _ -> Task.Run(fun () -> NativeLoader.patchedCopy cache bridge))
                |> Array.map _.Result

            Expect.allEqual paths paths[0] "all writers agree on the path"
            let expected = File.ReadAllBytes bridge
            ElfVersions.markWeak node expected |> ignore
            Expect.sequenceEqual (File.ReadAllBytes paths[0]) expected "the file is the complete patched copy"
            let leftovers = Directory.GetFiles(cache, "*.tmp", SearchOption.AllDirectories)
            Expect.isEmpty leftovers "no temporary files remain"
        }

        test "a truncated library gives a clear error" {
            let bytes = File.ReadAllBytes(bridgePath ())

            let message =
                engineErrorMessage (fun () -> ElfVersions.needs bytes[..4095] |> ignore)

            Expect.stringContains message "truncated" "says truncated"
            Expect.stringContains message "reinstall" "says what to do"
        }

        test "a file shorter than an ELF header gives a clear error" {
            let message =
                engineErrorMessage (fun () -> ElfVersions.needs [| 0x7fuy; byte 'E' |] |> ignore)

            Expect.stringContains message "fewer than an ELF header" "names the problem"
        }

        test "a non-ELF file gives a clear error" {
            let text = Text.Encoding.ASCII.GetBytes(String('x', 200))
            let message = engineErrorMessage (fun () -> ElfVersions.needs text |> ignore)
            Expect.stringContains message "not the ELF magic" "names the problem"
        }

        test "with no native files anywhere, one error names the file, the folders and the packages" {
            let empty = tempDir ()

            let message =
                engineErrorMessage (fun () -> NativeLoader.loadFrom [ empty ] |> ignore)

            Expect.stringContains message "libLibTorchSharp.so" "names the file looked for"
            Expect.stringContains message empty "names where it looked"
            Expect.stringContains message "TorchSharp 0.107.0" "names the package to install"
            Expect.stringContains message "HYBRID_LIBTORCH_DIR" "names the override"
        }

        test "HYBRID_LIBTORCH_DIR is searched first" {
            let dir = tempDir ()
            Environment.SetEnvironmentVariable("HYBRID_LIBTORCH_DIR", dir)

            try
                Expect.equal (NativeLoader.candidateFolders () |> List.head) (Path.GetFullPath dir) "first candidate"
            finally
                Environment.SetEnvironmentVariable("HYBRID_LIBTORCH_DIR", null)
        }

        test "the loader patches exactly when the system libstdc++ lacks the node" {
            match systemLibstdcxx () with
            | None -> skiptest "system libstdc++ not found at a standard path"
            | Some lib ->
                let defined = ElfVersions.definitions (File.ReadAllBytes lib)
                Expect.contains defined "GLIBCXX_3.4" "definitions are read from libstdc++"
                Engine.init ()
                let report = Engine.describe ()
                let lacks = not (List.contains node defined)
                Expect.equal (report.Contains "patched copy") lacks $"patched iff libstdc++ lacks {node}: {report}"
        }
    ]
