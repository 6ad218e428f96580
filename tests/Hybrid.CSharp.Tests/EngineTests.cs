using Hybrid.CSharp;
using Xunit;

namespace Hybrid.CSharp.Tests;

public class EngineTests
{
    [Fact]
    public void InitializeIsIdempotentAndDescribesTheEngine()
    {
        HybridEngine.Initialize();
        HybridEngine.Initialize();
        Assert.Contains("TorchSharp", HybridEngine.Describe());
    }

    [Fact]
    public void BadThreadCountIsArgumentOutOfRangeWithTheValue()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => HybridEngine.UseThreads(0));
        Assert.Equal("count", e.ParamName);
        Assert.StartsWith("count must be ≥ 1 (libtorch needs at least one thread), got 0.", e.Message);
    }

    [Fact]
    public void SeedAndPrecisionCanBeSet()
    {
        HybridEngine.Seed(3);
        HybridEngine.UseDoublePrecision(false);
        HybridEngine.UseThreads(Math.Max(1, Environment.ProcessorCount));
    }
}
