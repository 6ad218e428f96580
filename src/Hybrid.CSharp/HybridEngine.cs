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
    public static string Describe() => TorchThread.Run(Engine.describe);

    /// <summary>Seeds the random generators so that runs repeat exactly.</summary>
    public static void Seed(int seed) => TorchThread.Run(() => Engine.seed(seed));

    /// <summary>Uses 64-bit floats for new tensors (for checks) when <paramref name="enabled"/>, else 32-bit.</summary>
    public static void UseDoublePrecision(bool enabled) =>
        TorchThread.Run(() => Engine.usePrecision(enabled ? Precision.Float64 : Precision.Float32));

    /// <summary>Sets the number of CPU threads libtorch uses (at least 1).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The count is below 1.</exception>
    public static void UseThreads(int count)
    {
        Argument.AtLeast(count, 1, nameof(count), "libtorch needs at least one thread");
        TorchThread.Run(() => Engine.useThreads(count));
    }

    /// <summary>The device new tensors (and simulators compiled from now on) live on: <c>"cpu"</c> or <c>"cuda:0"</c>, ….</summary>
    public static string Device => Engine.device().ToString();

    /// <summary>True when TorchSharp's CUDA runtime and an NVIDIA GPU are present.</summary>
    public static bool CudaAvailable => TorchThread.Run(() =>
    {
        Engine.init();
        return TorchSharp.torch.cuda.is_available();
    });

    /// <summary>Creates new tensors on the CPU (the default). Compile simulators after choosing the device.</summary>
    public static void UseCpu() => TorchThread.Run(() => Engine.useDevice(Hybrid.Device.Cpu));

    /// <summary>Creates new tensors on the CUDA GPU with this index (the generated kernels run on the CPU only, so
    /// <see cref="SimulatorBackend.Auto"/> then runs the TorchSharp operations). Compile simulators after choosing the device.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The index is negative.</exception>
    /// <exception cref="Hybrid.EngineException">TorchSharp's CUDA runtime or the GPU is missing, or there is no
    /// GPU with that index; the message names the package to add.</exception>
    public static void UseCuda(int index = 0)
    {
        Argument.AtLeast(index, 0, nameof(index), "GPUs are numbered from 0");
        TorchThread.Run(() => Engine.useDevice(Hybrid.Device.NewCuda(index)));
    }
}
