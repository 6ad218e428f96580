// Hybrid's build script (FAKE 5.20.3 under plain `dotnet fsi`). Run through ./build.sh:
//   ./build.sh run      build, then run the flagship job: every case study against its baselines, report in report/
//   ./build.sh test     build, run every test project, C# sample and docs script, end with "N passed, N failed, N skipped"
//   ./build.sh <Target> any target below: Restore, Build, Pack, Consumers, Test, CheckFormat, Format, Docs, Run,
//                       Bench, Report
#r "nuget: Fake.Core.Target, 5.20.3"
#r "nuget: Fake.DotNet.Cli, 5.20.3"
#r "nuget: Fake.IO.FileSystem, 5.20.3"
// FAKE 5.20.3's dependencies name lower bounds the registry does not serve, so NuGet warns (NU1603) and takes
// the next version up. These are those versions, pinned so a first restore is quiet.
#r "nuget: System.Reactive, 5.0.0"
#r "nuget: NuGet.Protocol, 5.7.0"
#r "nuget: NuGet.Frameworks, 5.11.0"
#r "nuget: Microsoft.Build, 16.6.0"
#r "nuget: Microsoft.Build.Framework, 16.6.0"
#r "nuget: Microsoft.Build.Tasks.Core, 16.6.0"
#r "nuget: Microsoft.Build.Utilities.Core, 16.6.0"
#r "nuget: System.CodeDom, 4.5.0"
#r "nuget: System.Resources.Extensions, 7.0.0"
#r "nuget: System.Security.Cryptography.ProtectedData, 4.4.0"
#r "nuget: System.Security.Cryptography.Pkcs, 7.0.0"

open System
open System.IO
open System.Text.RegularExpressions
open Fake.Core
open Fake.Core.TargetOperators
open Fake.IO
open Fake.IO.Globbing.Operators

// Plain `dotnet fsi` has no FAKE runner: set up the execution context FAKE's modules expect.
let arguments = fsi.CommandLineArgs |> Array.skip 1 |> List.ofArray

Context.FakeExecutionContext.Create false "build.fsx" arguments
|> Context.RuntimeContext.Fake
|> Context.setExecutionContext

let root = __SOURCE_DIRECTORY__
let configuration = "Release"
let resultsDir = Path.Combine(root, "artifacts", "test-results")

/// Runs `program args` in `dir`, streaming its output; returns the exit code.
let exec (program: string) (args: string) (dir: string) (env: (string * string) list) =
    let psi =
        Diagnostics.ProcessStartInfo(program, args, WorkingDirectory = dir, UseShellExecute = false)

    for k, v in env do
        psi.Environment[k] <- v

    use p = Diagnostics.Process.Start psi
    p.WaitForExit()
    p.ExitCode

let dotnet (args: string) =
    let code = exec "dotnet" args root []

    if code <> 0 then
        failwithf "'dotnet %s' failed with exit code %d" args code

// Test counts across all projects; printed as the last line of the output.
let mutable passed = 0
let mutable failed = 0
let mutable skipped = 0
let mutable testsRan = false

let count (p, f, s) =
    passed <- passed + p
    failed <- failed + f
    skipped <- skipped + s

Target.create "Restore" (fun _ ->
    dotnet "tool restore"
    dotnet "paket restore"
    dotnet "restore Hybrid.sln")

Target.create "Build" (fun _ -> dotnet $"build Hybrid.sln -c {configuration} --no-restore")

/// Runs one test project: `run file` runs it, writing its results to `file`; `read file` gives the
/// counts. A project that leaves no result file (a crash before the summary) counts as one failure.
let runCounted (project: string) (extension: string) (run: string -> int) (read: string -> int * int * int) =
    let name = Path.GetFileNameWithoutExtension project
    let file = Path.Combine(resultsDir, name + extension)
    File.Delete file
    Trace.log $"── {name}"
    let code = run file

    if File.Exists file then
        count (read file)
    else
        Trace.traceError $"{name} exited with {code} without writing {file}: counted as one failure"
        count (0, 1, 0)

/// Expecto projects write "passed failed skipped" to HYBRID_TEST_SUMMARY (tests/Common/Summary.fs).
let runExpecto (project: string) =
    runCounted
        project
        ".summary"
        (fun summary ->
            exec "dotnet" $"run --project \"{project}\" -c {configuration} --no-build -- --summary --no-spinner" root [
                ("HYBRID_TEST_SUMMARY", summary)
            ])
        (fun summary ->
            let parts = File.ReadAllText(summary).Split(' ') |> Array.map int
            parts[0], parts[1], parts[2])

/// xunit projects report through a TRX file; its Counters element has the numbers.
let runXunit (project: string) =
    runCounted
        project
        ".trx"
        (fun trx ->
            exec
                "dotnet"
                $"test \"{project}\" -c {configuration} --no-build --logger \"trx;LogFileName={trx}\" --logger \"console;verbosity=normal\""
                root
                [])
        (fun trx ->
            let counters =
                Regex.Match(File.ReadAllText trx, "<Counters ([^>]*)/>").Groups[1].Value

            let attr name =
                int (Regex.Match(counters, $"\\b{name}=\"(\\d+)\"").Groups[1].Value)

            attr "passed",
            attr "failed" + attr "error" + attr "timeout" + attr "aborted",
            attr "total" - attr "executed")

/// Literate docs (`docs/*.fsx`) and experiment scripts (`scripts/*.fsx`) run as they are, so they
/// cannot rot; each counts as one test.
let runDocs () =
    let scripts = [
        yield! !!(Path.Combine(root, "docs", "*.fsx")) |> Seq.sort
        yield! !!(Path.Combine(root, "scripts", "*.fsx")) |> Seq.sort
    ]

    for script in scripts do
        Trace.log $"── {Path.GetFileName script}"

        if exec "dotnet" $"fsi --quiet \"{script}\"" root [] = 0 then
            count (1, 0, 0)
        else
            Trace.traceError $"{script} failed"
            count (0, 1, 0)

/// C# sample programs (`samples/*/*.csproj`) run as they are, each in its own folder under artifacts/samples
/// (they write files); each counts as one test (exit code 0 = passed).
let runSamples () =
    for project in !!(Path.Combine(root, "samples", "*", "*.csproj")) |> Seq.sort do
        let name = Path.GetFileNameWithoutExtension project
        Trace.log $"── {name}"
        let workDir = Path.Combine(root, "artifacts", "samples", name)
        Directory.CreateDirectory workDir |> ignore

        if exec "dotnet" $"run --project \"{project}\" -c {configuration} --no-build" workDir [] = 0 then
            count (1, 0, 0)
        else
            Trace.traceError $"{project} failed"
            count (0, 1, 0)

/// The packages' version, read from Directory.Build.props (the one place it is set).
let version =
    Regex
        .Match(File.ReadAllText(Path.Combine(root, "Directory.Build.props")), "<Version>([^<]+)</Version>")
        .Groups[1]
        .Value

/// The NuGet packages `Pack` writes, in dependency order.
let packedProjects = [
    "src/Hybrid.Dsl/Hybrid.Dsl.fsproj"
    "src/Hybrid.Core/Hybrid.Core.fsproj"
    "src/Hybrid.Models/Hybrid.Models.fsproj"
    "src/Hybrid.Charts/Hybrid.Charts.fsproj"
    "src/Hybrid.CSharp/Hybrid.CSharp.csproj"
]

/// Hybrid.Charts is in the Charts Paket group: Plotly.NET 6 needs FSharp.Core 10.1.403, so that package alone
/// declares and references FSharp.Core 10.1 (notebook kernels with FSharp.Core 10.0 cannot load it).
let fsharpCoreFloor (id: string) =
    if id = "Hybrid.Charts" then "10.1.403" else "10.0.111"

let packagesDir = Path.Combine(root, "artifacts", "packages")

/// Packs the libraries (package, symbols package) from the Release build into artifacts/packages.
Target.create "Pack" (fun _ ->
    Directory.CreateDirectory packagesDir |> ignore

    for old in
        !!(Path.Combine(packagesDir, "Hybrid.*.nupkg"))
        ++ Path.Combine(packagesDir, "Hybrid.*.snupkg") do
        File.Delete old

    // One pack of the solution: only the libraries set IsPackable.
    dotnet $"pack Hybrid.sln -c {configuration} --no-build --no-restore -o \"{packagesDir}\""

    for project in packedProjects do
        let id = Path.GetFileNameWithoutExtension project

        if not (File.Exists(Path.Combine(packagesDir, $"{id}.{version}.nupkg"))) then
            failwith $"Pack wrote no {id}.{version}.nupkg to {packagesDir}: is IsPackable still true in {project}?")

/// What is wrong with the packages in artifacts/packages, one line each (empty when nothing): the metadata
/// every package needs, a symbols package with the PDB, FSharp.Core as a lower bound the notebook kernels
/// meet, and no native runtime among the dependencies (the application chooses it).
let packageProblems () = [
    for project in packedProjects do
        let id = Path.GetFileNameWithoutExtension project
        let nupkg = Path.Combine(packagesDir, $"{id}.{version}.nupkg")
        let snupkg = Path.Combine(packagesDir, $"{id}.{version}.snupkg")

        if not (File.Exists nupkg) then
            $"{nupkg} is missing: run ./build.sh Pack"
        else
            use zip = IO.Compression.ZipFile.OpenRead nupkg
            let entries = zip.Entries |> Seq.map (fun e -> e.FullName) |> Set.ofSeq

            let nuspec =
                use stream = zip.GetEntry($"{id}.nuspec").Open()
                Xml.Linq.XDocument.Load stream

            let elements (name: string) =
                nuspec.Descendants()
                |> Seq.filter (fun e -> e.Name.LocalName = name)
                |> List.ofSeq

            let text name =
                match elements name with
                | e :: _ -> e.Value
                | [] -> ""

            let expect (what: string) (actual: string) (wanted: string) =
                if actual <> wanted then
                    Some $"{id}: {what} is '{actual}', expected '{wanted}' (Directory.Build.props or {project})"
                else
                    None

            yield! expect "version" (text "version") version |> Option.toList
            yield! expect "authors" (text "authors") "Hybrid contributors" |> Option.toList
            yield! expect "license" (text "license") "MIT" |> Option.toList
            yield! expect "readme" (text "readme") "README.md" |> Option.toList

            if not (entries.Contains "README.md") then
                $"{id}: the package has no README.md (src/PackageReadme.md, packed by Directory.Build.props)"

            if text "description" = "" || text "description" = "Package Description" then
                $"{id}: no description: set <Description> in {project}"

            let tags = text "tags"

            if not (tags.Contains "hybrid-modeling") then
                $"{id}: tags '{tags}' lack the shared ones of Directory.Build.props"

            if not (entries.Contains $"lib/net10.0/{id}.xml") then
                $"{id}: lib/net10.0/{id}.xml (XML docs) is missing: GenerateDocumentationFile must stay true"

            for dependency in elements "dependency" do
                let dependencyId = dependency.Attribute(Xml.Linq.XName.Get "id").Value
                let range = dependency.Attribute(Xml.Linq.XName.Get "version").Value

                if dependencyId.StartsWith("libtorch", StringComparison.OrdinalIgnoreCase) then
                    $"{id}: depends on {dependencyId} {range}; the native runtime is the application's choice (remove it from {Path.GetDirectoryName project}/paket.references)"

                if dependencyId = "FSharp.Core" && range <> fsharpCoreFloor id then
                    $"{id}: depends on FSharp.Core '{range}', expected '{fsharpCoreFloor id}' (at least that, no upper bound; 10.0.x so notebook kernels with FSharp.Core 10.0 load it, except Hybrid.Charts): use 'nuget FSharp.Core >= {fsharpCoreFloor id}' in its group of paket.dependencies"

            // The assembly, not only the nuspec: built against FSharp.Core 10.1 it would not load in a kernel
            // that has 10.0, whatever the package declares.
            match zip.GetEntry($"lib/net10.0/{id}.dll") with
            | null -> $"{id}: lib/net10.0/{id}.dll is missing"
            | dll ->
                use memory = new MemoryStream()
                use stream = dll.Open()
                stream.CopyTo memory
                memory.Position <- 0L
                use pe = new Reflection.PortableExecutable.PEReader(memory)
                let metadata = Reflection.Metadata.PEReaderExtensions.GetMetadataReader pe

                for handle in metadata.AssemblyReferences do
                    let reference = metadata.GetAssemblyReference handle

                    if
                        metadata.GetString reference.Name = "FSharp.Core"
                        && reference.Version >= Version(10, 1)
                        && id <> "Hybrid.Charts"
                    then
                        $"{id}: {id}.dll references FSharp.Core {reference.Version}, which notebook kernels (FSharp.Core 10.0.0.0) cannot load: build against FSharp.Core 10.0.x (paket.lock's version; DisableImplicitFSharpCoreReference stays true)"

            if not (File.Exists snupkg) then
                $"{snupkg} is missing: IncludeSymbols and SymbolPackageFormat snupkg are set in Directory.Build.props"
            else
                use symbols = IO.Compression.ZipFile.OpenRead snupkg

                if symbols.GetEntry($"lib/net10.0/{id}.pdb") = null then
                    $"{snupkg} has no lib/net10.0/{id}.pdb"

            if entries |> Set.exists (fun e -> e.EndsWith ".pdb") then
                $"{id}: the package itself holds a .pdb; symbols belong in the .snupkg"
]

/// dotnet-repl runs the notebook consumer headless; installed on first use into artifacts/tools (≈370 MB, so
/// it is not a tool of the repository's manifest that every `./build.sh` would restore).
let dotnetRepl () =
    let tools = Path.Combine(root, "artifacts", "tools")
    let repl = Path.Combine(tools, "dotnet-repl")

    if not (File.Exists repl) then
        dotnet $"tool install dotnet-repl --version 0.3.259 --tool-path \"{tools}\""

    repl

/// The error outputs of an executed notebook (.ipynb): what a failed cell said.
let notebookErrors (ipynb: string) =
    if File.Exists ipynb then
        use doc = Text.Json.JsonDocument.Parse(File.ReadAllText ipynb)

        [
            for cell in doc.RootElement.GetProperty("cells").EnumerateArray() do
                match cell.TryGetProperty "outputs" with
                | true, outputs ->
                    for output in outputs.EnumerateArray() do
                        if output.GetProperty("output_type").GetString() = "error" then
                            output.GetProperty("evalue").GetString()
                | _ -> ()
        ]
    else
        [ $"{ipynb} was not written" ]

/// The consumers in tests/consumers use Hybrid as an application outside this repository would: from the
/// packages in artifacts/packages (tests/consumers/NuGet.config), restored into their own packages folder
/// (artifacts/consumer-packages) from which Hybrid's packages are removed first, so a package restored by an
/// earlier build cannot stand in for the one just packed. The third-party packages stay there between runs.
/// Each consumer counts as one test (exit code 0 = passed): a script, a C# project and a notebook; so does the
/// check of the packages' metadata before them.
let runConsumers () =
    let consumers = Path.Combine(root, "tests", "consumers")
    let cache = Path.Combine(root, "artifacts", "consumer-packages")
    Directory.CreateDirectory cache |> ignore
    Directory.CreateDirectory resultsDir |> ignore

    for stale in Directory.GetDirectories(cache, "hybrid.*") do
        Directory.Delete(stale, true)

    // The two large third-party packages (≈740 MB) come from the machine's global packages folder, where the
    // solution's own restore put them, as hard links: the same files a download would bring, without it.
    let globalPackages =
        match Environment.GetEnvironmentVariable "NUGET_PACKAGES" with
        | null
        | "" -> Path.Combine(Environment.GetFolderPath Environment.SpecialFolder.UserProfile, ".nuget", "packages")
        | folder -> folder

    for package in [ "torchsharp/0.107.0"; "libtorch-cpu-linux-x64/2.10.0" ] do
        let source = Path.Combine(globalPackages, package)
        let target = Path.Combine(cache, package)

        if Directory.Exists source && not (Directory.Exists target) then
            let temp = target + ".seeding"
            Directory.CreateDirectory(Path.GetDirectoryName target) |> ignore

            if Directory.Exists temp then
                Directory.Delete(temp, true)

            if exec "cp" $"-al \"{source}\" \"{temp}\"" root [] = 0 then
                Directory.Move(temp, target)

    let env = [ ("NUGET_PACKAGES", cache) ]

    Trace.log "── consumer: the packages' metadata"

    match packageProblems () with
    | [] -> count (1, 0, 0)
    | problems ->
        for problem in problems do
            Trace.traceError $"   {problem}"

        count (0, 1, 0)

    let consumer (name: string) (program: string) (args: string) (explain: unit -> string list) =
        Trace.log $"── consumer: {name}"
        let watch = Diagnostics.Stopwatch.StartNew()
        let code = exec program args consumers env
        Trace.log $"   {name}: exit code {code} in {watch.Elapsed.TotalSeconds:F0} s"

        if code = 0 then
            count (1, 0, 0)
        else
            Trace.traceError $"consumer {name} failed"

            for line in explain () do
                Trace.traceError $"   {line}"

            count (0, 1, 0)

    consumer "fit.fsx (#r \"nuget: Hybrid.Core\")" "dotnet" "fsi --quiet fit.fsx" (fun () -> [])

    consumer
        "csharp (PackageReference Hybrid.CSharp)"
        "dotnet"
        $"run --project csharp/Consumer.csproj -c {configuration}"
        (fun () -> [])

    let executed = Path.Combine(resultsDir, "notebook.ipynb")
    File.Delete executed

    let repl =
        try
            Ok(dotnetRepl ())
        with e ->
            Error e.Message

    match repl with
    | Ok repl ->
        consumer
            "notebook.dib (dotnet-repl, #r \"nuget: Hybrid.Core\")"
            repl
            $"--run notebook.dib --exit-after-run --output-format ipynb --output-path \"{executed}\""
            (fun () -> notebookErrors executed)
    | Error message ->
        Trace.traceError $"consumer notebook.dib: dotnet-repl 0.3.259 could not be installed: {message}"
        count (0, 1, 0)

Target.create "Consumers" (fun _ ->
    testsRan <- true
    runConsumers ())

Target.create "Test" (fun _ ->
    Directory.CreateDirectory resultsDir |> ignore
    testsRan <- true

    for project in !!(Path.Combine(root, "tests", "*", "*.fsproj")) |> Seq.sort do
        runExpecto project

    for project in !!(Path.Combine(root, "tests", "*", "*.csproj")) |> Seq.sort do
        runXunit project

    runSamples ()
    runDocs ()
    runConsumers ())

Target.create "Docs" (fun _ ->
    testsRan <- true
    runDocs ())

/// What Fantomas formats and checks (folders that do not exist yet are left out).
let formatted =
    [ "src"; "tests"; "docs"; "scripts"; "build.fsx" ]
    |> List.filter (fun p -> Directory.Exists(Path.Combine(root, p)) || File.Exists(Path.Combine(root, p)))
    |> String.concat " "

Target.create "CheckFormat" (fun _ ->
    let code = exec "dotnet" $"fantomas --check {formatted}" root []

    if code <> 0 then
        failwith "Some files are not formatted: run ./build.sh Format (Fantomas) and commit the result.")

Target.create "Format" (fun _ -> dotnet $"fantomas {formatted}")

// The flagship job: every case study against its baselines end to end with the quick settings (a few minutes
// on 2 cores); the report goes to report/. `Report` runs the full settings.
Target.create "Run" (fun _ ->
    dotnet $"run --project src/Hybrid.Cli -c {configuration} --no-build -- report --quick report")

Target.create "Bench" (fun _ ->
    // Benchmarks, not tests: each writes its figures (with the machine) to bench/*.md for the README.
    dotnet $"run --project src/Hybrid.Cli -c {configuration} --no-build -- bench bench/results.md"
    dotnet $"run --project src/Hybrid.Cli -c {configuration} --no-build -- bench-kernels")

Target.create "Report" (fun _ ->
    // Case studies against their baselines, full settings: report/summary.md, CSV files of every number, charts.
    dotnet $"run --project src/Hybrid.Cli -c {configuration} --no-build -- report report")

"Restore" ==> "Build" ==> "Pack" ==> "Test" |> ignore
"Pack" ==> "Consumers" |> ignore
"Build" ==> "Run" |> ignore
"Build" ==> "Docs" |> ignore
"Build" ==> "Bench" |> ignore
"Build" ==> "Report" |> ignore

let outcome =
    try
        Target.runOrDefaultWithArguments "Build"
        0
    with e ->
        eprintfn "%s" e.Message
        1

if testsRan then
    printfn "%d passed, %d failed, %d skipped" passed failed skipped

exit (if outcome <> 0 || failed > 0 then 1 else 0)
