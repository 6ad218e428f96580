namespace Hybrid.Numerics

/// The coefficients of KenCarp4, Kennedy and Carpenter's additive Runge–Kutta pair ARK4(3)6L[2]SA (Appl. Numer.
/// Math. 44 (2003) 139–181, Table 5 and its explicit companion): six stages, an explicit (ERK) tableau for the
/// non-stiff part and an ESDIRK tableau (first stage explicit, constant diagonal γ = 1/4, L-stable, stiffly accurate)
/// for the stiff part, sharing the weights b, the embedded weights b̂ (order 3) and the stage times c. The values are
/// the paper's rationals as SUNDIALS ARKODE ships them (`ARK436L2SA_ERK_6_3_4`, `ARK436L2SA_DIRK_6_3_4`); the tests
/// check the order conditions of the pair to order 4 (coupling conditions included) and of b̂ to order 3.
[<RequireQualifiedAccess>]
module internal KenCarp4Tableau =

    /// γ, the diagonal of the implicit tableau.
    let gamma = 0.25

    /// The stage times c as fractions of h.
    let c = [| 0.0; 0.5; 83.0 / 250.0; 31.0 / 50.0; 17.0 / 20.0; 1.0 |]

    /// The explicit tableau: row i holds aᴱᵢⱼ for j < i.
    let explicitA = [|
        [||]
        [| 0.5 |]
        [| 13861.0 / 62500.0; 6889.0 / 62500.0 |]
        [|
            -116923316275.0 / 2393684061468.0
            -2731218467317.0 / 15368042101831.0
            9408046702089.0 / 11113171139209.0
        |]
        [|
            -451086348788.0 / 2902428689909.0
            -2682348792572.0 / 7519795681897.0
            12662868775082.0 / 11960479115383.0
            3355817975965.0 / 11060851509271.0
        |]
        [|
            647845179188.0 / 3216320057751.0
            73281519250.0 / 8382639484533.0
            552539513391.0 / 3454668386233.0
            3354512671639.0 / 8306763924573.0
            4040.0 / 17871.0
        |]
    |]

    /// The implicit tableau below the diagonal: row i holds aᴵᵢⱼ for j < i (the diagonal is γ from stage 2 on).
    let implicitA = [|
        [||]
        [| 0.25 |]
        [| 8611.0 / 62500.0; -1743.0 / 31250.0 |]
        [| 5012029.0 / 34652500.0; -654441.0 / 2922500.0; 174375.0 / 388108.0 |]
        [|
            15267082809.0 / 155376265600.0
            -71443401.0 / 120774400.0
            730878875.0 / 902184768.0
            2285395.0 / 8070912.0
        |]
        [|
            82889.0 / 524892.0
            0.0
            15625.0 / 83664.0
            69875.0 / 102672.0
            -2260.0 / 8211.0
        |]
    |]

    /// The weights b of the 4th-order solution (both parts; the implicit tableau's last row with γ: stiffly accurate).
    let b = [|
        82889.0 / 524892.0
        0.0
        15625.0 / 83664.0
        69875.0 / 102672.0
        -2260.0 / 8211.0
        0.25
    |]

    /// The embedded weights b̂ of the 3rd-order solution; h Σ (bⱼ − b̂ⱼ) kⱼ estimates the step's error.
    let embedded = [|
        4586570599.0 / 29645900160.0
        0.0
        178811875.0 / 945068544.0
        814220225.0 / 1159782912.0
        -3700637.0 / 11593932.0
        61727.0 / 225920.0
    |]

    /// The full implicit tableau as a square matrix (the diagonal γ from the second stage on; the first stage is
    /// explicit), for the order-condition checks.
    let implicitMatrix () : float[][] =
        Array.init 6 (fun i ->
            Array.init 6 (fun j ->
                if j < i then implicitA[i][j]
                elif j = i && i > 0 then gamma
                else 0.0))

    /// The explicit tableau as a square matrix (zero on and above the diagonal).
    let explicitMatrix () : float[][] =
        Array.init 6 (fun i -> Array.init 6 (fun j -> if j < i then explicitA[i][j] else 0.0))

    /// The extent of the explicit tableau's stability region along the negative real axis (|R(−x)| ≤ 1 for
    /// 0 ≤ x ≤ 4.2344, R(z) = 1 + z + z²/2 + z³/6 + z⁴/24 + z⁵/135 + z⁶/1250 from cₖ = bᵀ(Aᴱ)^(k−1)𝟙): the bound on
    /// h·|λ| of the explicitly integrated terms.
    let explicitRealStability = 4.2344
