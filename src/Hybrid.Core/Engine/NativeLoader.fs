/// Finds and loads libtorch and TorchSharp's native bridge (`libLibTorchSharp.so`) before TorchSharp
/// touches them. On Linux systems whose libstdc++ lacks the version node `GLIBCXX_3.4.32` (Debian 12,
/// Ubuntu 22.04) the bridge does not load as shipped, although it only names that node for a symbol
/// nothing calls; there we load a copy whose requirement is marked weak (one byte differs), cached by
/// the original's content hash and written atomically.
module internal Hybrid.Native.NativeLoader

open System
open Hybrid
open System.IO
open System.Runtime.InteropServices
open System.Security.Cryptography

/// The version node that libLibTorchSharp.so (TorchSharp 0.107) requires but never binds a symbol to.
[<Literal>]
let UnusedVersionNode = "GLIBCXX_3.4.32"

[<Literal>]
let BridgeFile = "libLibTorchSharp.so"

/// Libraries loaded by path before the bridge, in dependency order (when present in the folder).
let private libtorchFiles = [
    "libc10.so"
    "libtorch_cpu.so"
    "libc10_cuda.so"
    "libtorch_cuda.so"
    "libtorch.so"
]

/// What was loaded, for diagnostics (`Engine.describe`).
type LoadReport = {
    BridgePath: string
    LibTorchFolder: string
    /// True when the weak-flag patched copy of the bridge was needed.
    Patched: bool
}

let private nativeSubfolder = Path.Combine("runtimes", "linux-x64", "native")

/// Folders of a NuGet package id in the global packages folder, newest version first.
let private packageFolders (id: string) =
    let root =
        match Environment.GetEnvironmentVariable "NUGET_PACKAGES" with
        | null
        | "" -> Path.Combine(Environment.GetFolderPath Environment.SpecialFolder.UserProfile, ".nuget", "packages")
        | p -> p

    let dir = Path.Combine(root, id)

    if Directory.Exists dir then
        Directory.GetDirectories dir
        |> Array.sortByDescending (fun d ->
            match Version.TryParse(Path.GetFileName d) with
            | true, v -> v
            | _ -> Version())
        |> Array.map (fun d -> Path.Combine(d, nativeSubfolder))
        |> List.ofArray
    else
        []

/// Every folder searched for the native files, in order of preference.
let candidateFolders () : string list =
    let withNative (dir: string) = [ dir; Path.Combine(dir, nativeSubfolder) ]

    let assemblyDir (t: Type) =
        match t.Assembly.Location with
        | ""
        | null -> []
        | loc -> withNative (Path.GetDirectoryName loc)

    let torchSharpPackage =
        let v = typeof<TorchSharp.torch>.Assembly.GetName().Version
        let version = $"{v.Major}.{v.Minor}.{v.Build}"

        packageFolders "torchsharp"
        |> List.filter (fun d ->
            d.Contains(
                string Path.DirectorySeparatorChar
                + version
                + string Path.DirectorySeparatorChar
            ))

    let libtorchPackages =
        [ "libtorch-cpu-linux-x64"; "libtorch-cuda-12.8-linux-x64"; "libtorch-cpu" ]
        |> List.collect packageFolders

    [
        match Environment.GetEnvironmentVariable "HYBRID_LIBTORCH_DIR" with
        | null
        | "" -> ()
        | d -> d
        yield! withNative AppContext.BaseDirectory
        yield! assemblyDir typeof<LoadReport>
        yield! assemblyDir typeof<TorchSharp.torch>
        yield! torchSharpPackage
        yield! libtorchPackages
    ]
    |> List.map Path.GetFullPath
    |> List.distinct

let private findFile (name: string) (folders: string list) =
    folders |> List.tryFind (fun d -> File.Exists(Path.Combine(d, name)))

let private tryLoad (path: string) : Result<nativeint, string> =
    try
        Ok(NativeLibrary.Load path)
    with
    | :? DllNotFoundException
    | :? BadImageFormatException as e -> Error e.Message

let private cacheRoot () =
    let env (name: string) =
        match Environment.GetEnvironmentVariable name with
        | null
        | "" -> None
        | v -> Some v

    match env "HYBRID_CACHE_DIR" with
    | Some d -> d
    | None ->
        match env "XDG_CACHE_HOME" with
        | Some d -> Path.Combine(d, "hybrid")
        | None ->
            let home = Environment.GetFolderPath Environment.SpecialFolder.UserProfile

            if String.IsNullOrEmpty home then
                Path.Combine(Path.GetTempPath(), "hybrid-cache")
            else
                Path.Combine(home, ".cache", "hybrid")

/// Returns the path of a patched copy of `original` inside `cacheDir`, writing it if absent or stale.
/// The copy sits in a folder named by the original's SHA-256 and is written to a unique temporary
/// file first, then renamed into place, so concurrent processes never see a partial file.
let patchedCopy (cacheDir: string) (original: string) : string =
    let bytes = File.ReadAllBytes original
    let hash = Convert.ToHexString(SHA256.HashData bytes).ToLowerInvariant()
    let folder = Path.Combine(cacheDir, "native", hash.Substring(0, 16))
    let target = Path.Combine(folder, Path.GetFileName original)

    match ElfVersions.markWeak UnusedVersionNode bytes with
    | ElfVersions.NotRequired ->
        raise (
            EngineException(
                $"'{original}' does not require {UnusedVersionNode}, yet it failed to load; the weak-flag fix does not apply. Check that the TorchSharp and libtorch package versions match."
            )
        )
    | ElfVersions.AlreadyWeak
    | ElfVersions.Patched _ -> ()

    let upToDate =
        File.Exists target
        && (let existing = File.ReadAllBytes target in existing.AsSpan().SequenceEqual(ReadOnlySpan bytes))

    if not upToDate then
        Directory.CreateDirectory folder |> ignore

        let temp =
            Path.Combine(folder, $"{Path.GetFileName original}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp")

        File.WriteAllBytes(temp, bytes)
        File.Move(temp, target, true)

    target

let private notFound (folders: string list) (file: string) =
    let searched = folders |> List.map (fun d -> "  " + d) |> String.concat "\n"

    EngineException(
        $"Hybrid could not find {file}. Searched:\n{searched}\nInstall the NuGet packages TorchSharp 0.107.0 and libtorch-cpu-linux-x64 2.10.0 (a build of this solution does so), or set HYBRID_LIBTORCH_DIR to the folder that holds {file}."
    )

/// Loads libtorch and the TorchSharp bridge from the first of `folders` that has them.
let loadFrom (folders: string list) : LoadReport =
    let bridgeFolder =
        findFile BridgeFile folders
        |> Option.defaultWith (fun () -> raise (notFound folders BridgeFile))

    let torchFolder =
        findFile "libtorch.so" (bridgeFolder :: folders)
        |> Option.defaultWith (fun () -> raise (notFound folders "libtorch.so"))

    for file in libtorchFiles do
        let path = Path.Combine(torchFolder, file)

        if File.Exists path then
            match tryLoad path with
            | Ok _ -> ()
            | Error message ->
                raise (
                    EngineException(
                        $"libtorch could not be loaded from '{path}': {message}. Reinstall libtorch-cpu-linux-x64 2.10.0 (the native files may be incomplete)."
                    )
                )

    let bridge = Path.Combine(bridgeFolder, BridgeFile)

    match tryLoad bridge with
    | Ok _ -> {
        BridgePath = bridge
        LibTorchFolder = torchFolder
        Patched = false
      }
    | Error message when message.Contains UnusedVersionNode ->
        let copy = patchedCopy (cacheRoot ()) bridge

        match tryLoad copy with
        | Ok _ -> {
            BridgePath = copy
            LibTorchFolder = torchFolder
            Patched = true
          }
        | Error again ->
            raise (
                EngineException(
                    $"TorchSharp's bridge '{bridge}' needs {UnusedVersionNode}, which this system's libstdc++ lacks, and the patched copy '{copy}' did not load either: {again}. Install a newer libstdc++6 (GCC 13 or later)."
                )
            )
    | Error message ->
        raise (
            EngineException(
                $"TorchSharp's bridge '{bridge}' could not be loaded: {message}. Check that libtorch-cpu-linux-x64 2.10.0 matches TorchSharp 0.107.0."
            )
        )

/// Loads libtorch and the TorchSharp bridge from the first candidate folder that has them. Linux only;
/// on other systems TorchSharp's own loading is used and this is not called.
let load () : LoadReport = loadFrom (candidateFolders ())
