/// The small models the tests display.
module Hybrid.Interactive.Tests.Samples

open Hybrid

/// du/dt = −k u, k positive 0.5, u(0) = 1.
let decay =
    let u, k = sym "u", sym "k"

    model "decay" {
        domain point
        field "u"
        param "k" (positive 0.5)
        equation (dt u == -k * u)
        initialValue "u" 1.0
    }

/// du/dt = r u (1 − u/K), r positive 0.5, K in [0.5, 5] at 2 and fixed, u(0) = 0.1.
let logistic =
    let u, r, K = sym "u", sym "r", sym "K"

    model "logistic" {
        domain point
        field "u"
        param "r" (positive 0.5)
        param "K" (fixedParam (bounded 0.5 5.0 2.0))
        equation (dt u == r * u * (1.0 - u / K))
        initialValue "u" 0.1
    }
