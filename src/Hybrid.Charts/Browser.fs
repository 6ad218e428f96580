/// Finding a local Chromium for static images (Plotly.NET.ImageExport renders through PuppeteerSharp), and
/// rendering with a time limit so that a browser that hangs never hangs the caller.
module internal Hybrid.Charts.Browser

open System
open System.IO
open System.Threading.Tasks
open Plotly.NET
open Plotly.NET.ImageExport

/// The environment variable that names the browser executable to use (it wins over PATH).
[<Literal>]
let Variable = "HYBRID_CHROMIUM"

/// The executable names looked up on PATH, in order.
let names = [ "chromium"; "chromium-browser"; "google-chrome"; "google-chrome-stable" ]

/// The browser to render with: `HYBRID_CHROMIUM` when it names an existing file, else the first of `names` on
/// `path` (a PATH-style list of folders).
let find (variable: string option) (path: string) : string option =
    match variable with
    | Some exe when File.Exists exe -> Some exe
    | _ ->
        let folders = path.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)

        names
        |> List.tryPick (fun exe ->
            folders
            |> Array.map (fun d -> Path.Combine(d, exe))
            |> Array.tryFind File.Exists)

/// `find` with this process's environment.
let findHere () : string option =
    let variable =
        Environment.GetEnvironmentVariable Variable
        |> Option.ofObj
        |> Option.filter (fun s -> s <> "")

    find
        variable
        (Environment.GetEnvironmentVariable "PATH"
         |> Option.ofObj
         |> Option.defaultValue "")

/// The message of `ImageResult.NoBrowser`.
let noBrowserMessage (path: string) =
    $"""No browser to render the image {path}: none of {String.Join(", ", names)} is on PATH and {Variable} is not set. Install one (e.g. Debian's 'apt-get install chromium') or set {Variable} to a Chromium executable; the HTML page needs no browser (Charts.writeHtml)."""

/// One rendering at a time: Plotly.NET.ImageExport takes the browser path from process-wide options.
let private gate = obj ()

/// Renders `chart` to `path` (the format's extension is added when `path` lacks it) with the browser `exe`,
/// `width` × `height` pixels, giving up after `timeout`.
let render
    (exe: string)
    (timeout: TimeSpan)
    (format: ImageFormat)
    (width: int)
    (height: int)
    (path: string)
    (chart: GenericChart)
    : ImageResult =
    let target =
        if Path.GetExtension(path).Equals(format.Extension, StringComparison.OrdinalIgnoreCase) then
            path
        else
            path + format.Extension

    // ImageExport adds the extension itself: give it the path without one.
    let stem = target.Substring(0, target.Length - format.Extension.Length)

    lock gate (fun () ->
        PuppeteerSharpRendererOptions.localBrowserExecutablePath <- Some exe

        PuppeteerSharpRendererOptions.launchOptions.Args <- [|
            "--no-sandbox"
            "--disable-gpu"
            "--disable-dev-shm-usage"
        |]

        let save: GenericChart -> Task<unit> =
            match format with
            | ImageFormat.Png -> Chart.savePNGAsync (stem, Width = width, Height = height)
            | ImageFormat.Svg -> Chart.saveSVGAsync (stem, Width = width, Height = height)
            | ImageFormat.Jpg -> Chart.saveJPGAsync (stem, Width = width, Height = height)

        try
            let task = save chart

            if task.Wait timeout then
                if File.Exists target then
                    ImageResult.Written target
                else
                    ImageResult.Failed $"{exe} finished but wrote no {target}."
            else
                ImageResult.Failed
                    $"{exe} did not render {target} within {timeout.TotalSeconds:F0} s; the HTML page (Charts.writeHtml) shows the chart without a browser here."
        with e ->
            let inner = e.GetBaseException()
            ImageResult.Failed $"{exe} could not render {target}: {inner.GetType().Name}: {inner.Message}")
