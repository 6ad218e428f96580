/// The kernels split over threads: the worker pool (every part runs once, failures reach the caller, a busy pool
/// runs parts inline), the row split (ranges cover the grid in order; small grids stay whole), and the split
/// passes against the whole kernels on random arrays — forward and stage combinations bit for bit, the adjoint's
/// cell adjoints bit for bit and its scalar θ̄ (summed per part) to 1e-12, and 1 thread = 2 threads bit for bit.
/// Whole rollouts of a split grid against eager TorchSharp run in `KernelTests`' suite (`plane 100 90`).
module Hybrid.Tests.Kernels.ThreadedKernelTests

open System
open System.Threading
open Expecto
open Hybrid
open Hybrid.Numerics
open Hybrid.Kernels

let private planOf, uniform, copies, relative =
    SimdKernelTests.planOf, SimdKernelTests.uniform, SimdKernelTests.copies, SimdKernelTests.relative

/// A pass that counts how often each part ran (and on how many distinct threads), optionally failing at one part.
type private Counting(parts: int, failAt: int) =
    let runs = Array.zeroCreate<int> parts
    let threads = Collections.Concurrent.ConcurrentDictionary<int, bool>()
    member _.Runs = runs
    member _.Threads = threads.Count

    interface IParts with
        member _.Execute(part: int) =
            threads[Environment.CurrentManagedThreadId] <- true
            // Some work, so that workers get a share.
            let mutable x = 0.0

            for i in 1..2000 do
                x <- x + sqrt (float (i + part))

            if part = failAt then
                failwith $"part {part} failed ({x})"

            Interlocked.Increment(&runs[part]) |> ignore

let private poolTests =
    testList "worker pool" [
        test "every part runs exactly once, pass after pass, on 1 and 3 threads" {
            for threads in [ 1; 3 ] do
                use pool = new WorkerPool(threads, 50.0)

                for parts in [ 1; 2; 7; 64 ] do
                    for _ in 1..200 do
                        let pass = Counting(parts, -1)
                        pool.Run(parts, pass)

                        Expect.isTrue
                            (pass.Runs |> Array.forall ((=) 1))
                            $"{threads} threads, {parts} parts: {pass.Runs}"
        }

        test "a failing part's exception reaches the caller, and the pool keeps working" {
            use pool = new WorkerPool(2, 50.0)
            let failing = Counting(16, 5)
            let e = Expect.throwsC (fun () -> pool.Run(16, failing)) id
            Expect.stringContains e.Message "part 5 failed" "the part's own message"
            Expect.equal (failing.Runs |> Array.sum) 15 "the other parts ran"
            let next = Counting(16, -1)
            pool.Run(16, next)
            Expect.isTrue (next.Runs |> Array.forall ((=) 1)) "the next pass runs every part"
        }

        test "a pass started from inside a part, or from a second thread while busy, runs inline and completes" {
            use pool = new WorkerPool(2, 50.0)
            let inner = Array.init 8 (fun _ -> Counting(4, -1))

            let outer =
                { new IParts with
                    member _.Execute(part: int) = pool.Run(4, inner[part])
                }

            pool.Run(8, outer)

            for p in inner do
                Expect.isTrue (p.Runs |> Array.forall ((=) 1)) "nested pass"

            let fromThreads =
                Array.init 4 (fun _ ->
                    let passes = Array.init 100 (fun _ -> Counting(6, -1))

                    let thread =
                        Thread(fun () ->
                            for p in passes do
                                pool.Run(6, p))

                    thread.Start()
                    thread, passes)

            for thread, passes in fromThreads do
                thread.Join()

                for p in passes do
                    Expect.isTrue (p.Runs |> Array.forall ((=) 1)) "concurrent callers"
        }

        test "the workers take parts: a slow pass runs on more than one thread" {
            use pool = new WorkerPool(2, 50.0)

            let used = [
                for _ in 1..50 do
                    let pass = Counting(32, -1)
                    pool.Run(32, pass)
                    pass.Threads
            ]

            Expect.exists used (fun n -> n > 1) "some pass ran on the worker too"
        }

        test "HYBRID_THREADS that is not a positive integer is refused with its name and the fix" {
            let before = Environment.GetEnvironmentVariable "HYBRID_THREADS"

            try
                Environment.SetEnvironmentVariable("HYBRID_THREADS", "two")
                let e = Expect.throwsC (fun () -> KernelThreads.configured () |> ignore) id
                Expect.stringContains e.Message "HYBRID_THREADS = 'two'" "names the variable and value"
                Expect.stringContains e.Message "positive integer" "says the fix"
                Environment.SetEnvironmentVariable("HYBRID_THREADS", "3")
                Expect.equal (KernelThreads.configured ()) 3 "a valid count is read"
            finally
                Environment.SetEnvironmentVariable("HYBRID_THREADS", before)
        }
    ]

let private splitTests =
    testList "row split" [
        test "2-D: rows cover the grid in order; the part count follows the cells, never the threads" {
            let check (nx, ny, batch, parts) =
                let split = RowSplit.ofPlan (planOf (SimdKernelTests.plane nx ny)) batch
                Expect.equal split.Rows.Length parts $"{nx} × {ny}, batch {batch}"
                Expect.equal (fst split.Rows[0]) 0 "starts at row 0"
                Expect.equal (snd (Array.last split.Rows)) nx "ends at the last row"

                for (_, hi), (lo, _) in Array.pairwise split.Rows do
                    Expect.equal lo hi "contiguous"

                Expect.equal split.Flat.Length split.Rows.Length "as many flat ranges"

                for (_, hi), (lo, _) in Array.pairwise split.Flat do
                    Expect.equal lo hi "flat ranges contiguous"
                    Expect.equal (hi % Codegen.width ()) 0 "inner ends on vector boundaries"

                Expect.equal (snd (Array.last split.Flat)) split.Length "flat ranges end at the array's end"

            for case in [ 64, 64, 1, 1; 128, 128, 1, 2; 256, 256, 1, 8; 100, 90, 2, 2; 3, 5000, 4, 3 ] do
                check case
        }

        test "1-D blocks end on vector boundaries; lattices and small grids are not split" {
            let split = RowSplit.ofPlan (planOf (SimdKernelTests.line 40000)) 1
            Expect.equal split.Rows.Length 4 "40,000 cells: 4 parts"

            for _, hi in split.Rows[.. split.Rows.Length - 2] do
                Expect.equal (hi % Codegen.width ()) 0 "block end on a vector boundary"

            Expect.equal (RowSplit.ofPlan (planOf (SimdKernelTests.line 1000)) 4).Rows.Length 1 "small"

            let lattice =
                planOf {
                    Examples.lorenz96 with
                        Domain = Domain.Lattice(64, 32)
                }

            Expect.equal (RowSplit.ofPlan lattice 64).Rows.Length 1 "two-scale lattice"
        }
    ]

/// The split passes (`ForwardPass`, `AdjointPass`, `CombinationPass`) of `model` over the given row ranges on pools
/// of 1 and 2 threads, against the whole kernels on the same random arrays.
let private passAgreement (name: string) (model: Model) (cuts: int list) =
    test name {
        let plan = planOf model
        let rng = Random 23
        let batch = 2
        let fields = plan.Fields.Length
        let size = batch * plan.PaddedCells
        let rows = List.pairwise ([ 0 ] @ cuts @ [ plan.Nx ]) |> Array.ofList

        let split = {
            Rows = rows
            Flat =
                List.pairwise (
                    [ 0 ]
                    @ (cuts
                       |> List.map (fun c -> c * size / plan.Nx / Codegen.width () * Codegen.width ()))
                    @ [ size ]
                )
                |> Array.ofList
            Length = size
        }

        let padded = Array.init fields (fun _ -> uniform rng size 0.5 1.5)
        let theta = uniform rng plan.ThetaLength 0.2 1.0

        let cellArrays n =
            Array.init n (fun _ -> uniform rng size -1.0 1.0)

        let inputs = cellArrays plan.Sites.Length
        let data = cellArrays plan.Forcings.Length
        let t = 0.3
        let output = cellArrays fields
        let lambda = cellArrays fields
        let paddedAdjoint = cellArrays fields
        let thetaAdjoint = uniform rng plan.ThetaLength -1.0 1.0
        let inputAdjoint = cellArrays plan.Sites.Length

        let whole =
            let out = copies output
            (Codegen.forward plan).Invoke(padded, theta, t, out, batch, inputs, data)
            let pa, ta, ia = copies paddedAdjoint, Array.copy thetaAdjoint, copies inputAdjoint
            (Codegen.adjoint plan).Invoke(padded, theta, t, lambda, pa, ta, batch, inputs, ia, data)
            out, pa, ta, ia

        let onPool (threads: int) =
            use pool = new WorkerPool(threads, 50.0)
            let forward = ForwardPass(split, Codegen.forwardRows plan, batch)
            let out = copies output
            forward.Set(padded, theta, t, out, inputs, data)
            pool.Run(forward.Parts, forward)
            let band, core = Codegen.adjointParts plan
            let adjoint = AdjointPass(split, band, core, plan, batch)
            let pa, ta, ia = copies paddedAdjoint, Array.copy thetaAdjoint, copies inputAdjoint
            adjoint.Run(pool, padded, theta, t, lambda, pa, ta, inputs, ia, data)
            // s = u + 0.5·λ − 2·F, the stage combination of a Runge–Kutta step.
            let combination = CombinationPass(split, fields, 3)
            let s = cellArrays fields
            combination.Set(s, padded)
            combination.Add(0.5, lambda)
            combination.Add(-2.0, out)
            pool.Run(combination.Parts, combination)
            out, pa, ta, ia, s

        let wholeOut, wholePa, wholeTa, wholeIa = whole
        let out1, pa1, ta1, ia1, s1 = onPool 1
        let out2, pa2, ta2, ia2, s2 = onPool 2

        for f in 0 .. fields - 1 do
            Expect.sequenceEqual out1[f] wholeOut[f] $"F of field {f}: split = whole, bit for bit"
            Expect.sequenceEqual pa1[f] wholePa[f] $"λᵀ∂F/∂(field {f}): split = whole, bit for bit"

            let expected =
                Array.init size (fun i -> padded[f][i] + 0.5 * lambda[f][i] + -2.0 * wholeOut[f][i])

            Expect.sequenceEqual s1[f] expected $"stage combination of field {f}"

        for site in 0 .. inputAdjoint.Length - 1 do
            Expect.sequenceEqual ia1[site] wholeIa[site] $"λᵀ∂F/∂(closure output {site})"

        // Scalar θ̄ sums its terms per part: a different order than the whole kernel, a few ulps apart.
        Expect.isLessThan (relative ta1 wholeTa) 1e-12 "λᵀ∂F/∂θ"
        Expect.isGreaterThan (relative wholeTa thetaAdjoint) 0.01 "the adjoint added into θ̄"

        for f in 0 .. fields - 1 do
            Expect.sequenceEqual out2[f] out1[f] "forward: 2 threads = 1 thread"
            Expect.sequenceEqual pa2[f] pa1[f] "adjoint: 2 threads = 1 thread"
            Expect.sequenceEqual s2[f] s1[f] "combination: 2 threads = 1 thread"

        Expect.sequenceEqual ta2 ta1 "θ̄: 2 threads = 1 thread, bit for bit"

        for site in 0 .. inputAdjoint.Length - 1 do
            Expect.sequenceEqual ia2[site] ia1[site] "closure outputs' adjoint: 2 threads = 1 thread"
    }

/// The compact step (`Stepper.Step`: slope buffers reused, the step's sum accumulated stage by stage) against the
/// full step (`StepFrom`, every slope kept, one sum at the end) bit for bit, and its adjoint (buffers reused by
/// liveness, λ summed as the stage adjoints come) against central differences of the step, on a split 2-D grid
/// (moving Dirichlet, Neumann and periodic edges, a spatial parameter) for tableaux whose stage inputs read one,
/// two or all earlier slopes.
let private compactTests =
    let model = SimdKernelTests.plane 130 128
    let plan = planOf model

    let schemes = [
        "Euler", Tableau.ofScheme Scheme.Euler, (1, 1)
        "Heun", Tableau.ofScheme Scheme.Heun, (1, 1)
        "SspRk3", Tableau.ofScheme Scheme.SspRk3, (2, 2)
        "Rk4", Tableau.ofScheme Scheme.Rk4, (1, 1)
        "Dormand–Prince", Tableau.dormandPrince, (5, 6)
    ]

    testList "compact steps" [
        for name, tableau, buffers in schemes ->
            test $"{name}: compact step = full step bit for bit; its adjoint = central differences" {
                let stepper = Stepper<float>(plan, tableau, 1, [||], [||])
                Expect.isGreaterThan (RowSplit.ofPlan plan 1).Rows.Length 1 "the grid's passes are split"
                Expect.equal stepper.CompactBuffers buffers "slope and stage-adjoint buffers"
                let rng = Random 5
                let theta = uniform rng plan.ThetaLength 0.2 1.0
                let interior = stepper.Maps |> Array.map _.Interior
                // Δt·|λ| ≈ 0.1 for its diffusion's largest eigenvalue (D = D0·(1 + u²) ≤ 1·(1 + 1.5²), 4D/h² with
                // h ≥ 1/130): stable for every tableau, and far enough from the identity that the adjoint's stage
                // terms weigh in the check below.
                let dt = 0.1 / (4.0 * 3.25 * 130.0 ** 2.0)

                /// A state with `value ()` in its interior cells and zero ghosts.
                let state (value: unit -> float) =
                    let x = stepper.NewState()

                    interior
                    |> Array.iteri (fun f cells ->
                        for c in cells do
                            x[f][c] <- value ())

                    x

                let u = state (fun () -> 0.5 + rng.NextDouble())
                let compact, full = stepper.NewState(), stepper.NewState()
                stepper.Step(u, theta, 0.3, dt, compact)
                stepper.StepFrom(u, theta, 0.3, dt, full, false)

                for f in 0 .. u.Length - 1 do
                    Expect.sequenceEqual compact[f] full[f] $"field {f}"

                // d⟨λ′, Step(u + εv, θ + εw)⟩/dε by central differences against ⟨λ, v⟩ + ⟨θ̄, w⟩ from the adjoint,
                // both less the identity's share ⟨λ′, v⟩, so that what is compared is the stages' part.
                let lambdaNext = state (fun () -> rng.NextDouble() - 0.5)
                let v = state (fun () -> rng.NextDouble() - 0.5)
                let w = uniform rng theta.Length -0.5 0.5
                let lambda = stepper.NewState()
                let thetaAdjoint = Array.zeroCreate theta.Length
                stepper.StepAdjoint(u, theta, 0.3, dt, lambdaNext, lambda, thetaAdjoint)

                let dot (a: float[][]) (b: float[][]) =
                    Array.fold2 (fun acc x y -> acc + Array.fold2 (fun s p q -> s + p * q) 0.0 x y) 0.0 a b

                let along (eps: float) =
                    let shifted = Array.map2 (Array.map2 (fun a b -> a + eps * b)) u v
                    let next = stepper.NewState()
                    stepper.Step(shifted, Array.map2 (fun a b -> a + eps * b) theta w, 0.3, dt, next)
                    dot lambdaNext next

                let eps = 1e-5
                let identity = dot lambdaNext v
                let fd = (along eps - along -eps) / (2.0 * eps) - identity

                let adjoint =
                    dot lambda v + Array.fold2 (fun s a b -> s + a * b) 0.0 thetaAdjoint w
                    - identity

                Expect.isGreaterThan
                    (abs fd)
                    (1e-3 * abs identity)
                    $"the stages' part is not negligible ({fd} vs {identity})"

                Expect.floatClose { absolute = 0.0; relative = 1e-6 } adjoint fd "adjoint = central differences"
            }
    ]

let tests =
    testList "Threaded kernels" [
        compactTests
        poolTests
        splitTests
        testList "split passes = whole kernels" [
            passAgreement "2-D, 23 × 13, rows cut at 1, 2, 9, 20 (parts inside the band)" (SimdKernelTests.plane 23 13) [
                1
                2
                9
                20
            ]
            passAgreement "2-D, 40 × 17, rows cut at 20" (SimdKernelTests.plane 40 17) [ 20 ]
            passAgreement
                $"1-D, 203 cells, blocks cut at 2W, 10W, 20W (W = {Codegen.width ()})"
                (SimdKernelTests.line 203)
                [ 2 * Codegen.width (); 10 * Codegen.width (); 20 * Codegen.width () ]
        ]
    ]
