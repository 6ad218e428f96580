using Microsoft.FSharp.Core;
using Hybrid.Models.Demos;

namespace Hybrid.CSharp;

/// <summary>Progress of the heat-equation demo: the iteration, the data misfit and the current D.</summary>
/// <param name="Iteration">1-based optimizer iteration.</param>
/// <param name="Loss">Mean squared misfit to the noisy data.</param>
/// <param name="DiffusionCoefficient">The current estimate of D.</param>
public sealed record HeatDemoProgress(int Iteration, double Loss, double DiffusionCoefficient);

/// <summary>Outcome of the heat-equation demo.</summary>
/// <param name="TrueDiffusionCoefficient">D used to generate the data.</param>
/// <param name="RecoveredDiffusionCoefficient">D found by gradient descent through the simulation.</param>
/// <param name="RelativeError">|recovered − true| / true.</param>
/// <param name="FinalLoss">Mean squared misfit at the end.</param>
/// <param name="WallTime">Time the fit took.</param>
public sealed record HeatDemoResult(
    double TrueDiffusionCoefficient,
    double RecoveredDiffusionCoefficient,
    double RelativeError,
    double FinalLoss,
    TimeSpan WallTime);

/// <summary>Small end-to-end jobs that show the library working.</summary>
public static class Demos
{
    /// <summary>
    /// Simulates the 1-D heat equation with D = 0.1, adds 1% noise, and recovers D by gradient
    /// descent through the simulation.
    /// </summary>
    /// <param name="progress">Receives a report every 25 iterations; may be null.</param>
    /// <param name="cancellationToken">Checked at every progress report (every 25 iterations).</param>
    /// <returns>True and recovered D, the relative error and the wall time.</returns>
    public static Task<HeatDemoResult> RunHeatRecoveryAsync(
        IProgress<HeatDemoProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return Task.Run(() =>
        {
            var report = FuncConvert.FromAction<int, double, double>((iteration, loss, d) =>
            {
                cancellationToken.ThrowIfCancellationRequested();
                progress?.Report(new HeatDemoProgress(iteration, loss, d));
            });
            var outcome = HeatRecovery.run(HeatRecovery.defaults, report);
            return new HeatDemoResult(
                outcome.TrueD, outcome.RecoveredD, outcome.RelativeError, outcome.FinalLoss, outcome.WallTime);
        }, cancellationToken);
    }
}
