namespace Hybrid.Charts

/// A static image format that `Charts.tryWriteImage` writes (through a headless Chromium).
[<RequireQualifiedAccess>]
type ImageFormat =
    /// A PNG bitmap.
    | Png
    /// An SVG vector image (plotly.js's own SVG).
    | Svg
    /// A JPEG bitmap.
    | Jpg

    /// The file extension of the format, with its dot (".png", ".svg", ".jpg").
    member format.Extension =
        match format with
        | Png -> ".png"
        | Svg -> ".svg"
        | Jpg -> ".jpg"

/// What `Charts.tryWriteImage` did.
[<RequireQualifiedAccess>]
type ImageResult =
    /// The image was written to this path.
    | Written of path: string
    /// No Chromium or Chrome executable was found, so nothing was written; the message says where it looked and
    /// how to install one.
    | NoBrowser of message: string
    /// A browser was found but could not render the image (or took longer than the time limit); the message says
    /// which browser and why.
    | Failed of message: string
