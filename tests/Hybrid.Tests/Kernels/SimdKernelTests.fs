/// The SIMD kernels (`Codegen.forward` vectorised along the contiguous axis, `Codegen.adjoint` in vectorised
/// gather form) against the scalar kernels (scalar loops, scatter-form adjoint) of the same plan on the same random
/// arrays: on grids whose width is and is not a multiple of the vector width W (the scalar tail), narrower than
/// one vector, and narrower than the boundary band, with every kind of leaf a kernel reads (spatial and scalar
/// parameters, coordinates, time, closure outputs, forcings) and every function. Whole rollouts on such grids
/// against eager TorchSharp run in `KernelTests`' suite (`line 23`, `plane 7 11`). Also the steppers' vectorised
/// finite check against a cell-by-cell one.
module Hybrid.Tests.Kernels.SimdKernelTests

open System
open Expecto
open Hybrid
open Hybrid.Kernels

let private u, v, x, y = Sym "u", Sym "v", Sym "x", Sym "y"

/// 1-D, `n` cells: nonlinear diffusion, a spatial growth rate, upwind advection whose velocity changes sign,
/// every pointwise function, a forcing and a neural closure R(u, x); a moving Dirichlet end and a Neumann end.
let internal line (n: int) =
    Model.empty "simd_line"
    |> Model.withDomain (Domain.Interval(0.0, 1.0, n))
    |> Model.addField (Model.field "u")
    |> Model.addParam (Model.param "D" 0.02)
    |> Model.addParam (Model.param "a" 0.3)
    |> Model.addParam {
        Model.param "r" 1.0 with
            Shape = ParamShape.Spatial
    }
    |> Model.addForcing { Name = "c"; Units = None }
    |> Model.addClosure {
        Name = "R"
        Arity = 2
        Architecture = Architecture.Mlp([ 2; 4; 1 ], Activation.Tanh)
        Units = None
    }
    |> Model.addEquation
        "u"
        (Divergence(Sym "D" * (1.0 + PowInt(u, 2)) * Grad u) + Sym "r" * u * (1.0 - u)
         - Advect([ Sym "a" * Apply(Fn.Cos, 8.0 * Sym "t") ], u)
         + 0.1 * Apply(Fn.Exp, -u) * Apply(Fn.Sin, 3.0 * x)
         + 0.01 * Apply(Fn.Abs, u - 1.0)
         + 0.01 * Min(u, Num 1.0)
         - 0.01 * Max(u, Num 1.2)
         + 0.01 * PowReal(u + 1.0, Sym "a")
         + 0.001 * PowInt(u, 5)
         + 0.001 * PowInt(u, -2)
         + 0.01 * Apply(Fn.Tanh, u) * Apply(Fn.Sqrt, u)
         + 0.01 * Apply(Fn.Softplus, u)
         - 0.01 * Apply(Fn.Sigmoid, u) * Apply(Fn.Log, u)
         + 0.1 * Sym "c" * u
         + 0.1 * Call("R", [ u; x ]) * u)
    |> Model.setBoundary "u" Side.Left (BoundaryCondition.Dirichlet(0.5 + Sym "a" * Sym "t"))
    |> Model.setBoundary "u" Side.Right (BoundaryCondition.Neumann(Num 0.3))
    |> Model.setInitial "u" (InitialCondition.Expr(0.6 + 0.3 * Apply(Fn.Sin, 3.0 * x)))

/// 2-D, `nx` × `ny` cells on [0, 1] × [0, 2]: two fields, nonlinear diffusion, a spatial decay rate in a ∂y term,
/// coordinates along both axes, ∂x; mixed boundaries for u (a Dirichlet value in y and a parameter), periodic v.
let internal plane (nx: int) (ny: int) =
    Model.empty "simd_plane"
    |> Model.withDomain (Domain.Rectangle(0.0, 1.0, 0.0, 2.0, nx, ny))
    |> Model.addField (Model.field "u")
    |> Model.addField (Model.field "v")
    |> Model.addParam (Model.param "D0" 0.02)
    |> Model.addParam (Model.param "F" 0.4)
    |> Model.addParam {
        Model.param "k" 0.5 with
            Shape = ParamShape.Spatial
    }
    |> Model.addEquation
        "u"
        (Divergence(Sym "D0" * (1.0 + PowInt(u, 2)) * Grad u) - u * PowInt(v, 2)
         + 0.2 * Sym "k" * Partial(Axis.Y, u)
         + 0.1 * x * y)
    |> Model.addEquation
        "v"
        (Sym "D0" * Laplacian v + u * PowInt(v, 2) - (Sym "F" + Sym "k") * v
         + 0.05 * Partial(Axis.X, v) * Apply(Fn.Sin, y))
    |> Model.setBoundary "u" Side.Left BoundaryCondition.NoFlux
    |> Model.setBoundary "u" Side.Right (BoundaryCondition.Dirichlet(0.2 + Sym "F" * y))
    |> Model.setBoundary "u" Side.Bottom (BoundaryCondition.Neumann(Num -0.5))
    |> Model.setBoundary "u" Side.Top (BoundaryCondition.Dirichlet(Num 0.1))
    |> Model.setBoundaryAll "v" BoundaryCondition.Periodic
    |> Model.setInitial
        "u"
        (InitialCondition.Expr(0.5 + 0.3 * Apply(Fn.Exp, -10.0 * (PowInt(x - 0.5, 2) + PowInt(y - 1.0, 2)))))
    |> Model.setInitial "v" (InitialCondition.Expr(0.25 + 0.1 * Apply(Fn.Cos, 3.0 * x + y)))

/// ∂u/∂t = ∇·(κ∇u) + k u (1 − u)/2 on `domain` with boundary conditions `bcs`, a spatial parameter k and a neural
/// closure D of `arity` arguments (for κ to use), u(0) a smooth bump: closures and spatial parameters inside a
/// diffusion coefficient (face sites, and parameter copies read at ±1, on the kernels).
let internal faceKappa
    (name: string)
    (domain: Domain)
    (arity: int)
    (kappa: Expr)
    (bcs: (Side * BoundaryCondition) list)
    =
    let bump =
        match domain with
        | Domain.Rectangle _ -> -20.0 * (PowInt(x - 0.4, 2) + PowInt(y - 0.5, 2))
        | _ -> -20.0 * PowInt(x - 0.4, 2)

    let model =
        Model.empty name
        |> Model.withDomain domain
        |> Model.addField (Model.field "u")
        |> Model.addParam {
            Model.param "k" 0.5 with
                Shape = ParamShape.Spatial
        }
        |> Model.addClosure {
            Name = "D"
            Arity = arity
            Architecture = Architecture.Mlp([ arity; 6; 1 ], Activation.Tanh)
            Units = None
        }
        |> Model.addEquation "u" (Divergence(kappa * Grad u) + 0.5 * Sym "k" * u * (1.0 - u))
        |> Model.setInitial "u" (InitialCondition.Expr(0.3 + 0.5 * Apply(Fn.Exp, bump)))

    bcs |> List.fold (fun m (side, bc) -> Model.setBoundary "u" side bc m) model

/// κ = k·D(u, k, x): the closure reads k too.
let private simdKappa = Sym "k" * Call("D", [ u; Sym "k"; x ])

/// `faceKappa` on 1-D, `n` cells: a Dirichlet end and a Neumann end.
let private faceLine (n: int) =
    faceKappa "simd_face_line" (Domain.Interval(0.0, 1.0, n)) 3 simdKappa [
        Side.Left, BoundaryCondition.Dirichlet(Num 0.5)
        Side.Right, BoundaryCondition.Neumann(Num 0.3)
    ]

/// `faceKappa` on 2-D, `nx` × `ny` cells: periodic in x, a no-flux and a Dirichlet wall in y.
let private facePlane (nx: int) (ny: int) =
    faceKappa "simd_face_plane" (Domain.Rectangle(0.0, 1.0, 0.0, 2.0, nx, ny)) 3 simdKappa [
        Side.Left, BoundaryCondition.Periodic
        Side.Right, BoundaryCondition.Periodic
        Side.Bottom, BoundaryCondition.NoFlux
        Side.Top, BoundaryCondition.Dirichlet(Num 0.1)
    ]

/// One-scale Lorenz-96 on K sites (reads at −2 … +1: two ghosts).
let private lorenz (k: int) =
    let shift m = Shift("X", LatticeIndex.K, m)

    Model.empty "simd_l96"
    |> Model.withDomain (Domain.Lattice(k, 0))
    |> Model.addField (Model.field "X")
    |> Model.addParam (Model.param "F" 8.0)
    |> Model.addEquation "X" ((shift 1 - shift -2) * shift -1 - Sym "X" + Sym "F")

let internal planOf (m: Model) =
    Lowering.lower (Hybrid.Compiler.ResolvedSystem.ofModel m)

let internal uniform (rng: Random) (n: int) (lo: float) (hi: float) =
    Array.init n (fun _ -> lo + (hi - lo) * rng.NextDouble())

let internal copies (arrays: float[][]) = arrays |> Array.map Array.copy

/// max |a − b| over max(1, max |b|).
let internal relative (a: float[]) (b: float[]) =
    let scale = b |> Array.fold (fun m v -> max m (abs v)) 1.0
    (Array.fold2 (fun m p q -> max m (abs (p - q))) 0.0 a b) / scale

// Both kernels add the same products in a different order (the gather form sums each cell's terms, the scalar
// θ accumulators sum per vector lane): each entry differs by a few ulps of its largest term, ≈ 1e-15 relative for
// the O(10–1000) terms here; 1e-12 leaves room, while a missing, doubled or misplaced term is O(1) off.
let private tolerance = 1e-12

/// Forward and adjoint of `plan`, scalar against SIMD, on random padded fields (ghosts too), θ, closure outputs,
/// forcings and λ (ghost entries too, which both must ignore), with random starting adjoints (both add to them); the
/// kernels built with `Vector<float>` when `narrow` (`Codegen.narrowly`), else at the machine's width. A plan with
/// face fluxes (flux advection along periodic axes) has its face kernel (`KernelPlan.facePlan`) checked alike.
let private agreementOn (narrow: bool) (name: string) (model: Model) =
    test name {
        /// The check of one kernel's plan; `readsTheta`: its adjoint must add into θ̄.
        let checkPlan (plan: KernelPlan) (readsTheta: bool) =
            Expect.isTrue (Codegen.vectorises plan) "the plan takes the SIMD path"
            let rng = Random 19
            let batch = 2
            let fields = plan.Fields.Length
            let size f = batch * KernelPlan.padded plan f
            // Outputs: one per right-hand side (a field's, or a face copy's of the face kernel).
            let outputs = plan.Rhs.Length

            let outSize j =
                if j < fields then size j else batch * plan.PaddedCells

            let padded = Array.init fields (fun f -> uniform rng (size f) 0.5 1.5)
            let theta = uniform rng plan.ThetaLength 0.2 1.0

            let cellArrays n =
                Array.init n (fun _ -> uniform rng (batch * plan.PaddedCells) -1.0 1.0)

            let inputs = cellArrays (plan.Sites.Length + plan.ParamCopies.Length)
            let data = cellArrays plan.Forcings.Length
            let t = 0.3

            let output = Array.init outputs (fun j -> uniform rng (outSize j) -1.0 1.0)
            let scalarOut, simdOut = copies output, copies output
            (Codegen.forwardWith false plan).Invoke(padded, theta, t, scalarOut, batch, inputs, data)
            (Codegen.forwardWith true plan).Invoke(padded, theta, t, simdOut, batch, inputs, data)

            for j in 0 .. outputs - 1 do
                Expect.isLessThan (relative simdOut[j] scalarOut[j]) tolerance $"F {j}"

            Expect.isGreaterThan
                (relative scalarOut[0] output[0])
                0.01
                "the forward kernel wrote its values (not a comparison of untouched arrays)"

            let lambda = Array.init outputs (fun j -> uniform rng (outSize j) -1.0 1.0)
            let paddedAdjoint = Array.init fields (fun f -> uniform rng (size f) -1.0 1.0)
            let thetaAdjoint = uniform rng plan.ThetaLength -1.0 1.0
            let inputAdjoint = cellArrays (plan.Sites.Length + plan.ParamCopies.Length)

            let run (vectorise: bool) =
                let pa, ta, ia = copies paddedAdjoint, Array.copy thetaAdjoint, copies inputAdjoint

                (Codegen.adjointWith vectorise plan).Invoke(padded, theta, t, lambda, pa, ta, batch, inputs, ia, data)

                pa, ta, ia

            let scalarPa, scalarTa, scalarIa = run false
            let simdPa, simdTa, simdIa = run true

            for f in 0 .. fields - 1 do
                Expect.isLessThan (relative simdPa[f] scalarPa[f]) tolerance $"λᵀ∂F/∂(field {f}), ghosts included"

            Expect.isLessThan (relative simdTa scalarTa) tolerance "λᵀ∂F/∂θ"

            for s in 0 .. inputAdjoint.Length - 1 do
                Expect.isLessThan
                    (relative simdIa[s] scalarIa[s])
                    tolerance
                    $"λᵀ∂F/∂(input {s}: closure output or parameter copy)"

            if readsTheta then
                Expect.isGreaterThan (relative scalarTa thetaAdjoint) 0.01 "the adjoint kernel added into θ̄"

        let check () =
            let plan = planOf model
            checkPlan plan true

            if (KernelPlan.faces plan).Length > 0 then
                checkPlan (KernelPlan.facePlan plan) false

        if narrow then Codegen.narrowly check else check ()
    }

/// Forward and adjoint of `plan`, scalar against SIMD (see `agreementOn`).
let internal agreement (name: string) (model: Model) = agreementOn false name model

/// The stepper's vectorised finite check (`InteriorRuns.within`) against a cell-by-cell check of the interior, with
/// one bad value planted at every interior cell in turn (vector body and scalar tail of each run, both
/// trajectories) and at every ghost (ignored), for NaN, ±∞ and values just over the limit.
let private scanAgreement (name: string) (model: Model) =
    test name {
        let plan = planOf model
        let map = Ghosts.map plan 0
        let runs = InteriorRuns.runs map
        let batch, limit = 2, 1e3
        Expect.equal (runs |> Array.sumBy (fun struct (_, n) -> n)) map.Interior.Length "the runs cover the interior"
        let values = uniform (Random 5) (batch * map.Padded) (-limit) limit

        let reference (v: float[]) =
            Seq.forall (fun b -> map.Interior |> Array.forall (fun i -> abs v[b * map.Padded + i] <= limit)) [
                0 .. batch - 1
            ]

        Expect.isTrue (InteriorRuns.within limit runs map.Padded batch values) "random values within the limit"
        values[map.Interior[0]] <- limit
        Expect.isTrue (InteriorRuns.within limit runs map.Padded batch values) "|v| = limit passes"

        for bad in [ nan; infinity; -infinity; 1.0000001 * limit; -1.0000001 * limit ] do
            for b in 0 .. batch - 1 do
                for i in Array.append map.Interior map.Ghost do
                    let at = b * map.Padded + i
                    let kept = values[at]
                    values[at] <- bad

                    Expect.equal
                        (InteriorRuns.within limit runs map.Padded batch values)
                        (reference values)
                        $"{bad} at padded index {i} of trajectory {b}"

                    values[at] <- kept

        values[map.Interior[0]] <- infinity
        Expect.isFalse (InteriorRuns.within infinity runs map.Padded batch values) "∞ fails an infinite limit"
    }

let tests =
    testList "SIMD kernels = scalar kernels (forward, and the gather-form adjoint against the scatter form)" [
        for n in [ 3; 9; 23 ] -> scanAgreement $"finite scan = cell-by-cell check, 1-D, {n} cells" (line n)

        for nx, ny in [ 2, 3; 7, 11 ] ->
            scanAgreement $"finite scan = cell-by-cell check, 2-D, {nx} × {ny} cells" (plane nx ny)

        for n in [ 2; 3; 5; 8; 9; 23 ] -> agreement $"1-D, {n} cells (W = {Codegen.width ()})" (line n)

        for nx, ny in [ 2, 2; 2, 3; 3, 5; 5, 4; 7, 11; 6, 9 ] ->
            agreement $"2-D, {nx} × {ny} cells (W = {Codegen.width ()})" (plane nx ny)

        for k in [ 3; 4; 5; 13 ] -> agreement $"Lorenz-96 lattice, K = {k}" (lorenz k)

        for n in [ 2; 3; 5; 8; 9; 23 ] ->
            agreement $"1-D, {n} cells, closure and spatial parameter inside κ (W = {Codegen.width ()})" (faceLine n)

        for nx, ny in [ 2, 2; 3, 5; 7, 11; 6, 9 ] ->
            agreement
                $"2-D, {nx} × {ny} cells, closure and spatial parameter inside κ (W = {Codegen.width ()})"
                (facePlane nx ny)

        // Where the kernels run 512-bit vectors, the runtime's Vector<float> loops too (other machines run them).
        if Codegen.wide () then
            for name, model in
                [
                    "1-D, 23 cells", line 23
                    "2-D, 7 × 11 cells", plane 7 11
                    "1-D, 9 cells, κ", faceLine 9
                ] -> agreementOn true $"{name}, built with Vector<float> (W = {Numerics.Vector<float>.Count})" model
    ]
