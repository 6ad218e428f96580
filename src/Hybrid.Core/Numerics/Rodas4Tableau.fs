namespace Hybrid.Numerics

/// The coefficients of Rodas4 (Hairer and Wanner, Solving ODEs II, §IV.7, their code RODAS, METH = 1) in one place,
/// read by the eager stepper (`Rosenbrock`) and the generated-kernel one (`Hybrid.Kernels.AdaptiveKernels`).
[<RequireQualifiedAccess>]
module internal Rodas4Tableau =

    // Rodas4 in Hairer and Wanner's variables Uᵢ (their rodas.f, METH = 1): stage i solves
    // (1/(γh) I − J) Uᵢ = f(t + αᵢh, u + Σⱼ aᵢⱼUⱼ) + Σⱼ (cᵢⱼ/h) Uⱼ + h dᵢ ∂f/∂t,
    // the new state is u + Σⱼ a₆ⱼUⱼ + U₆ (stiffly accurate) and U₆ is the error estimate.

    /// γ, the diagonal of the method.
    let gamma = 0.25

    /// αᵢ: the stage times as fractions of h.
    let alpha = [| 0.0; 0.386; 0.21; 0.63; 1.0; 1.0 |]

    /// dᵢ: the weights of h·∂f/∂t in the stages.
    let d = [| 0.25; -0.1043; 0.1035; -0.3620000000000023e-01; 0.0; 0.0 |]

    /// aᵢⱼ: the stage inputs u + Σⱼ aᵢⱼUⱼ (row 5 gives the new state before U₆).
    let a = [|
        [||]
        [| 0.1544000000000000e+01 |]
        [| 0.9466785280815826e+00; 0.2557011698983284e+00 |]
        [| 0.3314825187068521e+01; 0.2896124015972201e+01; 0.9986419139977817e+00 |]
        [|
            0.1221224509226641e+01
            0.6019134481288629e+01
            0.1253708332932087e+02
            -0.6878860361058950e+00
        |]
        [|
            0.1221224509226641e+01
            0.6019134481288629e+01
            0.1253708332932087e+02
            -0.6878860361058950e+00
            1.0
        |]
    |]

    /// cᵢⱼ: the couplings Σⱼ (cᵢⱼ/h) Uⱼ of stage i.
    let c = [|
        [||]
        [| -0.5668800000000000e+01 |]
        [| -0.2430093356833875e+01; -0.2063599157091915e+00 |]
        [| -0.1073529058151375e+00; -0.9594562251023355e+01; -0.2047028614809616e+02 |]
        [|
            0.7496443313967647e+01
            -0.1024680431464352e+02
            -0.3399990352819905e+02
            0.1170890893206160e+02
        |]
        [|
            0.8083246795921522e+01
            -0.7981132988064893e+01
            -0.3152159432874371e+02
            0.1631930543123136e+02
            -0.6058818238834054e+01
        |]
    |]

    // The continuous extension: u(t + sh) ≈ (1 − s) u + s (u₁ + (1 − s)(D₂ + s D₃)), Dₖ = Σⱼ dₖⱼ Uⱼ (j ≤ 5).

    /// The weights of D₂ in the continuous extension.
    let dense2 = [|
        0.1012623508344586e+02
        -0.7487995877610167e+01
        -0.3480091861555747e+02
        -0.7992771707568823e+01
        0.1025137723295662e+01
    |]

    /// The weights of D₃ in the continuous extension.
    let dense3 = [|
        -0.6762803392801253e+00
        0.6087714651680015e+01
        0.1643084320892478e+02
        0.2476722511418386e+02
        -0.6594389125716872e+01
    |]
