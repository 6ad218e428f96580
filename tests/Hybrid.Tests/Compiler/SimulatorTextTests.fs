/// What a compiled simulator prints as (`ToString`, `%A` and the REPL's `sim;;`): model, fields, grid,
/// parameters with their current values, closures, forcings, back end and precision, never closures' code.
module Hybrid.Tests.Compiler.SimulatorTextTests

open Expecto
open TorchSharp
open Hybrid
open Hybrid.Compiler

let private text =
    """
model growth
domain interval [0, 2] cells 16
field u
param D = 0.05 positive
param a = 0.5 in [0, 1] fixed
closure g/2 = mlp [2, 8, 1] relu
forcing c
du/dt = D lap(u) - a g(u, c) u
boundary u noflux
initial u = 1
"""

let private compile () =
    Compiler.compile
        {
            Compiler.defaults with
                Forcings = Map.ofList [ "c", (fun (_: float) -> torch.tensor (0.5, dtype = torch.float64)) ]
        }
        (Parse.model text)

let private expected (d: string) =
    String.concat "\n" [
        "Simulator of model 'growth'"
        "  fields:     u"
        "  grid:       interval [0, 2], 16 cells"
        sprintf "  parameters: D = %s (positive, learnable), a = 0.5 (in [0, 1], fixed)" d
        // 2·8 + 8 weights and biases into the hidden layer, 8 + 1 out of it.
        "  closures:   g: MLP [2; 8; 1] relu, 33 weights"
        "  forcings:   c"
        "  back end:   Auto (generated kernels where they apply, else eager), Float64"
    ]

let tests =
    testList "Simulator text" [
        test "ToString names the model, fields, grid, parameters with values, closures, forcings and back end" {
            use _ = torch.NewDisposeScope()
            let sim = compile ()
            Expect.equal (sim.ToString()) (expected "0.05") "the text"
        }

        test "%A (what the REPL prints) is the same text, without closures' code" {
            use _ = torch.NewDisposeScope()
            let sim = compile ()
            let shown = sprintf "%A" sim
            Expect.equal shown (expected "0.05") "the REPL's text"
            Expect.isFalse (shown.Contains "<fun:") "no closures"
        }

        test "the parameters are shown at their current values" {
            use _ = torch.NewDisposeScope()
            let sim = compile ()
            (sim.Param "D").Set 0.125
            Expect.equal (sim.ToString()) (expected "0.125") "D after Set"
        }

        test "a rectangle, a two-scale lattice, bounded parameters and a spatial parameter are described" {
            use _ = torch.NewDisposeScope()
            let gray = (Compiler.compile Compiler.defaults Examples.grayScott).ToString()

            Expect.stringContains gray "\n  grid:       rectangle [0, 1] × [0, 1], 64 × 64 cells\n" "the rectangle"

            Expect.stringContains
                gray
                "\n  parameters: Du = 2e-05 (positive, learnable), Dv = 1e-05 (positive, learnable), F = 0.04 (in [0, 0.1], learnable), k = 0.06 (in [0, 0.1], learnable)\n"
                "bounded parameters"

            let spatial =
                Parse.model
                    "model ring\ndomain interval [0, 1] cells 4\nfield u\nparam k = 0.2 spatial\ndu/dt = -k u\nboundary u periodic\ninitial u = 1"

            Expect.stringContains
                ((Compiler.compile Compiler.defaults spatial).ToString())
                "\n  parameters: k = 0.2 (free, learnable, spatial: mean of 4 cells)\n"
                "a spatial parameter"

            Expect.stringContains
                ((Compiler.compile Compiler.defaults Examples.lorenz96).ToString())
                "\n  grid:       periodic lattice, 36 sites × 10 fast sites\n"
                "the two-scale lattice"
        }

        test "a 0-D model without closures or forcings says none" {
            use _ = torch.NewDisposeScope()
            let sim = Compiler.compile Compiler.defaults Examples.lotkaVolterra

            Expect.equal
                (sim.ToString())
                (String.concat "\n" [
                    "Simulator of model 'lotka_volterra'"
                    "  fields:     H, L"
                    "  grid:       0-D (no space)"
                    "  parameters: alpha = 0.55 (positive, learnable), beta = 0.028 (positive, learnable), gamma = 0.84 (positive, learnable), delta = 0.026 (positive, learnable)"
                    "  closures:   none"
                    "  forcings:   none"
                    "  back end:   Auto (generated kernels where they apply, else eager), Float64"
                ])
                "the text"
        }
    ]
