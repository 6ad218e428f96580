namespace Hybrid

/// Tensor shapes in messages, as users write them: `[32, 2]`, `[]` for a scalar.
module internal ShapeText =

    /// `[d₀, d₁, …]`.
    let ofShape (shape: int64[]) =
        "[" + System.String.Join(", ", shape) + "]"
