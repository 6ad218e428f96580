namespace Hybrid

/// The notation a model was written in. The checks write each suggested fix in it, so that a user of the text
/// form is never shown builder code, nor the other way round.
[<RequireQualifiedAccess>]
type ModelSyntax =
    /// The F# `model "name" { … }` builder, and models built by hand with the `Model` functions:
    /// fixes read `boundary "u" noFlux`.
    | Builder
    /// The text form read by `Parse.model` (and written, statement by statement, by the C# facade's model
    /// builder): fixes read `boundary u noflux`.
    | Text
