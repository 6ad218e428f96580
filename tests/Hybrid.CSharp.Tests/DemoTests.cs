using Hybrid.CSharp;
using Xunit;

namespace Hybrid.CSharp.Tests;

public class DemoTests
{
    private sealed class Collect : IProgress<HeatDemoProgress>
    {
        public List<HeatDemoProgress> Reports { get; } = new();
        public void Report(HeatDemoProgress value) => Reports.Add(value);
    }

    [Fact]
    public async Task HeatRecoveryFindsTheDiffusionCoefficientAndReportsProgress()
    {
        var progress = new Collect();
        var result = await Demos.RunHeatRecoveryAsync(progress);
        Assert.True(result.RelativeError < 0.02, $"recovered {result.RecoveredDiffusionCoefficient}");
        Assert.Equal(0.1, result.TrueDiffusionCoefficient);
        Assert.Equal(
            Math.Abs(result.RecoveredDiffusionCoefficient - result.TrueDiffusionCoefficient) / result.TrueDiffusionCoefficient,
            result.RelativeError, 12);
        Assert.True(result.FinalLoss >= 0 && double.IsFinite(result.FinalLoss), $"final loss {result.FinalLoss}");
        Assert.NotEmpty(progress.Reports);
        Assert.Equal(25, progress.Reports[0].Iteration);
    }

    [Fact]
    public async Task ACancelledTokenStopsTheDemo()
    {
        using var source = new CancellationTokenSource();
        source.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Demos.RunHeatRecoveryAsync(null, source.Token));
    }
}
