// Hybrid's build script (FAKE 5.20.3 under plain `dotnet fsi`). Run through ./build.sh:
//   ./build.sh run      build, then run the flagship job: every case study against its baselines, report in report/
//   ./build.sh test     build, run every test project, C# sample and docs script, end with "N passed, N failed, N skipped"
//   ./build.sh <Target> any target below: Restore, Build, Pack, Consumers, Test, CheckFormat, Format, Docs (the
//                       documentation site in artifacts/docs), DocScripts, Run, Bench, Report
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

/// The case-study scripts, type-checked but not run by `runDocScripts`: each runs a case's quick settings
/// (`<Case>.run <Case>.quick`), the very runs the case tests of tests/Hybrid.Tests make, so running them again
/// would add minutes to CI and test nothing new; type-checking keeps them in step with the API.
let typeCheckedScripts = [
    "climate.fsx"
    "energy-balance.fsx"
    "lorenz96.fsx"
    "pharmacokinetics.fsx"
    "predator-prey.fsx"
    "tumour.fsx"
]

/// Literate docs (`docs/*.fsx`) and experiment scripts (`scripts/*.fsx`) run as they are (those of
/// `typeCheckedScripts` are type-checked), so they cannot rot; each counts as one test.
let runDocScripts () =
    let scripts = [
        yield! !!(Path.Combine(root, "docs", "*.fsx")) |> Seq.sort
        yield! !!(Path.Combine(root, "scripts", "*.fsx")) |> Seq.sort
    ]

    for script in scripts do
        let name = Path.GetFileName script
        let typeCheckOnly = List.contains name typeCheckedScripts

        Trace.log (
            if typeCheckOnly then
                $"── {name} (type-checked)"
            else
                $"── {name}"
        )

        let flags =
            if typeCheckOnly then
                "--quiet --typecheck-only"
            else
                "--quiet"

        if exec "dotnet" $"fsi {flags} \"{script}\"" root [] = 0 then
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
    "src/Hybrid.NetCdf/Hybrid.NetCdf.fsproj"
    "src/Hybrid.Models/Hybrid.Models.fsproj"
    "src/Hybrid.Charts/Hybrid.Charts.fsproj"
    "src/Hybrid.CSharp/Hybrid.CSharp.csproj"
    "src/Hybrid.Interactive/Hybrid.Interactive.fsproj"
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

/// Every string in the outputs of an executed notebook (.ipynb): each MIME type's data and each stream's text.
let notebookOutputs (ipynb: string) =
    let text (e: Text.Json.JsonElement) =
        match e.ValueKind with
        | Text.Json.JsonValueKind.Array -> e.EnumerateArray() |> Seq.map (fun l -> l.GetString()) |> String.concat ""
        | Text.Json.JsonValueKind.String -> e.GetString()
        | _ -> ""

    if File.Exists ipynb then
        use doc = Text.Json.JsonDocument.Parse(File.ReadAllText ipynb)

        [
            for cell in doc.RootElement.GetProperty("cells").EnumerateArray() do
                match cell.TryGetProperty "outputs" with
                | true, outputs ->
                    for output in outputs.EnumerateArray() do
                        match output.TryGetProperty "data" with
                        | true, data ->
                            for mime in data.EnumerateObject() do
                                text mime.Value
                        | _ -> ()

                        match output.TryGetProperty "text" with
                        | true, t -> text t
                        | _ -> ()
                | _ -> ()
        ]
    else
        []

/// What the executed docs/notebook.dib must show, exactly as Hybrid.Interactive's formatters write it: the
/// extension script of the package loaded, the model's equation in LaTeX (HTML-escaped), the parameter table's
/// row of K with its constraint, the summary line of the simulated tensor (u(t) = 1 / (1 + 9 exp(-0.3 t)) at
/// t = 0.5, 1, ..., 4 to 6 digits) and the training result's table with its loss chart.
let docsNotebookExpected = [
    $"hybrid.interactive/{version}/interactive-extensions/dotnet/extension.dib"
    "\\frac{\\partial u}{\\partial t} &amp;= r \\, u \\, \\left(1 - \\frac{u}{K}\\right)"
    "<tr><td>K</td><td>in [0.5, 5]</td><td>1</td><td>learnable</td><td>1</td></tr>"
    "tensor Float64 [20, 1]: 0.114333, 0.130423, 0.148398, 0.16837, 0.190429, 0.214632, 0.240996, 0.269487, … (20 values)"
    "<table class=\"hybrid-train-result-table\">\n<tbody>\n<tr><th>epochs</th><td>150</td></tr>"
    "<tr><th>ended</th><td>all epochs run</td></tr>"
    "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"hybrid-loss-chart\""
]

/// The consumers in tests/consumers use Hybrid as an application outside this repository would: from the
/// packages in artifacts/packages (tests/consumers/NuGet.config), restored into their own packages folder
/// (artifacts/consumer-packages) from which Hybrid's packages are removed first, so a package restored by an
/// earlier build cannot stand in for the one just packed. The third-party packages stay there between runs.
/// Each consumer counts as one test (exit code 0 = passed): a script, a C# project and a notebook, and the
/// documentation's notebook (docs/notebook.dib, its outputs checked); so does the check of the packages' metadata
/// before them.
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

    // The documentation's notebook, run as a user would (Hybrid.Interactive from the feed, its formatters loaded
    // by the package's extension script), passes when no cell fails and its outputs show what the formatters write.
    let docsExecuted = Path.Combine(resultsDir, "docs-notebook.ipynb")
    File.Delete docsExecuted
    let docsNotebook = Path.Combine(root, "docs", "notebook.dib")

    match repl with
    | Ok repl ->
        Trace.log "── consumer: docs/notebook.dib (dotnet-repl, #r \"nuget: Hybrid.Interactive\")"
        let watch = Diagnostics.Stopwatch.StartNew()

        let code =
            exec
                repl
                $"--run \"{docsNotebook}\" --exit-after-run --output-format ipynb --output-path \"{docsExecuted}\""
                consumers
                env

        Trace.log $"   docs/notebook.dib: exit code {code} in {watch.Elapsed.TotalSeconds:F0} s"
        let outputs = notebookOutputs docsExecuted

        let problems = [
            if code <> 0 then
                $"dotnet-repl exited with {code}"
            yield! notebookErrors docsExecuted
            for expected in docsNotebookExpected do
                if not (outputs |> List.exists (fun o -> o.Contains expected)) then
                    $"no output of {docsExecuted} contains '{expected}' (src/Hybrid.Interactive writes it; docs/notebook.dib shows it)"
        ]

        match problems with
        | [] -> count (1, 0, 0)
        | problems ->
            Trace.traceError "consumer docs/notebook.dib failed"

            for line in problems do
                Trace.traceError $"   {line}"

            count (0, 1, 0)
    | Error _ -> count (0, 1, 0)

/// The documentation site: fsdocs' API reference of the packed libraries and the pages of docs/ (the literate
/// `.fsx` pages are type-checked for their tooltips, not run: Test runs them as scripts), written to artifacts/docs.
let siteDir = Path.Combine(root, "artifacts", "docs")

/// Where the site is served from: every link fsdocs writes starts with it (serve artifacts/docs at a web root).
let siteRoot = "/"

/// Files whose public members may still lack `///` docs because they are being rewritten elsewhere; the
/// missing-docs check skips them. Paths relative to the repository root; a folder ends with '/'. Empty: every
/// public member of the documented packages has docs (the CLI is an application, not on the site, and its
/// modules are internal).
let undocumentedAllowed: string list = []

/// Pages of the site that fsdocs links to but does not write, because of a defect of fsdocs itself; the link
/// check accepts links to them. Remove an entry when fsdocs writes the page (the check then passes without it).
/// - reference/hybrid-dimension.html: fsdocs 22.2.0 fails on the type abbreviation `Dimension = Map<string, int>`
///   ("The entity Microsoft.FSharp.Collections.FSharpMap`2 was not registered before!") when the four packages
///   are documented together (alone, Hybrid.Dsl's page is written), yet links to it from the Units module's page.
let missingPagesAllowed: string list = [ "reference/hybrid-dimension.html" ]

/// Entities whose docs fsdocs cannot read (it prints "Could not read comments from entity 'X'" and leaves them out
/// of the site or without their docs), accepted by the missing-docs check; remove an entry once fsdocs reads it.
/// - Hybrid.Dimension: the fsdocs defect of `missingPagesAllowed`.
/// - Hybrid.CSharp.HybridEnsemble.TrainAsync: an `async` C# method; fsdocs 22.2.0 cannot convert its
///   `AsyncStateMachine(typeof(…))` attribute, so the member is missing from HybridEnsemble's page (a
///   non-async `TrainAsync` that returns the task of an async private method would be listed).
let unreadableAllowed: string list = [ "Hybrid.Dimension" ]

/// Runs `dotnet fsdocs build` (fsdocs-tool of .config/dotnet-tools.json) with `--strict` and its warnings on
/// missing docs turned on; gives its exit code and the lines it printed. The FD0001 and parameter warnings, the
/// files copied and pages written, and fsdocs' advice on unset project properties are not echoed: the
/// missing-docs check below reports the warnings that count.
let buildSite () =
    // fsdocs caches what it read from the projects in .fsdocs/; a stale cache could hide a changed property.
    let cache = Path.Combine(root, ".fsdocs")

    if Directory.Exists cache then
        Directory.Delete(cache, true)

    let projects = packedProjects |> List.map (fun p -> $"\"{p}\"") |> String.concat " "

    let args =
        $"fsdocs build --strict --clean --input docs --output \"{siteDir}\" --projects {projects}"
        + $" --properties Configuration={configuration} FsDocsWarnOnMissingDocs=true FsDocsGenerateLlmsTxt=false"
        + $" --parameters root {siteRoot}"

    let psi =
        Diagnostics.ProcessStartInfo(
            "dotnet",
            args,
            WorkingDirectory = root,
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true
        )

    let lines = Collections.Concurrent.ConcurrentQueue<string>()

    let echo (line: string) =
        if not (isNull line) then
            lines.Enqueue line

            let quiet =
                line.Contains "warning FD0001"
                || line.Contains "): warning: "
                || line.StartsWith "  copying "
                || line.StartsWith "  Generating "
                || line.StartsWith "please set '<"

            if not quiet then
                printfn "%s" line

    use p = new Diagnostics.Process(StartInfo = psi)
    p.OutputDataReceived.Add(fun e -> echo e.Data)
    p.ErrorDataReceived.Add(fun e -> echo e.Data)
    p.Start() |> ignore
    p.BeginOutputReadLine()
    p.BeginErrorReadLine()
    p.WaitForExit()
    p.ExitCode, List.ofSeq lines

/// Public members without a `///` summary, one line each (file, line, documentation id), from fsdocs' FD0001
/// warnings, less the members no one can document: F#'s generated `Is<Case>` properties of unions, the members
/// the C# compiler generates for records and enums and implicit constructors (the C# compiler checks the rest:
/// CS1591 is an error there), and the files of `undocumentedAllowed`; and the entities fsdocs could not read, less
/// those of `unreadableAllowed`.
let missingDocs (fsdocsOutput: string list) =
    let warning =
        Regex @"^(?<file>.*)\((?<line>\d+),\d+\): warning FD0001: no documentation for '(?<id>[^']+)'"

    let entries = [
        for line in fsdocsOutput do
            let m = warning.Match line

            if m.Success then
                let file = Path.GetRelativePath(root, m.Groups["file"].Value).Replace('\\', '/')
                file, m.Groups["line"].Value, m.Groups["id"].Value
    ]

    // What the XML doc files document; a union case's documentation id is T:Union.Case.
    let documentedIds =
        [
            for project in packedProjects do
                let name = Path.GetFileNameWithoutExtension project

                let xml =
                    Path.Combine(root, Path.GetDirectoryName project, "bin", configuration, "net10.0", name + ".xml")

                if File.Exists xml then
                    for m in Regex.Matches(File.ReadAllText xml, "<member name=\"([^\"]+)\"") do
                        m.Groups[1].Value
        ]
        |> Set.ofList

    let unionTester (id: string) =
        let m = Regex.Match(id, @"^P:(?<union>.+)\.Is(?<case>[A-Z]\w*)$")

        m.Success
        && documentedIds.Contains $"""T:{m.Groups["union"].Value}.{m.Groups["case"].Value}"""

    // Records' ToString, equality, <Clone>$ and Deconstruct, enums' value__, and implicit constructors (M:T.#ctor,
    // no parameters): generated by the C# compiler, so they have no source to document.
    let csharpGenerated (id: string) =
        Regex.IsMatch(
            id,
            @"^M:Hybrid\.CSharp\..*\.(ToString|GetHashCode|Equals|<Clone>\$|Deconstruct|op_Equality|op_Inequality|PrintMembers)(\(|$)"
        )
        || Regex.IsMatch(id, @"^M:Hybrid\.CSharp\.[^(]*\.#ctor$")
        || Regex.IsMatch(id, @"^F:Hybrid\.CSharp\..*\.value__$")

    let allowed (file: string) =
        undocumentedAllowed
        |> List.exists (fun a -> if a.EndsWith "/" then file.StartsWith a else file = a)

    // fsdocs reports no union case without docs, but it does report the case's Is<Case> property then.
    let described (id: string) =
        let m = Regex.Match(id, @"^P:(?<union>.+)\.Is(?<case>[A-Z]\w*)$")

        if m.Success then
            $"""union case {m.Groups["union"].Value}.{m.Groups["case"].Value} (or the property {id})"""
        else
            id

    let unreadable = [
        for line in fsdocsOutput do
            let m = Regex.Match(line, "^Could not read comments from entity '(?<entity>[^']+)'")

            if m.Success && not (List.contains m.Groups["entity"].Value unreadableAllowed) then
                $"""{m.Groups["entity"].Value}: fsdocs could not read its docs, so the site lacks them (see its message above)"""
    ]

    [
        yield!
            entries
            |> List.filter (fun (file, _, id) -> not (unionTester id || csharpGenerated id || allowed file))
            |> List.distinct
            |> List.map (fun (file, line, id) -> $"{file}({line}): {described id} has no /// summary")
        yield! List.distinct unreadable
    ]

/// Links in the site's pages that lead nowhere, one line each: every `href` and `src` that is not an external
/// URL must name a file of the site (a folder: its index.html), and its `#anchor`, if any, an `id` or `name` in
/// that page. The pages are the HTML files fsdocs wrote; HTML files copied as they are from docs/ (the
/// report's Plotly charts) are assets, whose script text is not read as links.
let brokenLinks () =
    let attribute = Regex "\\b(?:href|src)\\s*=\\s*(?:\"(?<v>[^\"]*)\"|'(?<v>[^']*)')"
    let anchor = Regex "\\b(?:id|name)\\s*=\\s*[\"'](?<v>[^\"']*)[\"']"
    let anchorsOf = Collections.Generic.Dictionary<string, Set<string>>()

    let anchors (file: string) =
        match anchorsOf.TryGetValue file with
        | true, set -> set
        | _ ->
            let set =
                [
                    for m in anchor.Matches(File.ReadAllText file) -> Net.WebUtility.HtmlDecode m.Groups["v"].Value
                ]
                |> Set.ofList

            anchorsOf[file] <- set
            set

    let pages =
        Directory.GetFiles(siteDir, "*.html", SearchOption.AllDirectories)
        |> Array.filter (fun page -> not (File.Exists(Path.Combine(root, "docs", Path.GetRelativePath(siteDir, page)))))
        |> Array.sort

    [
        for page in pages do
            let pageName = Path.GetRelativePath(siteDir, page).Replace('\\', '/')

            for m in attribute.Matches(File.ReadAllText page) do
                let link = Net.WebUtility.HtmlDecode m.Groups["v"].Value

                let external =
                    link.StartsWith "//" || Regex.IsMatch(link, "^[a-zA-Z][a-zA-Z0-9+.-]*:")

                if link = "" then
                    $"{pageName}: an empty link"
                elif not external then
                    let path, fragment =
                        match link.Split('#', 2) with
                        | [| path; fragment |] -> path, Some(Uri.UnescapeDataString fragment)
                        | parts -> parts[0], None

                    let path = path.Split('?').[0]

                    let target =
                        if path = "" then
                            page
                        elif path.StartsWith siteRoot then
                            Path.Combine(siteDir, Uri.UnescapeDataString(path.Substring siteRoot.Length))
                        else
                            Path.Combine(Path.GetDirectoryName page, Uri.UnescapeDataString path)
                        |> Path.GetFullPath

                    let target =
                        if Directory.Exists target then
                            Path.Combine(target, "index.html")
                        else
                            target

                    let known =
                        missingPagesAllowed
                        |> List.exists (fun p -> target = Path.GetFullPath(Path.Combine(siteDir, p)))

                    if known then
                        ()
                    elif not (target.StartsWith(Path.GetFullPath siteDir)) || not (File.Exists target) then
                        $"{pageName}: '{link}' names no file of the site"
                    else
                        match fragment with
                        | Some id when id <> "" && target.EndsWith ".html" && not ((anchors target).Contains id) ->
                            $"{pageName}: '{link}': {Path.GetFileName target} has no element with id '{id}'"
                        | _ -> ()
    ]
    |> List.distinct

/// Builds the site and checks it; three tests: the build (fsdocs --strict: the pages' F# code type-checks), no
/// broken links, no public member without docs. Each failure names what to fix.
let runSite () =
    Trace.log "── docs site (fsdocs)"
    let watch = Diagnostics.Stopwatch.StartNew()
    let code, output = buildSite ()

    let test (name: string) (problems: string list) =
        match problems with
        | [] -> count (1, 0, 0)
        | _ ->
            Trace.traceError $"docs site: {name}"

            for problem in problems do
                Trace.traceError $"   {problem}"

            count (0, 1, 0)

    if code <> 0 then
        test "fsdocs build failed" [ $"dotnet fsdocs build exited with code {code}; its errors are above" ]

    if not (File.Exists(Path.Combine(siteDir, "index.html"))) then
        test "no site to check" [
            $"{siteDir}/index.html was not written, so neither links nor docs were checked"
        ]

        count (0, 1, 0)
    else
        if code = 0 then
            count (1, 0, 0)

        test
            "broken links (fix the link in the page's source under docs/ or in the /// comment it comes from)"
            (brokenLinks ())

        test
            "public members without docs (add a /// summary: what it is, its units or shape where relevant)"
            (missingDocs output)

    Trace.log $"   docs site: built and checked in {watch.Elapsed.TotalSeconds:F0} s, {siteDir}"

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
    runDocScripts ()
    runSite ()
    runConsumers ())

/// The docs site alone (fsdocs, then its checks): artifacts/docs.
Target.create "Docs" (fun _ ->
    testsRan <- true
    runSite ())

/// The literate docs and experiment scripts alone, run as scripts (also part of Test).
Target.create "DocScripts" (fun _ ->
    testsRan <- true
    runDocScripts ())

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

// The flagship job: every case study against its baselines end to end with the quick settings, the climate
// GCM-lite case first (ReportTasks.report's order); the report goes to report/. `Report` runs the full settings.
// `hybrid climate` runs the climate case alone.
Target.create "Run" (fun _ ->
    dotnet $"run --project src/Hybrid.Cli -c {configuration} --no-build -- report --quick report")

Target.create "Bench" (fun _ ->
    // Benchmarks, not tests: each writes its figures (with the machine) to bench/*.md for the README.
    dotnet $"run --project src/Hybrid.Cli -c {configuration} --no-build -- bench bench/results.md"
    dotnet $"run --project src/Hybrid.Cli -c {configuration} --no-build -- bench-kernels"
    // PyTorch peers: installs Debian's python3-torch where it is missing and apt-get is at hand (the bench skips
    // the peer with a note where PyTorch still cannot be imported).
    if
        exec "sh" "-c \"python3 -c 'import torch' || /usr/bin/python3 -c 'import torch'\"" root []
        <> 0
    then
        exec "sh" "-c \"command -v apt-get && apt-get install -y -qq --no-install-recommends python3-torch\"" root []
        |> ignore

    dotnet $"run --project src/Hybrid.Cli -c {configuration} --no-build -- bench-peers"
    // Work–precision against SciPy: installs Debian's python3-scipy where it is missing and apt-get is at hand.
    if
        exec "sh" "-c \"/usr/bin/python3 -c 'import scipy' || python3 -c 'import scipy'\"" root []
        <> 0
    then
        exec "sh" "-c \"command -v apt-get && apt-get install -y -qq --no-install-recommends python3-scipy\"" root []
        |> ignore

    dotnet $"run --project src/Hybrid.Cli -c {configuration} --no-build -- bench-stiff")

Target.create "Report" (fun _ ->
    // Case studies against their baselines, full settings: report/summary.md, CSV files of every number, charts.
    // The report's tasks run as a sweep in report/sweep on a pool of local processes (one per core, one thread
    // each); a run stopped midway resumes where it stopped.
    dotnet $"run --project src/Hybrid.Cli -c {configuration} --no-build -- report --on local report")

"Restore" ==> "Build" ==> "Pack" ==> "Test" |> ignore
"Pack" ==> "Consumers" |> ignore
"Build" ==> "Run" |> ignore
"Build" ==> "Docs" |> ignore
"Build" ==> "DocScripts" |> ignore
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
