/// A model of ODEs (point domain) as Python source for SciPy: its constants and parameters as numbers, the
/// right-hand side `f(t, y)` and its exact Jacobian `jac(t, y)`, both printed from the model's own expressions
/// (`Print.expr` in ASCII, `Symbolic.derivative` for the Jacobian), so SciPy integrates the very system Hybrid
/// compiles, with the same exact Jacobian Hybrid's Rodas4 uses.
module internal Hybrid.Cli.PythonExport

open System
open Hybrid

/// The pointwise functions the exported source may call, defined at its top with numpy.
let private preamble =
    """import numpy as np
from numpy import exp, log, sqrt, sin, cos, tanh, abs


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def softplus(x):
    return np.logaddexp(0.0, x)
"""

/// An expression as Python: the ASCII form with `^` as `**` (same precedence: above unary minus and products).
let private python (e: Expr) =
    (Print.expr Notation.Ascii e).Replace("^", "**")

/// Python source defining `FIELDS`, the model's constants and parameters (at their declared values), `f(t, y)` and
/// `jac(t, y)`. Refuses a model that is not a system of ODEs (a point domain) or has forcings or neural closures.
let ofModel (m: Model) : string =
    if m.Domain <> Domain.Point then
        raise (
            HybridException
                $"Python export: model '{m.Name}' lives on {m.Domain}; only systems of ODEs (domain point) can be exported to SciPy."
        )

    if not m.Forcings.IsEmpty || not m.Closures.IsEmpty then
        raise (
            HybridException
                $"Python export: model '{m.Name}' has forcings or neural closures; SciPy gets only closed systems with numbers for every symbol."
        )

    let fields = m.Fields |> List.map (fun f -> f.Name)
    let unpack = String.Join(", ", fields) + (if fields.Length = 1 then "," else "")
    let quoted = String.Join(", ", fields |> List.map (fun f -> "'" + f + "'"))

    let rhs =
        fields
        |> List.map (fun f ->
            let eq = m.Equations |> List.find (fun e -> e.Field = f)
            eq.Rhs)

    let jacobian = [
        for i, r in List.indexed rhs do
            for j, f in List.indexed fields do
                match Symbolic.simplify (Symbolic.derivative f r) with
                | Num 0.0 -> ()
                | d -> yield $"    J[{i}, {j}] = {python d}"
    ]

    let numbers = [
        for c in m.Constants -> $"{c.Name} = {Print.number c.Value}"
        for p in m.Params -> $"{p.Name} = {Print.number p.Value}"
    ]

    String.concat "\n" [
        preamble
        yield! numbers
        $"FIELDS = [{quoted}]"
        ""
        ""
        "def f(t, y):"
        $"    {unpack} = y"
        "    return np.array([" + String.Join(", ", rhs |> List.map python) + "])"
        ""
        ""
        "def jac(t, y):"
        $"    {unpack} = y"
        $"    J = np.zeros(({fields.Length}, {fields.Length}))"
        yield! jacobian
        "    return J"
        ""
    ]
