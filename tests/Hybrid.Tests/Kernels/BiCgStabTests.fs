/// The kernels' BiCGSTAB on arrays (`BiCgStab.solve`), which solves several systems at once whose operator is applied
/// to all of them together (Rodas4's matrix-free solves: one system per trajectory): each system against a dense
/// solve by TorchSharp at the tolerance's residual, the same bits as solved alone (a system that has converged keeps
/// its x while the others go on), and its failure naming the caller's system and fix.
module Hybrid.Tests.Kernels.BiCgStabTests

open Expecto
open TorchSharp
open Hybrid
open Hybrid.Kernels

let private caller: BiCgStabCaller = {
    System = "the test's system"
    NotConverged = "Try the test's fix."
    BrokeDown = "Try the test's other fix."
}

/// `systems` non-symmetric systems of `size` unknowns (row-major, one after the other): A_q = d_q I + R_q with R_q
/// random in [−0.5, 0.5]/√size, so that the larger d_q, the better conditioned (fewer iterations).
let private matrices (diagonals: float[]) (size: int) =
    let rng = System.Random 11

    [|
        for d in diagonals ->
            Array.init (size * size) (fun e ->
                (if e / size = e % size then d else 0.0)
                + (rng.NextDouble() - 0.5) / sqrt (float size))
    |]

/// y = A_q x_q for every system q (x, y: the systems' vectors one after the other).
let private applyAll (a: float[][]) (size: int) (x: float[]) (y: float[]) =
    for q in 0 .. a.Length - 1 do
        for r in 0 .. size - 1 do
            let mutable sum = 0.0

            for c in 0 .. size - 1 do
                sum <- sum + a[q].[r * size + c] * x[q * size + c]

            y[q * size + r] <- sum

let private identity (x: float[]) (y: float[]) = System.Array.Copy(x, y, x.Length)

let tests =
    testList "BiCGSTAB on arrays" [
        test
            "several systems at once: each within the tolerance of TorchSharp's dense solve, and the bits of solving it alone" {
            Engine.init ()
            let size = 40
            let diagonals = [| 1.2; 4.0; 0.9 |]
            let a = matrices diagonals size
            let rng = System.Random 3
            let rhs = Array.init (diagonals.Length * size) (fun _ -> rng.NextDouble() - 0.5)
            let tolerance = 1e-12
            let together = Array.copy rhs
            BiCgStab.solve caller (SolveVectors()) diagonals.Length size (applyAll a size) identity tolerance together 0

            for q in 0 .. diagonals.Length - 1 do
                use _ = torch.NewDisposeScope()

                let m =
                    torch.tensor(a[q], dtype = torch.ScalarType.Float64).reshape (int64 size, int64 size)

                let b =
                    torch.tensor (rhs[q * size .. (q + 1) * size - 1], dtype = torch.ScalarType.Float64)

                let exact = torch.linalg.solve(m, b).data<float>().ToArray()
                let x = together[q * size .. (q + 1) * size - 1]
                let scale = exact |> Array.map abs |> Array.max
                let error = Array.map2 (fun p e -> abs (p - e)) x exact |> Array.max
                // ‖x − x*‖ ≤ cond(A)·tolerance·‖x*‖; these are conditioned well below 1e3.
                Expect.isLessThan (error / scale) 1e-9 $"system {q} against the dense solve"

                // Alone: one system from its offset in the same vector, the others untouched.
                let alone = Array.copy rhs
                let one = [| a[q] |]

                BiCgStab.solve caller (SolveVectors()) 1 size (applyAll one size) identity tolerance alone (q * size)

                Expect.sequenceEqual alone[q * size .. (q + 1) * size - 1] x $"system {q}: the same bits as alone"
                Expect.sequenceEqual alone[.. q * size - 1] rhs[.. q * size - 1] "the systems before it untouched"
        }

        test "the iteration limit names the caller's system, the tolerance and the fix" {
            // A skew-symmetric A (purely imaginary eigenvalues): BiCGSTAB's minimal-residual step finds tᵀs = 0 and
            // stagnates.
            let size = 30
            let r = (matrices [| 0.0 |] size)[0]
            let a = [| Array.init (size * size) (fun e -> r[e] - r[(e % size) * size + e / size]) |]
            let rhs = Array.init size (fun i -> float (i + 1))

            let e =
                Expect.throwsC
                    (fun () -> BiCgStab.solve caller (SolveVectors()) 1 size (applyAll a size) identity 1e-10 rhs 0)
                    (fun e -> e.Message)

            Expect.stringContains
                e
                "did not reach the relative residual 1E-10 in 160 iterations on 30 unknowns (the test's system)"
                "names the system"

            Expect.stringContains e "Try the test's fix." "and the fix"
        }
    ]
