module Hybrid.Dsl.Tests.ParserTests

open Expecto
open Hybrid

let private p = Parse.expr

let tests =
    testList "Parser" [
        test "Unicode and ASCII forms of the same equation agree" {
            Expect.equal
                (Parse.equation "∂u/∂t = ∇·(D ∇u) + r u (1 − u) − kill(u, c) u")
                (Parse.equation "du/dt = div(D*grad(u)) + r*u*(1-u) - kill(u,c)*u")
                "tumour"
        }

        test "three spellings of the Laplacian" {
            Expect.equal (p "Δu") (Laplacian(Sym "u")) "Δ"
            Expect.equal (p "∇²u") (Laplacian(Sym "u")) "∇²"
            Expect.equal (p "lap(u)") (Laplacian(Sym "u")) "lap"
        }

        test "precedence and associativity" {
            Expect.equal (p "a - b - c") (Sub(Sub(Sym "a", Sym "b"), Sym "c")) "left-assoc minus"
            Expect.equal (p "a/b/c") (Div(Div(Sym "a", Sym "b"), Sym "c")) "left-assoc division"
            Expect.equal (p "-u^2") (Neg(PowInt(Sym "u", 2))) "power binds tighter than minus"
            Expect.equal (p "-2") (Num -2.0) "negative literal"
            Expect.equal (p "-2^2") (Neg(PowInt(Num 2.0, 2))) "negative literal is not a power base"
            Expect.equal (p "a^b^c") (PowReal(Sym "a", PowReal(Sym "b", Sym "c"))) "right-assoc power"
            Expect.equal (p "u^-1") (PowInt(Sym "u", -1)) "negative integer exponent"
            Expect.equal (p "u⁻¹") (PowInt(Sym "u", -1)) "superscript exponent"
            Expect.equal (p "u^0.5") (PowReal(Sym "u", Num 0.5)) "real exponent"
            Expect.equal (p "2u") (Mul(Num 2.0, Sym "u")) "implicit multiplication"
            Expect.equal (p "a b/c") (Div(Mul(Sym "a", Sym "b"), Sym "c")) "juxtaposition is multiplication"
            Expect.equal (p "D ∇u") (Mul(Sym "D", Grad(Sym "u"))) "prefix operator in a product"
            Expect.equal (p "3 × 4 ÷ 2") (Div(Mul(Num 3.0, Num 4.0), Num 2.0)) "× and ÷"
        }

        test "calls need the parenthesis right after the name" {
            Expect.equal (p "kill(u, c)") (Call("kill", [ Sym "u"; Sym "c" ])) "call"
            Expect.equal (p "r (1 - u)") (Mul(Sym "r", Sub(Num 1.0, Sym "u"))) "product with a space"
            Expect.equal (p "exp (u)") (Apply(Fn.Exp, Sym "u")) "built-ins may have a space"
        }

        test "spatial and lattice operators" {
            Expect.equal (p "∂x(u)") (Partial(Axis.X, Sym "u")) "∂x"
            Expect.equal (p "dy(u)") (Partial(Axis.Y, Sym "u")) "dy"
            Expect.equal (p "advect(v, u)") (Advect([ Sym "v" ], Sym "u")) "advection"
            Expect.equal (p "advect(a, b, u)") (Advect([ Sym "a"; Sym "b" ], Sym "u")) "2-D advection"
            Expect.equal (p "(v·∇)u") (Advect([ Sym "v" ], Sym "u")) "(v·∇)u"

            Expect.equal
                (p "2 ((a + b)·∇)(u²) w")
                (Mul(Mul(Num 2.0, Advect([ Add(Sym "a", Sym "b") ], PowInt(Sym "u", 2))), Sym "w"))
                "(v·∇)u in a product"

            Expect.equal (p "X[k-2]") (Shift("X", LatticeIndex.K, -2)) "slow shift"
            Expect.equal (p "Y[j]") (Shift("Y", LatticeIndex.J, 0)) "fast, no offset"
            Expect.equal (p "Σ_j(Y)") (FastSum(Sym "Y")) "Σ_j"
            Expect.equal (p "Σⱼ Y") (FastSum(Sym "Y")) "Σⱼ"
            Expect.equal (p "sum_j(Y)") (FastSum(Sym "Y")) "sum_j"
            Expect.equal (p "√u") (Apply(Fn.Sqrt, Sym "u")) "√"
        }

        test "systems separated by newlines or semicolons, with comments and line continuation" {
            let a = Parse.modelUnchecked "field u; field v; du/dt = v; dv/dt = -u"

            let b =
                Parse.modelUnchecked "field u   # state\nfield v\ndu/dt = v\n// comment\ndv/dt = -(\n  u)\n"

            Expect.equal a b "same model"
            Expect.equal a.Equations.Length 2 "two equations"
        }

        test "header declarations" {
            let m =
                Parse.modelUnchecked
                    "model \"my model\"\nfield u [mol/m^3]\nparam D > 0 = 0.05 [m^2/s]\nparam a = 0.5 in [0, 1] fixed spatial\nclosure f/1 = named \"cnn\"\nconst K = 2"

            Expect.equal m.Name "my model" "quoted name"
            Expect.equal m.Fields.Head.Units (Some(Units.parse "mol/m^3")) "field units"
            Expect.equal m.Params.Head.Constraint Constraint.Positive "> 0"
            Expect.equal m.Params[1].Constraint (Constraint.Bounded(0.0, 1.0)) "in [a, b]"
            Expect.isFalse m.Params[1].Learnable "fixed"
            Expect.equal m.Params[1].Shape ParamShape.Spatial "spatial"
            Expect.equal m.Closures.Head.Architecture (Architecture.Named "cnn") "named module"
            Expect.equal m.Constants.Head.Value 2.0 "const"
        }
    ]
