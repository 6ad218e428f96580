/// `Kernels.operations`: the operation counts of the generated loops, checked on models small enough to count by
/// hand (a linear decay: one multiplication per cell; its adjoint: two products with λ and their two
/// accumulations), the stage combinations of Euler and RK4 from their tableaux, and shared subexpressions
/// counted once, as the generator computes them.
module Hybrid.Tests.Kernels.KernelCostTests

open Expecto
open Hybrid
open Hybrid.Numerics
open Hybrid.Kernels

/// du/dt = rhs on 8 cells of the unit interval (no spatial operator), with parameter a.
let private model (rhs: Expr) =
    Model.empty "cost"
    |> Model.withDomain (Domain.Interval(0.0, 1.0, 8))
    |> Model.addField (Model.field "u")
    |> Model.addParam (Model.param "a" 0.5)
    |> Model.addEquation "u" rhs
    |> Model.setBoundaryAll "u" BoundaryCondition.NoFlux

let tests =
    testList "KernelCost" [
        test "du/dt = a·u: 1 operation forward, 4 in the adjoint; Euler and RK4 add their stage combinations" {
            let m = model (Mul(Sym "a", Sym "u"))
            let euler = Kernels.operations (Kernels.compile Scheme.Euler m)
            // Adjoint: λ·∂F/∂u = λ·a (a product and the add into the adjoint), λ·∂F/∂a = λ·u (a product and
            // the accumulation); the derivatives themselves are leaves.
            Expect.equal (euler.RightHandSide, euler.Adjoint, euler.Stages) (1, 4, 1) "counts per evaluation"
            // Euler: u + Δt·k (one nonzero weight: 2); adjoint: a scale and an add per stage (2).
            Expect.equal (euler.ForwardPerStep, euler.AdjointPerStep) (1 + 2, 4 + 2) "Euler per step"
            let rk4 = Kernels.operations (Kernels.compile Scheme.Rk4 m)
            // RK4: 3 nonzero entries in A and 4 weights: forward 4·1 + 2·(3 + 4); adjoint 4·4 + 2·4 + 2·3.
            Expect.equal (rk4.ForwardPerStep, rk4.AdjointPerStep) (4 + 14, 16 + 14) "RK4 per step"
        }

        test "a subexpression used twice is counted once (a·u·u + a·u·u: a·u, (a·u)·u and the sum)" {
            let x = Mul(Mul(Sym "a", Sym "u"), Sym "u")
            let ops = Kernels.operations (Kernels.compile Scheme.Euler (model (Add(x, x))))
            Expect.equal ops.RightHandSide 3 "three distinct operations"
        }
    ]
