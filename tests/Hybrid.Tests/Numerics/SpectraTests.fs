/// Isotropic energy and enstrophy spectra (`Spectra`) against analytic results: single Fourier modes land in exactly
/// their shells with the enstrophy ½·(amplitude²/2) and the energy that over each wavevector's own |k|², Parseval
/// (Σ_k Z(k) = ½ mean(ω²)) on a random field, the tensor entry averaging over its leading dimension, and errors.
module Hybrid.Tests.Numerics.SpectraTests

open System
open Expecto
open TorchSharp
open Hybrid
open Hybrid.Numerics

let private twoPi = 2.0 * Math.PI

/// An n × n field on the cell centres of [0, 2π]² (first index x, second y).
let private field (n: int) (f: float -> float -> float) =
    let h = twoPi / float n
    Array2D.init n n (fun i j -> f ((float i + 0.5) * h) ((float j + 0.5) * h))

let private close (what: string) (expected: float) (actual: float) =
    // Double round-off of a DFT of 32² values: ~1e-15 relative to the largest coefficient; 1e-12 leaves room.
    Expect.floatClose { absolute = 1e-12; relative = 1e-10 } actual expected what

let tests =
    testList "Numerics.Spectra" [
        test "single modes land in exactly their shells, with Z = a²/4 and E = Σ a²/(4|k|²)" {
            let a, b, c = 1.3, 0.7, 0.4
            // (3, 4): |k| = 5; (0, 1): |k| = 1; (1, 1): |k| = √2, which rounds to shell 1.
            let omega =
                field 32 (fun x y -> a * cos (3.0 * x + 4.0 * y) + b * sin y + c * cos (x + y + 0.3))

            let s = Spectra.ofArrays [| omega |]
            Expect.equal s.Wavenumbers.Length 24 "shells 0 … round(√2 · 16) = 23"
            Expect.equal (s.Wavenumbers[5]) 5.0 "the wavenumber of shell 5"
            // A cosine of amplitude a has two coefficients ±k of a/2: Σ|ω̂|² = a²/2, Z = ½ of that.
            close "Z(1): the (0, 1) and (1, 1) modes" ((b * b + c * c) / 4.0) (s.Enstrophy[1])
            close "Z(5): the (3, 4) mode" (a * a / 4.0) (s.Enstrophy[5])
            // E uses each wavevector's own |k|²: 1 for (0, 1), 2 for (1, 1); Z(1)/1² would be (b² + c²)/4.
            close "E(1)" (b * b / 4.0 + c * c / 8.0) (s.Energy[1])
            close "E(5)" (a * a / 100.0) (s.Energy[5])

            for k in 0 .. s.Wavenumbers.Length - 1 do
                if k <> 1 && k <> 5 then
                    Expect.isLessThan s.Enstrophy[k] 1e-24 $"Z({k}) holds no mode"
                    Expect.isLessThan s.Energy[k] 1e-24 $"E({k}) holds no mode"
        }

        test "Parseval: Σ_k Z(k) = ½ mean(ω²) on a random field" {
            let rng = Random 7
            let omega = Array2D.init 24 24 (fun _ _ -> rng.NextDouble() - 0.5)
            let s = Spectra.ofArrays [| omega |]

            let meanSquare =
                (omega |> Seq.cast<float> |> Seq.sumBy (fun v -> v * v)) / float (24 * 24)

            close "Σ Z" (0.5 * meanSquare) (Array.sum s.Enstrophy)
            // The energy of the mean (k = 0) is not defined: shell 0 holds none.
            Expect.equal (s.Energy[0]) 0.0 "E(0)"
        }

        test "a tensor of fields [B; n; n] gives the average of their spectra" {
            let f1 = field 16 (fun x _ -> cos (2.0 * x))
            let f2 = field 16 (fun _ y -> 3.0 * sin (3.0 * y))

            let flat =
                Array.append (f1 |> Seq.cast<float> |> Array.ofSeq) (f2 |> Seq.cast<float> |> Array.ofSeq)

            let t = torch.tensor(flat, dtype = torch.ScalarType.Float64).reshape (2L, 16L, 16L)

            let s = Spectra.ofTensor t
            close "Z(2): half of the first field's 1/4" 0.125 (s.Enstrophy[2])
            close "Z(3): half of the second field's 9/4" 1.125 (s.Enstrophy[3])
            close "E(3)" (1.125 / 9.0) (s.Energy[3])
        }

        test "fields of different shapes and non-finite values are refused by name" {
            let raisedMessage (f: unit -> Spectrum) =
                try
                    f () |> ignore
                    failtest "no HybridException"
                    ""
                with :? HybridException as e ->
                    e.Message

            Expect.stringContains
                (raisedMessage (fun () -> Spectra.ofArrays [| Array2D.zeroCreate 4 4; Array2D.zeroCreate 4 6 |]))
                "a field of 4 × 6 among fields of 4 × 4"
                "shapes"

            Expect.stringContains
                (raisedMessage (fun () -> Spectra.ofArrays [| Array2D.create 4 4 nan |]))
                "is not finite"
                "NaN"
        }
    ]
