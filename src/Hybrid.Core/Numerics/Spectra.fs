namespace Hybrid.Numerics

open System
open TorchSharp
open Hybrid

/// Isotropic (shell-summed) spectra of a doubly periodic 2-D vorticity field ω on [0, L]², with wavenumbers in
/// units of 2π/L (on the climate case's [0, 2π]² they are the integers). The Fourier coefficients are normalised so
/// that ω(x) = Σ_k ω̂(k) e^{i k·x} (ω̂ = the discrete Fourier transform over the n × m samples, divided by n m), so
/// Parseval reads mean(ω²) = Σ_k |ω̂(k)|². Shell k holds the wavevectors whose length |k| rounds to k.
type Spectrum = {
    /// The shells' wavenumbers 0, 1, …, K, K the largest rounded |k| on the grid (⌊√2 n/2⌉ on an n × n grid).
    Wavenumbers: float[]
    /// Enstrophy per shell, Z(k) = ½ Σ_{shell k} |ω̂|²; Σ_k Z(k) = ½ mean(ω²) (Parseval).
    Enstrophy: float[]
    /// Kinetic energy per shell, E(k) = ½ Σ_{shell k} |ω̂|² / |k|² with each wavevector's own |k|² (the velocity of
    /// Δψ = ω, u = (−∂ψ/∂y, ∂ψ/∂x), has |û| = |ω̂|/|k|), 0 in shell 0; Σ_k E(k) = ½ mean(u² + v²) of the
    /// spectrally exact velocity. On a shell whose wavevectors all have |k| = k it equals Z(k)/k².
    Energy: float[]
}

/// Isotropic energy and enstrophy spectra (`Spectrum`) of periodic 2-D fields.
[<RequireQualifiedAccess>]
module Spectra =

    /// |ω̂(k)|² of one n × m field, ω̂ normalised by 1/(n m) (see `Spectrum`): two passes of a direct DFT, one per
    /// axis (O(n m (n + m)) operations; fine for the grids of a report).
    let private power (field: float[,]) : float[,] =
        let n = Array2D.length1 field
        let m = Array2D.length2 field

        let twiddles (len: int) =
            Array.init len (fun p -> cos (2.0 * Math.PI * float p / float len)),
            Array.init len (fun p -> -sin(2.0 * Math.PI * float p / float len))

        let cm, sm = twiddles m
        let cn, sn = twiddles n
        // Along the second axis: a[i, k2] = Σ_j f[i, j] e^{−2πi k2 j / m}.
        let re = Array2D.zeroCreate n m
        let im = Array2D.zeroCreate n m

        for i in 0 .. n - 1 do
            for k2 in 0 .. m - 1 do
                let mutable r = 0.0
                let mutable s = 0.0

                for j in 0 .. m - 1 do
                    let p = k2 * j % m
                    let v = field[i, j]
                    r <- r + v * cm[p]
                    s <- s + v * sm[p]

                re[i, k2] <- r
                im[i, k2] <- s

        // Along the first axis: b[k1, k2] = Σ_i a[i, k2] e^{−2πi k1 i / n}.
        let scale = 1.0 / (float n * float m)

        Array2D.init n m (fun k1 k2 ->
            let mutable r = 0.0
            let mutable s = 0.0

            for i in 0 .. n - 1 do
                let p = k1 * i % n
                let a, b = re[i, k2], im[i, k2]
                r <- r + a * cn[p] - b * sn[p]
                s <- s + a * sn[p] + b * cn[p]

            (r * r + s * s) * scale * scale)

    /// The signed wavenumber of DFT index `k` on `len` samples: k for k ≤ len/2, k − len above.
    let private signed (len: int) (k: int) = if 2 * k <= len then k else k - len

    /// The isotropic spectra of the vorticity fields `fields` (each n × m, all the same shape, at least one),
    /// averaged over them (e.g. over the states of a batch or of a run's last saves). A `HybridException` names an
    /// empty list, fields of different shapes or a non-finite value.
    let ofArrays (fields: float[,][]) : Spectrum =
        if isNull fields || fields.Length = 0 then
            raise (HybridException "Spectra.ofArrays: no fields; give at least one n × m vorticity field.")

        let n = Array2D.length1 (fields[0])
        let m = Array2D.length2 (fields[0])

        for f in fields do
            if Array2D.length1 f <> n || Array2D.length2 f <> m then
                raise (
                    HybridException
                        $"Spectra.ofArrays: a field of {Array2D.length1 f} × {Array2D.length2 f} among fields of {n} × {m}; give fields of one shape."
                )

            f
            |> Array2D.iter (fun v ->
                if not (Double.IsFinite v) then
                    raise (
                        HybridException
                            $"Spectra.ofArrays: the value {v} is not finite; a spectrum needs finite fields."
                    ))

        let largest = int (Math.Round(sqrt (float ((n / 2) * (n / 2) + (m / 2) * (m / 2)))))

        let enstrophy = Array.zeroCreate (largest + 1)
        let energy = Array.zeroCreate (largest + 1)
        let weight = 1.0 / float fields.Length

        for f in fields do
            let p = power f

            for k1 in 0 .. n - 1 do
                for k2 in 0 .. m - 1 do
                    let a, b = signed n k1, signed m k2
                    let k2sum = float (a * a + b * b)
                    let shell = int (Math.Round(sqrt k2sum))
                    let half = 0.5 * p[k1, k2] * weight
                    enstrophy[shell] <- enstrophy[shell] + half

                    if k2sum > 0.0 then
                        energy[shell] <- energy[shell] + half / k2sum

        {
            Wavenumbers = Array.init (largest + 1) float
            Enstrophy = enstrophy
            Energy = energy
        }

    /// The isotropic spectra of a tensor of vorticity fields [..; n; m] (any leading dimensions, e.g. [B; n; m] or
    /// [S; B; n; m]), averaged over the leading entries (`ofArrays`). Reads the values (no gradient).
    let ofTensor (omega: torch.Tensor) : Spectrum =
        if omega.dim () < 2L then
            raise (
                HybridException
                    $"Spectra.ofTensor: a tensor of shape [{String.Join(',', omega.shape)}]; give [..; n; m] vorticity fields."
            )

        use _ = torch.no_grad ()
        let shape = omega.shape
        let n = int (shape[shape.Length - 2])
        let m = int (shape[shape.Length - 1])

        let values =
            omega.detach().to_type(torch.ScalarType.Float64).contiguous().reshape(-1L).data<float>().ToArray()

        let count = values.Length / (n * m)

        Array.init count (fun c -> Array2D.init n m (fun i j -> values[c * n * m + i * m + j]))
        |> ofArrays
