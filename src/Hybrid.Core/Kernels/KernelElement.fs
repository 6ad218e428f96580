namespace Hybrid.Kernels

open System
open System.Numerics
open System.Runtime.InteropServices
open TorchSharp
open Hybrid

/// The element type 'T of the arrays the generated kernels and their explicit steppers run on: float (Float64, every
/// scheme) or float32 (Float32, the explicit fixed-step path). Conversions between 'T and float64 values, and
/// between 'T arrays and TorchSharp tensors of the matching dtype, so that generic code reads the same for both.
[<RequireQualifiedAccess>]
module internal KernelElement =

    /// The precision of 'T (float or float32; raises for others).
    let precision<'T> () : Precision = Codegen.precisionOf<'T> ()

    /// The TorchSharp dtype of 'T.
    let dtype<'T> () : torch.ScalarType =
        match precision<'T> () with
        | Float64 -> torch.ScalarType.Float64
        | Float32 -> torch.ScalarType.Float32

    /// x rounded to 'T (the identity for float).
    let ofFloat<'T when 'T :> INumber<'T>> (x: float) : 'T = 'T.CreateTruncating x

    /// x as a float64 (exact).
    let toFloat<'T when 'T :> INumber<'T>> (x: 'T) : float = Double.CreateTruncating x

    /// `values` as float64 values: the array itself for float, else a converted copy.
    let floats<'T when 'T :> INumber<'T>> (values: 'T[]) : float[] =
        match box values with
        | :? (float[]) as v -> v
        | _ -> Array.map toFloat values

    /// `x` converted to `dtype<'T>`, on the CPU and contiguous (sharing `x`'s storage where it already is so).
    let contiguous<'T> (x: torch.Tensor) : torch.Tensor =
        x.to_type(dtype<'T> ()).cpu().contiguous ()

    /// The values of `x` (a contiguous CPU tensor of dtype `dtype<'T>`: `contiguous`) as a span over its storage, no
    /// copy: valid while `x` lives (keep it alive past the span's last use).
    let span<'T when 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType> (x: torch.Tensor) : Span<'T> =
        if x.numel () = 0L then
            Span<'T>.Empty
        else
            MemoryMarshal.Cast<byte, 'T>(x.bytes)

    /// A 1-D tensor of dtype `dtype<'T>` holding a copy of `values`, written straight into its storage (`torch.tensor`
    /// of an array pins a managed copy of it: on the large-object heap for arrays above 85 kB, collected in gen 2).
    let tensor<'T when 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType> (values: 'T[]) : torch.Tensor =
        let t = torch.empty ([| int64 values.Length |], dtype = dtype<'T> ())
        Span<'T>(values).CopyTo(span<'T> t)
        t

    /// The values of `x` (converted to `dtype<'T>`, on the CPU) as a flat 'T array.
    let values<'T> (x: torch.Tensor) : 'T[] =
        let c = x.to_type(dtype<'T> ()).cpu().contiguous ()

        match precision<'T> () with
        | Float64 -> unbox<'T[]> (box (c.data<float>().ToArray()))
        | Float32 -> unbox<'T[]> (box (c.data<float32>().ToArray()))
