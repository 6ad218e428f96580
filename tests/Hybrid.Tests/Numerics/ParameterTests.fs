/// Constrained parameters stay exact near 0: the inverse softplus v + log(−expm1(−v)) and the forward softplus.
module Hybrid.Tests.Numerics.ParameterTests

open Expecto
open TorchSharp
open Hybrid
open Hybrid.Numerics
open Hybrid.Compiler
open Hybrid.Tests.Numerics.Support

let private exact = { absolute = 0.0; relative = 1e-12 }

let tests =
    testList "Parameters" [
        test "param D > 0 = 1e-20 gives back 1e-20" {
            let p = Param("D", Constraint.Positive, 1e-20, dtype = f64)
            Expect.floatClose exact (p.Get()) 1e-20 "Get() = 1e-20, not 0"
            // softplus⁻¹(v) = log(eᵛ − 1) = log v + v/2 + O(v²) for small v.
            Expect.floatClose exact (p.Raw.ToDouble()) (log 1e-20) "raw = log v"
        }

        test "a compiled model's positive parameter of 1e-20 keeps its value" {
            let model =
                Parse.model
                    "model tiny\ndomain interval [0, 1] cells 4\nfield u\nparam D = 1e-20 positive\ndu/dt = D*lap(u)\nboundary u left dirichlet 0\nboundary u right dirichlet 0\ninitial u = x\n"

            let sim = Compiler.compile Compiler.defaults model
            Expect.floatClose exact (sim.Param("D").Get()) 1e-20 "D = 1e-20 after compiling"
        }

        test "positive values from 1e-300 to 1e3 round-trip to relative 1e-12, through the constructor and Set" {
            for v in
                [
                    1e-300
                    1e-100
                    1e-20
                    1.1e-16
                    1e-16
                    1e-8
                    1e-5
                    0.05
                    0.5
                    1.0
                    20.0
                    30.0
                    31.0
                    1e3
                ] do
                let p = Param("D", Constraint.Positive, v, dtype = f64)
                Expect.floatClose exact (p.Get()) v $"constructor, v = {v}"
                p.Set 1.0
                p.Set v
                Expect.floatClose exact (p.Get()) v $"Set, v = {v}"
        }

        test "Set and SetTensor agree near 0" {
            let p = Param("D", Constraint.Positive, 1.0, shape = [| 3L |], dtype = f64)
            p.SetTensor(torch.tensor ([| 1e-20; 1e-10; 2.0 |], dtype = f64))
            let fromTensor = p.Raw.data<float>().ToArray()
            p.Set 1e-20
            Expect.floatClose exact (p.Raw.data<float>().ToArray()[0]) fromTensor[0] "the same raw value for 1e-20"
        }

        test "a tiny positive parameter still has a gradient" {
            let p = Param("D", Constraint.Positive, 1e-20, dtype = f64)
            let v = p.Value
            v.backward ()
            // d softplus(r)/dr = σ(r) = v/(1 + v) ≈ v for tiny v.
            Expect.floatClose exact (p.Raw.grad.ToDouble()) 1e-20 "σ(raw) = 1e-20"
        }
    ]
