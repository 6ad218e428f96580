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
    public void BadThreadCountIsATypedExceptionWithTheValue()
    {
        var e = Assert.Throws<Hybrid.EngineException>(() => HybridEngine.UseThreads(0));
        Assert.Contains("got 0", e.Message);
        Assert.IsAssignableFrom<Hybrid.HybridException>(e);
    }

    [Fact]
    public void SeedAndPrecisionCanBeSet()
    {
        HybridEngine.Seed(3);
        HybridEngine.UseDoublePrecision(false);
        HybridEngine.UseThreads(Math.Max(1, Environment.ProcessorCount));
    }
}
