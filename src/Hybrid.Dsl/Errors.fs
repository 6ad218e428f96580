namespace Hybrid

open System

/// The one exception type Hybrid raises for problems a user can fix: a bad model, bad input data,
/// a missing native library. The message names the symbol or file, the offending value, and the fix.
type HybridException
    /// Creates the exception with its message (what went wrong, the values, the fix) and the exception that
    /// caused it (or null).
    (message: string, inner: exn) =
    inherit Exception(message, inner)

    /// Creates the exception with a message and no inner exception.
    new(message: string) = HybridException(message, null)

/// Raised when a model is ill-formed (undefined symbol, missing boundary condition, unit mismatch, …).
type ModelException
    /// Creates the exception with its message, which names the symbol and the fix.
    (message: string) =
    inherit HybridException(message)

/// Raised when equation text cannot be parsed. Line and column are 1-based.
type ParseException
    /// Creates the exception with its message and the 1-based line and column of the offending character.
    (message: string, line: int, column: int) =
    inherit HybridException(message)

    /// 1-based line of the offending character.
    member _.Line = line

    /// 1-based column of the offending character.
    member _.Column = column

/// Raised when a simulation or a training run diverges: a field holds NaN or ±∞ or passes
/// `Rollout.maxMagnitude`, or a training loss is not finite. `TrainOptions.Recoveries` lets the trainer roll back
/// and retry with smaller learning rates instead of failing.
type DivergenceException
    /// Creates the exception with its message (the field or loss, the value, where, and the fix).
    (message: string) =
    inherit HybridException(message)

/// Raised when the numerical engine (TorchSharp/libtorch) cannot be loaded or configured.
type EngineException
    /// Creates the exception with its message (what could not be loaded or set, and the fix) and the exception
    /// that caused it (or null).
    (message: string, inner: exn) =
    inherit HybridException(message, inner)

    /// Creates the exception with a message and no inner exception.
    new(message: string) = EngineException(message, null)
