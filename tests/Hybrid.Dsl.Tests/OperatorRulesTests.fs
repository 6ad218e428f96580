/// Where vector operators and fast sums may stand, and the boundary conditions of an operator applied to an
/// expression of several fields: refused with one message each by `Checks` (so neither compiler restates them).
module Hybrid.Dsl.Tests.OperatorRulesTests

open Expecto
open Hybrid

/// The message `validate` raises for a model text, or "valid".
let private messageOf (text: string) =
    try
        Checks.validate (Parse.modelUnchecked text)
        "valid"
    with :? ModelException as e ->
        e.Message

/// A 1-D model of two fields u and v with the given equation of u and boundary conditions of v.
let private twoFields (equation: string) (vBoundary: string) =
    $"model m\ndomain interval [0, 1] cells 8\nfield u\nfield v\n{equation}\ndv/dt = 0\nboundary u dirichlet 0\nboundary v {vBoundary}\ninitial u = 0\ninitial v = 0"

let tests =
    testList "OperatorRules" [
        test "a gradient outside a divergence is refused, naming it" {
            Expect.equal
                (messageOf (twoFields "du/dt = grad(u)" "dirichlet 0"))
                "Model 'm': The equation of 'u' uses the gradient '∇u' outside a divergence. A gradient is a vector: use it inside ∇·( … ), e.g. ∇·(D ∇u), or use ∂x(...) for one component."
                "message"
        }

        test "the divergence of a scalar is refused, naming the operand" {
            Expect.equal
                (messageOf (twoFields "du/dt = div(u*v)" "dirichlet 0"))
                "Model 'm': The equation of 'u' takes the divergence of 'u v', which is not a vector. Write ∇·( … ) around a gradient, e.g. ∇·(D ∇u) (div(D*grad(u)) in ASCII)."
                "message"
        }

        test "vectors built from gradients by sums, negation and scalar factors are accepted" {
            Expect.equal
                (messageOf (twoFields "du/dt = div(2*grad(u) - v*grad(v) + -grad(u))" "dirichlet 0"))
                "valid"
                "valid"
        }

        test "a gradient inside a gradient's operand is refused" {
            Expect.stringContains
                (messageOf (twoFields "du/dt = div(grad(dx(u) + grad(v)))" "dirichlet 0"))
                "uses the gradient '∇v' outside a divergence"
                "inner gradient"
        }

        test "an operator on an expression of fields with different boundary conditions is refused" {
            Expect.equal
                (messageOf (twoFields "du/dt = dx(u*v)" "noflux"))
                "Model 'm': The equation of 'u' applies '∂x(u v)' to an expression of 'u' and 'v', whose boundary conditions differ on the left and right sides, so the expression's values beyond the wall are ambiguous. Apply the operator to each field (e.g. expand the product rule), or give both fields the same boundary conditions."
                "message"
        }

        test "the same operator is accepted when the fields' conditions agree, and flux form keeps each field's own" {
            Expect.equal (messageOf (twoFields "du/dt = dx(u*v) + lap(u + v)" "dirichlet 0")) "valid" "same conditions"
            Expect.equal (messageOf (twoFields "du/dt = div(v*grad(u))" "noflux")) "valid" "flux form"
        }

        test "a fast sum inside a fast sum is refused" {
            let text =
                "domain lattice 4 x 2\nfield X\nfield Y fast\ndX/dt = sum_j(Y * sum_j(Y))\ndY/dt = -Y\ninitial X = 0\ninitial Y = 0"

            Expect.equal
                (messageOf text)
                "Model 'model': The equation of 'X' nests a fast sum Σ_j inside another. A fast sum adds the fast sites of one slow site; use one."
                "message"
        }

        test "a divergence of a 20,000-term vector sum is checked on a small stack" {
            let terms = String.replicate 20000 " + grad(u)"

            let outcome =
                SmallStack.run (fun () -> messageOf (twoFields $"du/dt = div(grad(u){terms})" "dirichlet 0"))

            Expect.equal outcome "valid" "checked without recursion"
        }
    ]
