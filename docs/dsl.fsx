(**
# Hybrid.Dsl — writing models

Run with `dotnet fsi docs/dsl.fsx` after `dotnet build src/Hybrid.Dsl -c Release`. The script asserts what it
shows, so it fails loudly if the page and the library drift apart.

A model is one immutable value, `Hybrid.Model`. Three front doors build the same value:

1. the `model "name" { … }` builder (F#),
2. the text form (`Parse.model`, Unicode or ASCII; for C#, config files, notebooks),
3. the programmatic API (`Model.empty`, `Model.addField`, …, union cases of `Expr`).

All three are checked by `Checks.validate` (the builder and `Parse.model` call it for you).
*)

#r "../src/Hybrid.Dsl/bin/Release/net10.0/Hybrid.Dsl.dll"

open Hybrid

let check (what: string) (ok: bool) =
    if not ok then
        failwithf "docs/dsl.fsx: %s" what

(**
## The builder

Symbols used in equations are ordinary F# values made with `sym`; closures with `call`.
*)

let tumour =
    let u, D, r, c = sym "u", sym "D", sym "r", sym "c"
    let kill = call "kill"

    model "tumour" {
        domain (interval 0.0 10.0) (cells 128)
        field "u" // tumour cell density
        param "D" (positive 0.05) // diffusivity, learnable, kept > 0
        param "r" (positive 1.0) // proliferation rate
        neural "kill" (mlp [ 2; 32; 32; 1 ]) // unknown drug effect f(u, c)
        forcing "c" // drug concentration, given as data
        equation (dt u == div (D * grad u) + r * u * (1.0 - u) - kill [ u; c ] * u)
        boundary "u" noFlux
        initial "u" (fun x -> exp (-((x - 5.0) ** 2)))
    }

check "builder = catalogue" (tumour = Examples.tumour)

(**
### Builder keywords (inside `model "name" { … }`)

| keyword | meaning |
|---|---|
| `domain point` | 0-D model: a system of ODEs |
| `domain (interval x0 x1) (cells n)` | 1-D interval with n uniform cells |
| `domain (rectangle (x0, x1) (y0, y1)) (cells2 nx ny)` | 2-D rectangle with nx × ny cells |
| `domain (lattice K)` | periodic 1-D lattice of K sites (index k) |
| `domain (twoScaleLattice K J)` | lattice with J fast sites per slow site (two-scale Lorenz-96) |
| `field "u"` | a state variable; needs one equation and an initial condition |
| `fastField "Y"` | a state variable on the fast sub-lattice |
| `diagnostic "psi"` | a diagnostic field: solved from its elliptic equation at every instant, no initial condition |
| `param "D" (positive 0.05)` | learnable parameter kept > 0 |
| `param "a" (bounded lo hi v)` | learnable parameter kept in [lo, hi] |
| `param "a" (free v)` / `param "a" v` | learnable, unconstrained |
| `param "a" (fixedAt v)` / `spec \|> fixedParam` | not learnable |
| `spec \|> spatial` | one value per cell instead of one scalar |
| `forcing "c"` | an input given as data under that name (drug, CO₂, dosing rate) |
| `constant "F" 8.0` | a named fixed number |
| `neural "kill" (mlp [2; 32; 1])` | neural closure, arity = first width, tanh; `mlpWith Activation.Relu [...]` |
| `neural "S" (named "cnn" 1)` | a module supplied to the compiler under a key, applied pointwise ([..., arity] → [..., 1]) |
| `neural "sgs" (cnn [2; 16; 2])` | a CNN over whole fields: channels from inputs (= arity) to outputs, kernel 3, tanh; `cnnWith Activation.Relu 5 [...]`; padding circular on periodic sides, replicate elsewhere |
| `neural "sgs" (namedField "mine" 2 2)` | a module under a key applied to whole fields: [B; arity; spatial…] → [B; outputs; spatial…] |
| `units "D" "m^2/s"` | units of a declared symbol (enables dimensional analysis) |
| `equation (dt u == rhs)` | ∂u/∂t = rhs |
| `equation "du/dt = rhs; dv/dt = …"` | equations as text (a line `lap(psi) = rhs` or `Δpsi = rhs` is an elliptic equation) |
| `equation (poisson psi == rhs)` | Δψ = rhs, the elliptic equation of a diagnostic field |
| `equation (screenedPoisson psi k2 == rhs)` | Δψ − κ²ψ = rhs with κ² = k2 ≥ 0 |
| `boundary "u" noFlux` | the same condition on every side |
| `boundary "u" left (dirichlet 1.0)` | one side: `left right bottom top` |
| `noFlux`, `periodic`, `dirichlet v`, `dirichletExpr e`, `neumann v`, `neumannExpr e` | conditions |
| `initial "u" (fun x -> …)` | initial condition in x (on lattices x is the site index) |
| `initial2 "u" (fun x y -> …)` | initial condition in x, y |
| `initialValue "u" 0.5` / `initialValue "u" expr` | constant or closed-form initial condition |
| `initialData "u" "u0"` | initial values come from data under that key |

### Operators on `Expr` (F#)

| F# | math |
|---|---|
| `a + b`, `a - b`, `a * b`, `a / b`, `-a` (with `float` on either side) | arithmetic |
| `a ** 2` (int or integral float) / `a ** 0.5` / `a ** b` | integer power `PowInt`, real power `PowReal` |
| `exp log sqrt abs sin cos tanh` (F#'s own) , `sigmoid`, `softplus` | pointwise functions |
| `emin a b`, `emax a b` | min, max |
| `div e`, `grad e`, `lap e`, `dx e`, `dy e` | ∇·, ∇, Δ, ∂/∂x, ∂/∂y |
| `advect v u`, `advect2 vx vy u` | (v·∇)u |
| `jacobian a b` | J(a, b), the Arakawa Jacobian |
| `advectFlux v q`, `advectFlux2 vx vy q` | ∇·(v q), limited flux form |
| `shift X 1`, `shiftFast Y -1`, `sumFast e` | X[k+1], Y[j−1], Σⱼ e |
| `call "kill" [u; c]` | closure call kill(u, c) |
| `callOutput "sgs" 2 [w; q]` | output 2 (numbered from 1) of a closure with several outputs: sgs(w, q)[2] |
| `dt u == rhs` | an `Equation` |
| `poisson psi == rhs`, `screenedPoisson psi k2 == rhs` | an `EllipticEquation` (Δ − κ²)ψ = rhs |
*)

(**
## The text form

One statement per line or separated by `;`. Newlines inside `( )` and `[ ]` are ignored, so long
expressions may span lines. `#` and `//` start comments. Symbol kinds are declared by a small header;
declarations and equations may come in any order.
*)

let tumourText =
    """
model tumour
domain interval [0, 10] cells 128
field u                       // tumour cell density
param D > 0 = 0.05            // same as: param D = 0.05 positive
param r = 1 positive
closure kill/2 = mlp [2, 32, 32, 1] tanh
forcing c
∂u/∂t = ∇·(D ∇u) + r u (1 − u) − kill(u, c) u
boundary u noflux
initial u = exp(−(x − 5)²)
"""

check "text = builder" (Parse.model tumourText = tumour)

check
    "ASCII = builder"
    (Parse.model (
        tumourText.Replace(
            "∂u/∂t = ∇·(D ∇u) + r u (1 − u) − kill(u, c) u",
            "du/dt = div(D*grad(u)) + r*u*(1-u) - kill(u,c)*u"
        )
    ) = tumour)

(**
### Statements

| statement | meaning |
|---|---|
| `model NAME` / `model "a name"` | the model's name (default `model`) |
| `domain point` | 0-D (the default) |
| `domain interval [a, b] cells n` | 1-D interval |
| `domain rectangle [a, b] x [c, d] cells nx x ny` | 2-D rectangle (`×` may replace `x`: `cells 32 × 32`) |
| `domain lattice K` / `domain lattice K x J` | periodic lattice, optionally with J fast sites per slow site |
| `field u [units]` / `field Y fast` | state variable |
| `field psi diagnostic [units]` | diagnostic field (see below) |
| `param D = v [options] [units]` | options: `positive` (or `> 0` before `=`), `in [lo, hi]`, `fixed`, `learnable`, `spatial` |
| `forcing c [units]` | input given as data |
| `const F = 10 [units]` | named number |
| `closure kill/2 = mlp [2, 32, 1] tanh [units]` | activation: `tanh relu gelu silu sigmoid softplus` (default tanh) |
| `closure S/1 = named "cnn"` | module supplied to the compiler (pointwise) |
| `closure sgs/2 = cnn [2, 16, 2] kernel 3 tanh` | CNN over whole fields (`kernel` default 3, activation default tanh); outputs = last width |
| `closure sgs/2 = named "mine" fieldwise outputs 2` | a supplied module over whole fields with 2 outputs (`outputs` default 1) |
| `∂u/∂t = rhs` / `du/dt = rhs` | the equation of field u |
| `Δpsi = rhs` / `lap(psi) = rhs` | the elliptic equation of diagnostic field psi; `Δpsi − 4 psi = rhs` / `lap(psi) - 4*psi = rhs` for (Δ − κ²)ψ |
| `boundary u noflux` | every side; conditions `periodic`, `noflux`, `dirichlet <expr>`, `neumann <expr>` |
| `boundary u left dirichlet 1 - t` | one side: `left right bottom top`; after `boundary u noflux` it replaces that side |
| `initial u = <expr>` / `initial u = data "u0"` | initial condition |

A field has one initial condition and one boundary condition per side: a repetition is an error naming both
lines. Numbers use the ASCII digits (`1e−3` may use the minus sign `−`); `1.2.3` and `1 000` are errors.
Invisible characters (zero-width space, direction marks; a byte-order mark is allowed only as the first
character) and letters that look like Latin ones (Cyrillic `а`, Greek `Ο`, fullwidth `ａ`) are refused by
code point and name. Size limits (`Limits`): 10,000,000 characters of text, names of 256 characters,
100,000 declarations, 1,000,000 terms per expression, brackets and prefixes nested 150 deep.

Units are written in brackets: `[m^2/s]`, `[mol/(m^3*s)]`, `[1/h]`, `[mg/L]`, `[m^2 s^-1]`. Known symbols:
m cm mm um µm km L mL dL s min h day d yr kg g mg ug µg mol mmol umol µmol K A cd N J W Pa cells cell ppm 1.
Scale is ignored (mg and kg are both mass): dimensional analysis compares dimensions only.

### Expression operators (Unicode | ASCII)

| Unicode | ASCII | meaning |
|---|---|---|
| `a + b`, `a − b`, `−a` | `a + b`, `a - b`, `-a` | sum, difference, negation |
| `a b`, `a·b`, `a × b` | `a*b` | product (juxtaposition is multiplication) |
| `a/b`, `a ÷ b` | `a/b` | quotient |
| `u²`, `u⁻¹` | `u^2`, `u^-1` | integer power (`PowInt`) |
| `u^0.5`, `u^b`, `u^2.0` | same | real power (`PowReal`); a plain integer exponent means `PowInt` |
| `exp(u)` … `softplus(u)`, `√u` | `exp(u)` … `softplus(u)`, `sqrt(u)` | exp log sqrt abs sin cos tanh sigmoid softplus |
| `min(a, b)`, `max(a, b)` | same | minimum, maximum |
| `kill(u, c)` | same | closure call: the `(` must follow the name with no space (`r (1 − u)` is a product) |
| `sgs(w, q)[2]` | same | output 2 (numbered from 1) of a closure with several outputs; LaTeX `\mathrm{sgs}_{2}(w, q)` |
| `∂x(u)`, `∂y(u)` | `dx(u)`, `dy(u)` | partial derivatives |
| `∇u` | `grad(u)` | gradient (use inside a divergence) |
| `∇·(D ∇u)` | `div(D*grad(u))` | divergence (conservative flux form) |
| `Δu`, `∇²u` | `lap(u)` | Laplacian |
| `(v·∇)u`, `advect(v, u)`, `advect(vx, vy, u)` | `advect(v, u)`, `advect(vx, vy, u)` | advection (v·∇)u |
| `J(ψ, q)` | `jacobian(psi, q)` | Arakawa Jacobian ∂ψ/∂x ∂q/∂y − ∂ψ/∂y ∂q/∂x (2-D rectangles; see "Advection for circulation models") |
| `advectFlux(v, q)`, `advectFlux(vx, vy, q)` | same | ∇·(v q) in limited flux form: conservative, keeps q ≥ 0 |
| `X[k+1]`, `X[k−2]` | `X[k+1]`, `X[k-2]` | shift on the periodic lattice (a fast field `Y[k+1]`: the same fast site j of slow site k + 1) |
| `Y[j+1]` | same | shift on the fast ring (fast fields) |
| `Σ_j(Y)`, `Σⱼ Y` | `sum_j(Y)` | sum over the J fast sites of the current slow site |
| `x`, `y`, `t` | same | coordinates and time (reserved names) |

### Grammar

```
(EBNF: { x } repeats x zero or more times, [ x ] makes x optional.)
text       := { [ statement ] ( NEWLINE | ";" ) }
statement  := lhs "=" sum | elliptic "=" sum | declaration
lhs        := "∂" IDENT "/" "∂" "t" | "d"IDENT "/" "dt"
elliptic   := ( "Δ" | "∇²" ) IDENT [ "−" [ NUMBER ] IDENT ]       or lap(IDENT) [ "-" [ NUMBER "*" ] IDENT ]
sum        := product { ( "+" | "-" ) product }
product    := unary { ( "*" | "·" | "×" | "/" | "÷" ) unary | power }     juxtaposition = product
unary      := "-" NUMBER             a negative literal, unless a power follows
            | ( "-" | "+" ) unary | power
power      := ( "∇" | "∇·" | "Δ" | "∇²" | "√" | "Σ_j" | "∂" ( "x" | "y" ) ) power
            | primary [ SUPERSCRIPT | "^" ( [ "-" ] INTEGER | power ) ]
primary    := NUMBER | "(" sum ")" | "(" sum "·" "∇" ")" power | IDENT | IDENT "[" ( "k" | "j" ) [ ( "+" | "-" ) INTEGER ] "]"
            | IDENT "(" [ sum { "," sum } ] ")"                          no space before "("
```
Operators bind as usual: power > unary minus > product > sum; `−u²` is −(u²); `a^b^c` is a^(b^c);
`a^2^3` is rejected as ambiguous. Prefix operators take a power: `Δu²` is Δ(u²), `D ∇u` is D·(∇u).
*)

(**
## Printing

`Print.model` and `Print.expr` print in `Notation.Unicode`, `Notation.Ascii` (both parse back exactly) and
`Notation.Latex` (equations only).
*)

let unicode = Print.equation Notation.Unicode tumour.Equations.Head
let ascii = Print.equation Notation.Ascii tumour.Equations.Head
let latex = Print.equation Notation.Latex tumour.Equations.Head
printfn "%s\n%s\n%s" unicode ascii latex
check "unicode print" (unicode = "∂u/∂t = ∇·(D ∇u) + r u (1 − u) − kill(u, c) u")
check "ascii print" (ascii = "du/dt = div(D*grad(u)) + r*u*(1 - u) - kill(u, c)*u")

for m in Examples.all do
    check (m.Name + " round trip") (Parse.model (Print.model Notation.Unicode m) = m)
    check (m.Name + " ascii round trip") (Parse.model (Print.model Notation.Ascii m) = m)

(**
## Two-scale lattices (Lorenz-96)

`domain lattice K x J` has K slow sites k = 0..K−1 (periodic) and, for fast fields, one periodic ring of J·K
fast sites numbered n = k·J + j, so `Y[j+1]` at the last j of site k is the first fast site of site k+1.
A slow field in a fast equation means its value at the parent site k = n / J; `Σ_j(e)` in a slow equation
sums a fast expression over the J fast sites of site k.
*)

printfn "%s" (Print.model Notation.Unicode Examples.lorenz96)

(**
## Diagnostic (elliptic) fields

A *diagnostic* field is not integrated in time: it is defined at every instant by a linear elliptic equation
(Δ − κ²)ψ = rhs with a constant κ² ≥ 0, for example the streamfunction of the vorticity, Δψ = ω. Equations
use it like any field (velocities u = −∂ψ/∂y, v = ∂ψ/∂x); the eager back end solves it at every evaluation of
the right-hand side (every stage of a scheme), before the equations read it, differentiably with respect to
everything upstream. Rules (`Checks`):

- it needs a 1-D interval or a 2-D rectangle, one elliptic equation, boundary conditions on every side like a
  field, and no ∂/∂t equation and no initial condition;
- its right-hand side may use state fields, parameters, forcings, constants, coordinates, closures and other
  diagnostic fields, as long as no diagnostic field depends on itself through them (no cycle);
- the discrete operator is the equations' own Δ (the three- or five-point stencil with ghost cells), so the
  compiler's Δ of the solution gives back the right-hand side;
- where Δ − κ² is singular, that is κ² = 0 on a domain periodic on every axis or walled only by Neumann or
  no-flux conditions, the solution is fixed by **zero mean**: the right-hand side's mean is projected out first
  (on a periodic domain Δψ has zero mean, so only the mean-free part of the right-hand side can be matched).

Periodic on every axis, the solve is spectral (FFT) with the eigenvalues of that same stencil; with walls, it is
a banded solve (1-D) or conjugate gradients with a Jacobi preconditioner (relative residual 1e-12 in float64,
1e-6 in float32), differentiated by the adjoint solve. `Simulator.Diagnose trajectory` returns the diagnostic
fields along a trajectory, to plot them. The generated kernels do not solve elliptic equations: `Backend.Auto`
runs such a model on the eager back end and `Simulator.BackendFor` says why. Inside a flux coefficient, as in
∇·((1 + ψ²)∇u), the cell-centred solution is averaged to the cell faces like any field (one solve per evaluation).
A failing conjugate-gradient solve names the diagnostic field and its equation. The C# facade declares them with
`.Diagnostic("psi")` and `.Elliptic("lap(psi) = omega")`.
*)

let vorticityText =
    """
model vorticity
domain rectangle [0, 6.283185307179586] x [0, 6.283185307179586] cells 32 x 32
field omega
field psi diagnostic
param nu = 0.01
∂omega/∂t = ∂y(psi) ∂x(omega) − ∂x(psi) ∂y(omega) + nu Δomega
Δpsi = omega
boundary omega periodic
boundary psi periodic
initial omega = sin(x) sin(y)
"""

let vorticity =
    let omega, psi, nu = sym "omega", sym "psi", sym "nu"

    model "vorticity" {
        domain (rectangle (0.0, 6.283185307179586) (0.0, 6.283185307179586)) (cells2 32 32)
        field "omega"
        diagnostic "psi"
        param "nu" 0.01
        equation (dt omega == dy psi * dx omega - dx psi * dy omega + nu * lap omega)
        equation (poisson psi == omega)
        boundary "omega" periodic
        boundary "psi" periodic
        initial2 "omega" (fun x y -> sin x * sin y)
    }

check "diagnostic field: text = builder" (Parse.model vorticityText = vorticity)
check "diagnostic field: round trip" (Parse.model (Print.model Notation.Ascii vorticity) = vorticity)

check
    "elliptic equation in ASCII"
    (Print.ellipticEquation Notation.Ascii vorticity.EllipticEquations.Head = "lap(psi) = omega")

let timeEquationOfDiagnostic =
    try
        Parse.model (vorticityText + "∂psi/∂t = 0\n") |> ignore
        ""
    with :? ModelException as e ->
        e.Message

printfn "%s" timeEquationOfDiagnostic

check
    "a diagnostic field has no time equation"
    (timeEquationOfDiagnostic.Contains "Diagnostic field 'psi' has a time equation")

(**
## Advection for circulation models

Two advection operators conserve what a circulation model must conserve; both are ordinary expressions, so their
arguments may be any expressions of fields, parameters and coordinates.

- `J(ψ, q)` (`jacobian(psi, q)`; builder `jacobian psi q`) is the Jacobian ∂ψ/∂x ∂q/∂y − ∂ψ/∂y ∂q/∂x on a 2-D
  rectangle, discretised as Arakawa (1966) did: the mean of three second-order Jacobians on the 9-point stencil.
  ∂q/∂t = −J(ψ, q) advects q by the velocity (−∂ψ/∂y, ∂ψ/∂x). On a doubly periodic grid ΣJ, Σψ·J and Σq·J are
  zero to round-off, so the scheme conserves the mean and the variance (enstrophy) of q, and the kinetic energy
  when q = Δψ: the time integration is then the only source of drift. On walled sides each operand's ghost cells
  come from its own boundary conditions (corners reflected by both); the three sums then change only by terms at
  the boundary cells, which vanish when ψ is constant along each wall in the row of cells next to it (a Dirichlet
  condition alone fixes ψ on the wall, half a cell away, not in those cells). A `J` not followed by `(` is an ordinary
  symbol; `J(…)` is always the Jacobian, so a closure cannot be called `J`. Before the first step, the stability
  check takes J's speed from the gradient of its first argument (the velocity (−∂ψ/∂y, ∂ψ/∂x)), as it does for the
  same advection written out as ∂y(ψ) ∂x(q) − ∂x(ψ) ∂y(q), and refuses an explicit scheme whose Δt puts it above
  the Courant limit 1, naming the term and the largest stable Δt.
- `advectFlux(u, v, q)` (builder `advectFlux2 u v q`; 1-D `advectFlux(v, q)`) is ∇·(v q) by finite volumes: the
  velocity averaged to the cell faces, q reconstructed in each cell with a van Leer-limited slope (MUSCL), the face
  flux taken from the upwind side. Σq is conserved to round-off on periodic axes (and through walls where the
  face velocity is zero). The face values stay between neighbouring cell values, so q stays ≥ 0 when
  Δt·(max|u|/Δx + max|v|/Δy) ≤ ½ with `Scheme.Euler`, `Scheme.Heun` (SSP-RK2) and `Scheme.SspRk3`, which are
  convex combinations of Euler steps; RK4 and the adaptive schemes carry no such guarantee. When Δt is above the
  stability limit, the refusal names the term and quotes that positivity bound as well. It is second order
  where q is smooth, first order at extrema, where the limiter flattens the reconstruction. `advect(v, q)` remains
  the non-conservative first-order upwind form (v·∇)q.

Both are differentiable (autograd; the limiter's |·| and the upwind switch have kinks where a difference or a face
velocity is zero). The generated kernels refuse both by name, so `Backend.Auto` runs such models eagerly.

A β-plane vorticity equation with a moist tracer, in the text form (the coordinates `x`, `y`, `t` may appear
anywhere, so forcings and coefficients vary in space and time; `softplus(k (q − qs))/k` is a smooth threshold whose
sharpness `k` is a parameter):
*)

let moistText =
    """
model moist
domain rectangle [0, 6.283185307179586] x [0, 6.283185307179586] cells 32 x 32
field psi
field w
field q
param beta = 1 fixed
param nu = 0.001 positive
param k = 20 positive
∂psi/∂t = 0.1 (Δpsi − w)
∂w/∂t = −J(psi, w) − beta ∂x(psi) + nu Δw + 0.1 sin(4 y) cos(t)
∂q/∂t = −advectFlux(−∂y(psi), ∂x(psi), q) + 0.01 (1 + cos(y)) − softplus(k (q − (0.5 + 0.4 cos(y))))/k
boundary psi periodic
boundary w periodic
boundary q periodic
initial psi = sin(x) sin(y)
initial w = −2 sin(x) sin(y)
initial q = 0.5
"""

let moist = Parse.model moistText
check "moist: Unicode round trip" (Parse.model (Print.model Notation.Unicode moist) = moist)
check "moist: ASCII round trip" (Parse.model (Print.model Notation.Ascii moist) = moist)
printfn "%s" (Print.equation Notation.Ascii moist.Equations[1])
check "J prints as jacobian in ASCII" ((Print.equation Notation.Ascii moist.Equations[1]).Contains "jacobian(psi, w)")
printfn "%s" (Print.equation Notation.Latex moist.Equations[2])

(**
(The streamfunction here relaxes towards Δψ = ω as a stand-in; declared as a diagnostic field (above) it is
solved exactly at every stage.)
*)

(**
### Closures over whole fields with several outputs

A sub-grid closure often sees several fields at once and returns one tendency per field. Declare it as a CNN
(`cnn`, built and seeded by the compiler) or a module of your own (`namedField`, supplied in
`CompileOptions.Modules`) and pick its outputs with `sgs(w, q)[1]`, `sgs(w, q)[2]`: the compiler runs the
network once per right-hand-side evaluation on the whole fields (arguments stacked as channels, the batch as
the batch) and hands each equation its channel, so every call must pass the same arguments. Its weights are
trained with the other closures' (`Simulator.Trainable`). Intervals, rectangles and lattices without fast
sites; the generated kernels refuse such closures by name, and `Backend.Auto` runs the model on the eager back
end. The CNN pads each axis circularly where the fields it reads are periodic on both sides (which keeps it
translation-equivariant there) and by replicating the edge cell elsewhere. Such a closure cannot stand in the flux
coefficient κ of ∇·(κ∇u), which is evaluated on the cell faces: the checks refuse it and suggest a term of its own or
a pointwise MLP closure in κ. The C# facade declares one with `.CnnClosure("sgs", 2, new[] { 8 }, outputs: 2)`.
*)

let subgrid =
    Parse.model
        """
model subgrid
domain rectangle [0, 1] x [0, 1] cells 16 x 16
field w
field q
param nu = 0.01 fixed
closure sgs/2 = cnn [2, 8, 2] kernel 3 tanh
∂w/∂t = nu Δw + sgs(w, q)[1]
∂q/∂t = nu Δq + sgs(w, q)[2]
boundary w periodic
boundary q periodic
initial w = sin(6.283185307179586 x)
initial q = cos(6.283185307179586 y)
"""

check "a closure with two outputs round-trips" (Parse.model (Print.model Notation.Ascii subgrid) = subgrid)

(**
## Symbolic tools

`Symbolic.simplify`, `Symbolic.derivative name e`, `Symbolic.freeSymbols`, `Symbolic.substitute`,
`Symbolic.eval` / `Symbolic.evalWith` (closures supplied as functions).
*)

let logistic = Parse.expr "r u (1 - u)"
let dLogistic = Symbolic.derivative "u" logistic
printfn "d/du %s = %s" (Print.expr Notation.Unicode logistic) (Print.expr Notation.Unicode dLogistic)

check
    "derivative value"
    (abs (
        Symbolic.eval (Map.ofList [ "r", 2.0; "u", 0.25 ]) dLogistic
        - 2.0 * (1.0 - 2.0 * 0.25)
    ) < 1e-12)

check "simplify" (Symbolic.simplify (Parse.expr "2 u + 3 u + 0") = Parse.expr "5 u")

(**
## Checks

Every problem names the symbol, the problem and the fix; all problems are listed at once. One expression (an
equation's right-hand side, an initial condition or a boundary value) may have at most
`Checks.maxExpressionNodes` = 100,000 nodes (numbers, symbols and operators; a flat sum of 50,000 terms);
a longer one is refused with its size: split the sum into several fields or use a closure.

A fix is written in the syntax the model came from (`ModelSyntax`): `Parse.model` (and the C# facade, which
writes text statements) suggests text statements such as `boundary u noflux`, which parse as they stand; the
builder and hand-built models get builder code such as `boundary "u" noFlux`
(`Checks.problemsIn ModelSyntax.Text m` asks for the text form).
*)

let problems =
    Checks.problems {
        Examples.tumour with
            Boundaries = []
            Initials = []
    }

problems |> List.iter (printfn "- %s")

check
    "missing boundary"
    (problems
     |> List.exists (fun p -> p.Contains "has no boundary condition on the left side"))

check "missing initial" (problems |> List.exists (fun p -> p.Contains "has no initial condition"))

let textProblems =
    Checks.problemsIn ModelSyntax.Text {
        Examples.tumour with
            Boundaries = []
            Initials = []
    }

textProblems |> List.iter (printfn "- %s")

check
    "the text form's fix is a text statement"
    (textProblems
     |> List.contains
         "Field 'u' has no boundary condition on the left side of the 1-D interval. Add one, e.g. boundary u noflux.")

let parseError =
    try
        Parse.model "field u\ndu/dt = (u + 1" |> ignore
        ""
    with :? ParseException as e ->
        e.Message

printfn "%s" parseError
check "caret at the unclosed bracket" (parseError.Contains "Line 2, column 9" && parseError.Contains "^")

(**
### Units

With units declared, both sides of every equation must agree: `D` in m²/s and `u` in mol/m³ make ∇·(D∇u)
mol/(m³·s), matching ∂u/∂t. A mismatch names the term:
*)

let unitError =
    try
        Parse.model
            "domain interval [0, 1] cells 10\nfield u [mol/m^3]\nparam D = 0.1 positive [m^2]\ndu/dt = div(D*grad(u))\nboundary u noflux\ninitial u = 0"
        |> ignore

        ""
    with :? ModelException as e ->
        e.Message

printfn "%s" unitError
check "units mismatch names the term" (unitError.Contains "the term '∇·(D ∇u)'")
printfn "docs/dsl.fsx: all checks passed"
