/// Closures over whole fields with several outputs: a 2-output CNN on two fields of a periodic square. The
/// compiled right-hand side against the module applied by hand, one forward pass per evaluation, translation
/// equivariance under circular (not zero) padding, padding from the boundary conditions, gradients through a
/// rollout against finite differences, Backend.Auto's choice of the kernels, and a twin experiment trained through the solver.
module Hybrid.Tests.Compiler.FieldClosureTests

open System
open Expecto
open TorchSharp
open Hybrid
open Hybrid.Compiler
open Hybrid.Numerics
open Hybrid.Training
open Hybrid.TensorArithmetic

let private f64 = torch.ScalarType.Float64

/// Counts the forward passes of the module it wraps.
type private Counting(inner: torch.nn.Module<torch.Tensor, torch.Tensor>) as this =
    inherit torch.nn.Module<torch.Tensor, torch.Tensor>("counting")
    do this.register_module ("inner", inner)
    member val Calls = 0 with get, set

    override this.forward(x: torch.Tensor) =
        this.Calls <- this.Calls + 1
        inner.forward x

/// ∂w/∂t = sgs(w, q)[1], ∂q/∂t = 2 sgs(w, q)[2] on the periodic unit square (n × n), `ySides` on y = 0 and 1,
/// plus `extra` in each equation.
let private closureModel (n: int) (spec: ClosureSpec) (ySides: BoundaryCondition) (extraW: Expr) (extraQ: Expr) =
    let w, q = sym "w", sym "q"
    let sgs = callOutput "sgs"

    model "sgs_square" {
        domain (rectangle (0.0, 1.0) (0.0, 1.0)) (cells2 n n)
        field "w"
        field "q"
        neural "sgs" spec
        equation (dt w == sgs 1 [ w; q ] + extraW)
        equation (dt q == 2.0 * sgs 2 [ w; q ] + extraQ)
        boundary "w" left periodic
        boundary "w" right periodic
        boundary "q" left periodic
        boundary "q" right periodic
        boundary "w" bottom ySides
        boundary "w" top ySides
        boundary "q" bottom ySides
        boundary "q" top ySides
        initial "w" (fun x -> sin (2.0 * Math.PI * x))
        initial "q" (fun x -> cos (2.0 * Math.PI * x))
    }

let private periodicModel (n: int) (spec: ClosureSpec) =
    closureModel n spec periodic (num 0.0) (num 0.0)

let private randomFields (batch: int) (n: int) (seed: int) =
    Engine.seed seed

    [|
        torch.randn (int64 batch, int64 n, int64 n, dtype = f64)
        torch.randn (int64 batch, int64 n, int64 n, dtype = f64)
    |]

let private maxDiff (a: torch.Tensor) (b: torch.Tensor) = (a - b).abs().max().ToDouble()

let private rhs (sim: Simulator) (u: torch.Tensor[]) =
    sim.Dynamics.Explicit (sim.Theta()) 0.0 u

let private rollout (dt: float) (steps: int) = {
    Rollout.defaults with
        Scheme = Scheme.Heun
        Dt = dt
        SaveTimes = Array.init (steps + 1) (fun i -> float i * dt)
        FiniteCheckEvery = 0
        OnUnstable = OnUnstable.Ignore
}

/// A smooth random state: a few Fourier modes per field with seeded amplitudes, [batch; n; n].
let private smoothFields (batch: int) (n: int) (seed: int) =
    let rnd = Random seed
    let grid = Grid.ofDomain (Domain.Rectangle(0.0, 1.0, 0.0, 1.0, n, n))

    let one () =
        let modes =
            Array.init 3 (fun _ -> rnd.Next(1, 3), rnd.Next(0, 3), rnd.NextDouble() - 0.5, rnd.NextDouble() * 6.28)

        Grid.init grid 1 f64 (fun x y ->
            modes
            |> Array.sumBy (fun (kx, ky, a, p) -> a * sin (2.0 * Math.PI * (float kx * x + float ky * y) + p)))

    Array.init 2 (fun _ -> torch.cat (Array.init batch (fun _ -> one ()), 0L))

let tests =
    testSequenced
    <| testList "Field closures" [
        test "the compiled right-hand side is the CNN applied to the stacked fields, run once per evaluation" {
            let sim = Compiler.compile Compiler.defaults (periodicModel 8 (cnn [ 2; 4; 2 ]))
            let net = snd sim.Modules[0]
            let u = randomFields 3 8 1
            let got = rhs sim u
            let y = net.forward (torch.stack (u, 1L))
            Expect.isLessThan (maxDiff got[0] (y.select (1L, 0L))) 1e-12 "∂w/∂t = output 1"
            Expect.isLessThan (maxDiff got[1] (2.0 .* y.select (1L, 1L))) 1e-12 "∂q/∂t = 2 · output 2"

            // The same network as a user's module over whole fields, counted.
            let counting = new Counting(net)

            let named =
                Compiler.compile
                    {
                        Compiler.defaults with
                            Modules = Map.ofList [ "mine", counting :> torch.nn.Module<torch.Tensor, torch.Tensor> ]
                    }
                    (periodicModel 8 (namedField "mine" 2 2))

            let again = rhs named u
            Expect.equal counting.Calls 1 "one forward pass for both equations"
            Expect.isLessThan (maxDiff again[1] got[1]) 1e-12 "the named module gives the same tendencies"

            counting.Calls <- 0
            let steps = 3

            named.Simulate(Array.map (fun (t: torch.Tensor) -> t.clone ()) u, rollout 0.001 steps)
            |> ignore

            Expect.equal counting.Calls (2 * steps) "Heun: two evaluations per step, one forward pass each"
        }

        test "circular padding makes the closure translation-equivariant; zero padding does not" {
            let sim =
                Compiler.compile Compiler.defaults (periodicModel 8 (cnnWith Activation.Tanh 3 [ 2; 6; 2 ]))

            let net = snd sim.Modules[0] :?> FieldCnn
            Expect.equal net.Padding [| Padding.Periodic; Padding.Periodic |] "periodic on both axes"
            let u = randomFields 2 8 2
            let shift (t: torch.Tensor) = t.roll ([| 3L; -2L |], [| 1L; 2L |])
            let base', moved = rhs sim u, rhs sim (Array.map shift u)

            for f in 0..1 do
                Expect.isLessThan (maxDiff moved[f] (shift base'[f])) 1e-12 $"field {f}: shifted in, shifted out"

            // The same weights behind zero padding.
            let zeros =
                new FieldCnn("zeros", 2, [ 2; 6; 2 ], 3, Activation.Tanh, [| Padding.Zeros; Padding.Zeros |], f64)

            do
                use _ = torch.no_grad ()

                for p, s in Array.zip (Neural.parameters zeros) (Neural.parameters net) do
                    p.copy_ s |> ignore

            let zsim =
                Compiler.compile
                    {
                        Compiler.defaults with
                            Modules = Map.ofList [ "z", zeros :> torch.nn.Module<torch.Tensor, torch.Tensor> ]
                    }
                    (periodicModel 8 (namedField "z" 2 2))

            let zbase, zmoved = rhs zsim u, rhs zsim (Array.map shift u)
            let zp, np = Neural.parameters (snd zsim.Modules[0]), Neural.parameters net
            Expect.equal (maxDiff zp[0] np[0]) 0.0 "same weights"
            Expect.isGreaterThan (maxDiff zmoved[0] (shift zbase[0])) 1e-3 "zero padding breaks the equivariance"
        }

        test "padding follows the boundary conditions: circular where periodic, replicate elsewhere" {
            let sim =
                Compiler.compile Compiler.defaults (closureModel 8 (cnn [ 2; 2 ]) noFlux (num 0.0) (num 0.0))

            let net = snd sim.Modules[0] :?> FieldCnn
            Expect.equal net.Padding [| Padding.Periodic; Padding.Replicate |] "x periodic, y walled"
        }

        test "Backend.Auto runs the closure on the kernels" {
            let sim = Compiler.compile Compiler.defaults (periodicModel 8 (cnn [ 2; 2 ]))
            Expect.equal (sim.BackendFor(rollout 0.01 2)) (Backend.Kernels, "") "the kernels"
        }

        test "gradients w.r.t. the CNN's weights through a rollout match central finite differences (float64)" {
            let sim =
                Compiler.compile Compiler.defaults (periodicModel 6 (cnnWith Activation.Tanh 3 [ 2; 3; 2 ]))

            let u0 = smoothFields 2 6 3
            let options = rollout 0.02 4

            let loss () =
                let tr = sim.Simulate(u0, options)
                torch.sum (square tr.Values[0]) .+ torch.sum (tr.Values[1] * tr.Values[0])

            let ps = sim.Trainable()
            let l = loss ()

            let grads =
                torch.autograd.grad ([| l |], ps |> Array.map (fun p -> p :> torch.Tensor))

            let h = 1e-6

            for pi, index in [ 0, 0L; 0, 7L; 1, 1L; 2, 5L; 3, 0L ] do
                let p = ps[pi]
                let flat = p.view (-1L)

                let at (delta: float) =
                    use _ = torch.no_grad ()
                    let old = flat[index].ToDouble()
                    flat[index] <- torch.tensor (old + delta, dtype = f64)
                    let v = (loss ()).ToDouble()
                    flat[index] <- torch.tensor (old, dtype = f64)
                    v

                let fd = (at h - at (-h)) / (2.0 * h)
                let g: torch.Tensor = grads[pi].view (-1L)
                let ad = g[index].ToDouble()
                // Central differences: error O(h²·f''') plus rounding O(ε·|f|/h) ≈ 1e-9 relative here.
                Expect.isLessThan
                    (abs (fd - ad))
                    (1e-6 * max 1.0 (abs ad))
                    $"parameter {pi}[{index}]: fd {fd} vs ad {ad}"
        }

        test "twin: a linear CNN closure trained through the solver recovers a linear sub-grid correction" {
            // Truth: ν Δw + (q − w), ν Δq + 0.3 ∂x w. The hybrid knows ν Δ and learns the rest with one 3 × 3
            // convolution (cnn [2; 2]), which represents both terms exactly: only optimisation error remains.
            let n, nu = 16, 0.01
            let w, q = sym "w", sym "q"
            let physics = num nu * lap w, num nu * lap q

            let truth =
                closureModel n (cnn [ 2; 2 ]) periodic (fst physics + (q - w)) (snd physics + 0.3 * dx w)
                |> fun m -> {
                    m with
                        Closures = []
                        Equations = [
                            {
                                Field = "w"
                                Rhs = fst physics + (q - w)
                            }
                            {
                                Field = "q"
                                Rhs = snd physics + 0.3 * dx w
                            }
                        ]
                }

            let physicsOnly = {
                truth with
                    Equations = [ { Field = "w"; Rhs = fst physics }; { Field = "q"; Rhs = snd physics } ]
            }

            let hybrid = closureModel n (cnn [ 2; 2 ]) periodic (fst physics) (snd physics)
            let truthSim = Compiler.compile Compiler.defaults truth
            let physicsSim = Compiler.compile Compiler.defaults physicsOnly
            let sim = Compiler.compile Compiler.defaults hybrid

            // Start from the physics alone: zero correction.
            do
                use _ = torch.no_grad ()

                for p in sim.Trainable() do
                    p.zero_ () |> ignore

            let train, test = smoothFields 4 n 11, smoothFields 4 n 12
            let steps, dt = 5, 0.04
            let options = rollout dt steps

            let data (u0: torch.Tensor[]) =
                use _ = torch.no_grad ()
                (truthSim.Simulate(u0, options)).Values

            let target = data train

            let mse (s: Simulator) (u0: torch.Tensor[]) (y: torch.Tensor[]) =
                let v = s.Simulate(u0, options).Values
                (Loss.mse v[0] y[0] .+ Loss.mse v[1] y[1]) ./ 2.0

            let objective = {
                Loss =
                    fun _ ->
                        let l = mse sim train target
                        { Total = l; Parts = [| "data", l |] }
                Validation = None
            }

            let result =
                Trainer.train
                    {
                        Trainer.defaults with
                            Epochs = 100
                            Groups = [| Trainer.group "phi" 0.05 (sim.Trainable()) |]
                            Modules = [| snd sim.Modules[0] |]
                    }
                    objective

            let testTarget = data test

            let errHybrid, errPhysics =
                use _ = torch.no_grad ()
                (mse sim test testTarget).ToDouble(), (mse physicsSim test testTarget).ToDouble()

            // Exactly representable: the trained RMSE must fall at least 5× below the physics alone (25× in MSE).
            Expect.isLessThan
                errHybrid
                (errPhysics / 25.0)
                $"test MSE: hybrid {errHybrid:g3}, physics alone {errPhysics:g3}, final train loss {Seq.last result.TrainLosses:g3}"
        }
    ]
