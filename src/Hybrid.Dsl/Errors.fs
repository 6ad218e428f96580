namespace Hybrid

open System

/// The one exception type Hybrid raises for problems a user can fix: a bad model, bad input data,
/// a missing native library. The message names the symbol or file, the offending value, and the fix.
type HybridException(message: string, inner: exn) =
    inherit Exception(message, inner)

    /// Creates the exception with a message and no inner exception.
    new(message: string) = HybridException(message, null)

/// Raised when a model is ill-formed (undefined symbol, missing boundary condition, unit mismatch, …).
type ModelException(message: string) =
    inherit HybridException(message)

/// Raised when equation text cannot be parsed. Line and column are 1-based.
type ParseException(message: string, line: int, column: int) =
    inherit HybridException(message)

    /// 1-based line of the offending character.
    member _.Line = line

    /// 1-based column of the offending character.
    member _.Column = column

/// Raised when the numerical engine (TorchSharp/libtorch) cannot be loaded or configured.
type EngineException(message: string, inner: exn) =
    inherit HybridException(message, inner)

    /// Creates the exception with a message and no inner exception.
    new(message: string) = EngineException(message, null)
