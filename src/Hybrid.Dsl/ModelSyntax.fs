namespace Hybrid

/// The notation a model was written in. The checks write each suggested fix in it, so that a user of the text
/// form is never shown builder code, nor the other way round.
[<RequireQualifiedAccess>]
type ModelSyntax =
    /// The F# `model "name" { … }` builder, and models built by hand with the `Model` functions:
    /// fixes read `boundary "u" noFlux`.
    | Builder
    /// The text form read by `Parse.model`: fixes read `boundary u noflux`.
    | Text
    /// The C# facade's `ModelBuilder`: fixes read `.Boundary("u", "noflux")`, and where it has no method, the
    /// text-form statement for `HybridModel.BuilderFromText`.
    | CSharp
