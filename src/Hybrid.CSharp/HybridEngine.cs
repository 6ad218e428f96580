namespace Hybrid.CSharp;

/// <summary>
/// The numerical engine (TorchSharp over libtorch) as C# sees it. Every other entry point of this
/// facade initializes it on first use; call <see cref="Initialize"/> to fail early instead.
/// </summary>
public static class HybridEngine
{
    /// <summary>
    /// Loads libtorch and TorchSharp's native bridge (a patched copy where the system libstdc++ is too
    /// old). Idempotent and thread-safe.
    /// </summary>
    /// <exception cref="Hybrid.EngineException">Nothing loadable was found; the message lists the
    /// folders searched and the package to install.</exception>
    public static void Initialize() => Engine.init();

    /// <summary>One line describing what was loaded: TorchSharp version, native bridge, device, precision.</summary>
    public static string Describe() => Engine.describe();

    /// <summary>Seeds the random generators so that runs repeat exactly.</summary>
    public static void Seed(int seed) => Engine.seed(seed);

    /// <summary>Uses 64-bit floats for new tensors (for checks) when <paramref name="enabled"/>, else 32-bit.</summary>
    public static void UseDoublePrecision(bool enabled) =>
        Engine.usePrecision(enabled ? Precision.Float64 : Precision.Float32);

    /// <summary>Sets the number of CPU threads libtorch uses (at least 1).</summary>
    public static void UseThreads(int count) => Engine.useThreads(count);
}
