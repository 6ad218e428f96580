using Hybrid.Compiler;
using Hybrid.Numerics;
using Microsoft.FSharp.Collections;
using Microsoft.FSharp.Core;
using TorchSharp;
using static TorchSharp.torch;

namespace Hybrid.CSharp;

/// <summary>Time integration schemes.</summary>
public enum IntegrationScheme
{
    /// <summary>Explicit Euler, order 1.</summary>
    Euler,
    /// <summary>Heun (explicit trapezoid), order 2.</summary>
    Heun,
    /// <summary>Strong-stability-preserving Runge–Kutta, order 3.</summary>
    SspRk3,
    /// <summary>Classical Runge–Kutta, order 4 (the default).</summary>
    Rk4,
    /// <summary>IMEX Euler (implicit linear diffusion when compiled with <see cref="CompileSettings.ImplicitDiffusion"/>).</summary>
    ImexEuler,
    /// <summary>IMEX Crank–Nicolson, order 2.</summary>
    ImexCrankNicolson,
    /// <summary>Dormand–Prince 5(4), adaptive: steps chosen to keep the estimated error within
    /// <see cref="SimulationSettings.RelativeTolerance"/> and <see cref="SimulationSettings.AbsoluteTolerance"/>;
    /// <see cref="SimulationSettings.Dt"/> is the first step tried.</summary>
    Dopri5,
    /// <summary>Rodas4, adaptive and stiff (a Rosenbrock method of order 4 with the exact Jacobian): for stiff
    /// chemistry, pharmacokinetics and reactions, with the same tolerances as <see cref="Dopri5"/>.</summary>
    Rodas4,
    /// <summary>Dormand–Prince 5(4) while the problem is not stiff, Rodas4 from where it turns stiff (Hairer's
    /// stiffness test); <c>Rollout.lastAuto()</c> says which ran where.</summary>
    Auto,
    /// <summary>KenCarp4, adaptive IMEX (Kennedy and Carpenter's ARK4(3)6L[2]SA): implicit linear diffusion (compile with
    /// <see cref="CompileSettings.ImplicitDiffusion"/>), explicit rest, with the same tolerances as <see cref="Dopri5"/>;
    /// for stiff diffusion with a non-stiff reaction on a grid.</summary>
    KenCarp4,
}

/// <summary>Which back end runs a simulator's rollouts (see <see cref="CompileSettings.Backend"/>).</summary>
public enum SimulatorBackend
{
    /// <summary>The generated kernels wherever the model, scheme, device and events allow them; TorchSharp operations otherwise (the default).</summary>
    Auto,
    /// <summary>TorchSharp operations: every model, scheme and device.</summary>
    Eager,
    /// <summary>Generated kernels with generated adjoints (fixed-step and adaptive schemes, CPU, the eager back end's steps); other rollouts raise.</summary>
    Kernels,
}

/// <summary>Settings of <see cref="HybridModel.Compile(CompileSettings)"/>.</summary>
public sealed class CompileSettings
{
    /// <summary>64-bit tensors (default true); false for 32-bit.</summary>
    public bool DoublePrecision { get; init; } = true;

    /// <summary>Treat linear diffusion implicitly in the IMEX schemes (default false).</summary>
    public bool ImplicitDiffusion { get; init; }

    /// <summary>Seed of the initial weights of MLP closures (default 0).</summary>
    public int Seed { get; init; }

    /// <summary>Which back end runs the rollouts (default <see cref="SimulatorBackend.Auto"/>).</summary>
    public SimulatorBackend Backend { get; init; } = SimulatorBackend.Auto;

    /// <summary>Values of the model's forcings by name: time ↦ one value per grid cell (in the order of
    /// <see cref="SimulationResult"/> cells) or a single value for every cell. Every declared forcing needs one.</summary>
    public IReadOnlyDictionary<string, Func<double, double[]>>? Forcings { get; init; }

    /// <summary>Initial-condition data by key (for <c>initial u = data "key"</c>): [trajectory][cell], one
    /// trajectory to use for every batch member or as many as the batch.</summary>
    public IReadOnlyDictionary<string, double[][]>? InitialData { get; init; }

    /// <summary>TorchSharp modules for closures by name, mapping [..., arity] to [..., 1]; they replace the MLP of
    /// an MLP closure and are required for closures declared as named modules. Their weights are trained with
    /// the closure networks.</summary>
    public IReadOnlyDictionary<string, nn.Module<Tensor, Tensor>>? Modules { get; init; }
}

/// <summary>Settings of a simulation (a rollout).</summary>
public sealed class SimulationSettings
{
    /// <summary>Time integration scheme (default RK4).</summary>
    public IntegrationScheme Scheme { get; init; } = IntegrationScheme.Rk4;

    /// <summary>Time step (default 0.01); the step before a save time is shortened to hit it exactly.</summary>
    public double Dt { get; init; } = 0.01;

    /// <summary>Start time (default 0).</summary>
    public double StartTime { get; init; }

    /// <summary>Times at which the state is returned, sorted and ≥ <see cref="StartTime"/> (default { 1 }).</summary>
    public double[] SaveTimes { get; init; } = { 1.0 };

    /// <summary>Raise a <see cref="Hybrid.HybridException"/> naming the largest stable Δt when an explicit
    /// step is too large (default true); false skips the check.</summary>
    public bool CheckStability { get; init; } = true;

    /// <summary>Relative error tolerance of <see cref="IntegrationScheme.Dopri5"/> (default 1e-6).</summary>
    public double RelativeTolerance { get; init; } = 1e-6;

    /// <summary>Absolute error tolerance of <see cref="IntegrationScheme.Dopri5"/>, in the fields' units (default 1e-9).</summary>
    public double AbsoluteTolerance { get; init; } = 1e-9;

    internal RolloutOptions ToFSharp() =>
        SaveTimes is null
            ? throw new ArgumentNullException("settings", "SimulationSettings.SaveTimes is null. Give the times to return the state at, e.g. SaveTimes = new[] { 0.5, 1.0 }.")
            : new(
            Scheme switch
            {
                IntegrationScheme.Euler => Numerics.Scheme.Euler,
                IntegrationScheme.Heun => Numerics.Scheme.Heun,
                IntegrationScheme.SspRk3 => Numerics.Scheme.SspRk3,
                IntegrationScheme.Rk4 => Numerics.Scheme.Rk4,
                IntegrationScheme.ImexEuler => Numerics.Scheme.ImexEuler,
                IntegrationScheme.ImexCrankNicolson => Numerics.Scheme.ImexCrankNicolson,
                IntegrationScheme.Dopri5 => Numerics.Scheme.Dopri5,
                IntegrationScheme.Rodas4 => Numerics.Scheme.Rodas4,
                IntegrationScheme.Auto => Numerics.Scheme.Auto,
                IntegrationScheme.KenCarp4 => Numerics.Scheme.KenCarp4,
                _ => throw new HybridException($"Unknown integration scheme {Scheme}."),
            },
            Dt,
            StartTime,
            (double[])SaveTimes.Clone(),
            Checkpointing.Off,
            10,
            CheckStability ? OnUnstable.Fail : OnUnstable.Ignore,
            new Tolerance(RelativeTolerance, AbsoluteTolerance),
            Rollout.defaults.FieldTolerances,
            Rollout.defaults.Events,
            Rollout.defaults.StateEvents);
}

/// <summary>
/// States at the save times, copied out of the simulator as arrays. Values of one field at one save time
/// and trajectory are the cells in row-major order (one value for a 0-D model).
/// </summary>
public sealed class SimulationResult
{
    private readonly Dictionary<string, double[]> _values; // field ↦ [S; B; cells] flattened

    internal SimulationResult(string[] fields, double[] times, int trajectories, int[] shape, Dictionary<string, double[]> values, SimulatorBackend backend)
    {
        Backend = backend;
        Fields = fields;
        Times = times;
        Trajectories = trajectories;
        Shape = shape;
        _values = values;
    }

    /// <summary>The back end that computed it: <see cref="SimulatorBackend.Eager"/> or <see cref="SimulatorBackend.Kernels"/>.</summary>
    public SimulatorBackend Backend { get; }

    /// <summary>Field names in state order.</summary>
    public IReadOnlyList<string> Fields { get; }

    /// <summary>The save times.</summary>
    public double[] Times { get; }

    /// <summary>Number of trajectories (the batch size).</summary>
    public int Trajectories { get; }

    /// <summary>Spatial shape: empty for 0-D, { n } for an interval, { nx, ny } for a rectangle.</summary>
    public int[] Shape { get; }

    /// <summary>Number of values per field and state (the product of <see cref="Shape"/>).</summary>
    public int Cells => Shape.Aggregate(1, (a, b) => a * b);

    private double[] Field(string field)
    {
        ArgumentNullException.ThrowIfNull(field);
        return _values.TryGetValue(field, out var v)
            ? v
            : throw new ArgumentException($"The simulation has no field '{field}'. Fields: {string.Join(", ", Fields)}.", nameof(field));
    }

    private static void CheckIndex(string argument, int index, int count)
    {
        if (index < 0 || index >= count)
            throw new ArgumentOutOfRangeException(
                argument, index, $"{argument} = {index} is out of range: there are {count}, so it must be in 0..{count - 1}.");
    }

    /// <summary>The cells of <paramref name="field"/> at save index <paramref name="save"/> of one trajectory.</summary>
    /// <exception cref="ArgumentException">No field of that name.</exception>
    /// <exception cref="ArgumentOutOfRangeException">An index out of range.</exception>
    public double[] At(string field, int save, int trajectory = 0)
    {
        var v = Field(field);
        CheckIndex("save", save, Times.Length);
        CheckIndex("trajectory", trajectory, Trajectories);
        var start = (save * Trajectories + trajectory) * Cells;
        return v[start..(start + Cells)];
    }

    /// <summary>The time series of one cell (cell 0 for a 0-D model) of <paramref name="field"/>, one value per save time.</summary>
    /// <exception cref="ArgumentException">No field of that name.</exception>
    /// <exception cref="ArgumentOutOfRangeException">An index out of range.</exception>
    public double[] Series(string field, int cell = 0, int trajectory = 0)
    {
        var v = Field(field);
        CheckIndex("cell", cell, Cells);
        CheckIndex("trajectory", trajectory, Trajectories);
        return Enumerable.Range(0, Times.Length).Select(s => v[(s * Trajectories + trajectory) * Cells + cell]).ToArray();
    }

    internal double[] Flat(string field) => Field(field);

    internal SimulationResult WithValues(Dictionary<string, double[]> values) =>
        new((string[])Fields, Times, Trajectories, Shape, values, Backend);

    /// <summary>All states of <paramref name="field"/> of one trajectory: [save time][cell].</summary>
    public double[][] Values(string field, int trajectory = 0) =>
        Enumerable.Range(0, Times.Length).Select(s => At(field, s, trajectory)).ToArray();
}

/// <summary>
/// A model compiled to a differentiable simulator: simulate, read and set parameters, train against data,
/// save and load parameters and network weights. It owns native tensors and networks: dispose it when done
/// (modules passed in <see cref="CompileSettings.Modules"/> stay the caller's). Its torch work runs on the facade's
/// one torch thread, so it may be called from any thread.
/// </summary>
public sealed partial class HybridSimulator : IDisposable
{
    private readonly Simulator _inner;
    private readonly Tensor[] _ownedData;
    private readonly HashSet<nn.Module> _callerModules;
    private volatile bool _disposed;

    private HybridSimulator(HybridModel model, Simulator simulator, Tensor[] ownedData, IEnumerable<nn.Module> callerModules)
    {
        Model = model;
        _inner = simulator;
        _ownedData = ownedData;
        _callerModules = new HashSet<nn.Module>(callerModules, ReferenceEqualityComparer.Instance);
    }

    internal static HybridSimulator Create(HybridModel model, CompileSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        HybridEngine.Initialize();
        return TorchThread.Run(() => Compile(model, settings));
    }

    private static HybridSimulator Compile(HybridModel model, CompileSettings settings)
    {
        var dtype = settings.DoublePrecision ? ScalarType.Float64 : ScalarType.Float32;
        var spatial = GridModule.ofDomain(model.Definition.Domain).Shape;
        var cells = spatial.Aggregate(1L, (a, b) => a * b);

        Tensor Values(double[] values, long[] shape) =>
            tensor(values, shape, dtype: dtype, device: Engine.torchDevice());

        FSharpFunc<double, Tensor> Forcing(string name, Func<double, double[]> f)
        {
            if (f is null)
                throw new ArgumentNullException(nameof(settings), $"CompileSettings.Forcings['{name}'] is null. Give a function of time, e.g. t => new[] {{ Math.Cos(t) }}.");
            return FuncConvert.FromFunc<double, Tensor>(t =>
            {
                var v = f(t) ?? throw new HybridException($"Forcing '{name}' returned null at t = {t}.");
                if (v.Length == 1)
                    return tensor(v[0], dtype: dtype, device: Engine.torchDevice());
                if (v.Length != cells)
                    throw new HybridException(
                        $"Forcing '{name}' returned {v.Length} values at t = {t}; the grid has {cells} cells. Return one value per cell, or one for all.");
                return Values(v, new long[] { 1 }.Concat(spatial).ToArray());
            });
        }

        var owned = new List<Tensor>();
        Tensor Data(string key, double[][] rows)
        {
            if (rows is null || rows.Length == 0 || rows.Any(r => r is null || r.Length != cells))
                throw new HybridException(
                    $"InitialData '{key}' must hold at least one trajectory of {cells} values (one per cell), [trajectory][cell].");
            var t = Values(rows.SelectMany(r => r).ToArray(), new long[] { rows.Length }.Concat(spatial).ToArray()).DetachFromDisposeScope();
            owned.Add(t);
            return t;
        }

        var d = Hybrid.Compiler.Compiler.defaults;
        try
        {
            var options = new CompileOptions(
                dtype,
                settings.ImplicitDiffusion,
                settings.Modules is null
                    ? d.Modules
                    : MapModule.OfSeq(settings.Modules.Select(kv => Tuple.Create(kv.Key, kv.Value))),
                settings.Forcings is null
                    ? d.Forcings
                    : MapModule.OfSeq(settings.Forcings.Select(kv => Tuple.Create(kv.Key, Forcing(kv.Key, kv.Value)))),
                settings.InitialData is null
                    ? d.Data
                    : MapModule.OfSeq(settings.InitialData.Select(kv => Tuple.Create(kv.Key, Data(kv.Key, kv.Value)))),
                settings.Seed,
                settings.Backend switch
                {
                    SimulatorBackend.Eager => Backend.Eager,
                    SimulatorBackend.Kernels => Backend.Kernels,
                    _ => Backend.Auto,
                });
            var compiled = Hybrid.Compiler.Compiler.compile(options, model.Definition);
            return new HybridSimulator(model, compiled, owned.ToArray(), settings.Modules?.Values ?? Enumerable.Empty<nn.Module>());
        }
        catch
        {
            foreach (var t in owned)
                t.Dispose();
            throw;
        }
    }

    // The F# simulator this wraps; only on the torch thread.
    internal Simulator Inner
    {
        get
        {
            ThrowIfDisposed();
            return _inner;
        }
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed, this);

    // Runs `work` on the torch thread after checking that the simulator is not disposed.
    private T OnTorch<T>(Func<T> work)
    {
        ThrowIfDisposed();
        return TorchThread.Run(() =>
        {
            ThrowIfDisposed();
            return work();
        });
    }

    private void OnTorch(Action work) =>
        OnTorch(() =>
        {
            work();
            return true;
        });

    /// <summary>
    /// Frees the parameters, the closure networks it created and the initial-condition data it copied. Calls after
    /// this raise <see cref="ObjectDisposedException"/>; a second call does nothing.
    /// </summary>
    public void Dispose()
    {
        if (_disposed)
            return;
        TorchThread.Run(() =>
        {
            if (_disposed)
                return;
            _disposed = true;
            foreach (var p in _inner.Parameters)
                p.Raw.Dispose();
            foreach (var (_, module) in _inner.Modules.Select(m => (m.Item1, m.Item2)))
                if (!_callerModules.Contains(module))
                    module.Dispose();
            foreach (var t in _ownedData)
                t.Dispose();
        });
    }

    /// <summary>True once <see cref="Dispose"/> has run.</summary>
    public bool IsDisposed => _disposed;

    /// <summary>The model it was compiled from.</summary>
    public HybridModel Model { get; }

    /// <summary>Field names in state order.</summary>
    public IReadOnlyList<string> FieldNames => Inner.Fields;

    /// <summary>Parameter names in declaration order.</summary>
    public IReadOnlyList<string> ParameterNames => Inner.Parameters.Select(p => p.Name).ToArray();

    /// <summary>Neural closure names.</summary>
    public IReadOnlyList<string> ClosureNames => Inner.Modules.Select(m => m.Item1).ToArray();

    /// <summary>Current parameter values by name (the mean for a spatial parameter).</summary>
    public IReadOnlyDictionary<string, double> Parameters =>
        OnTorch(() => (IReadOnlyDictionary<string, double>)ParameterValues());

    private Dictionary<string, double> ParameterValues() => _inner.Parameters.ToDictionary(p => p.Name, p => p.Get());

    /// <summary>The current (constrained) value of a parameter (the mean for a spatial parameter).</summary>
    /// <exception cref="Hybrid.ModelException">No parameter has that name; the message lists them.</exception>
    public double GetParameter(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return OnTorch(() => _inner.Param(name).Get());
    }

    /// <summary>Sets a parameter (everywhere, for a spatial parameter).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is not finite.</exception>
    /// <exception cref="Hybrid.ModelException">No parameter has that name, or the value violates its constraint.</exception>
    public void SetParameter(string name, double value)
    {
        ArgumentNullException.ThrowIfNull(name);
        Argument.Finite(value, nameof(value), $"SetParameter(\"{name}\", 0.5)");
        OnTorch(() => _inner.Param(name).Set(value));
    }

    /// <summary>Number of values per field (1 for a 0-D model, the number of cells otherwise).</summary>
    public int Cells => Shape.Aggregate(1, (a, b) => a * b);

    /// <summary>Spatial shape: empty for 0-D, { n } for an interval, { nx, ny } for a rectangle.</summary>
    public int[] Shape
    {
        get
        {
            ThrowIfDisposed();
            return _inner.Grid.Shape.Select(s => (int)s).ToArray();
        }
    }

    /// <summary>Simulates one trajectory from the model's initial conditions.</summary>
    /// <exception cref="Hybrid.HybridException">An unstable step (naming the largest stable Δt), NaN/Inf
    /// in the state, or bad save times.</exception>
    public SimulationResult Simulate(SimulationSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        return OnTorch(() =>
        {
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            return Run(_inner.Initial(1), settings);
        });
    }

    /// <summary>Simulates one trajectory from the given initial state: one array of cell values per field, in <see cref="FieldNames"/> order.</summary>
    /// <exception cref="ArgumentException">The initial state has the wrong number of fields or cells.</exception>
    /// <exception cref="Hybrid.HybridException">The rollout fails.</exception>
    public SimulationResult Simulate(double[][] initial, SimulationSettings settings)
    {
        ArgumentNullException.ThrowIfNull(initial);
        return Simulate(new[] { initial }, settings);
    }

    /// <summary>Simulates a batch of trajectories: initial[b][field][cell].</summary>
    /// <exception cref="ArgumentException">The initial states have the wrong number of fields or cells.</exception>
    /// <exception cref="Hybrid.HybridException">The rollout fails.</exception>
    public SimulationResult Simulate(double[][][] initial, SimulationSettings settings)
    {
        ArgumentNullException.ThrowIfNull(initial);
        ArgumentNullException.ThrowIfNull(settings);
        return OnTorch(() =>
        {
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            return Run(InitialTensors(initial), settings);
        });
    }

    internal Tensor[] InitialTensors(double[][][] initial)
    {
        var fields = _inner.Fields;
        var shape = Shape;
        var cells = Cells;
        if (initial.Length == 0)
            throw new ArgumentException("Simulate: no initial states were given (the batch is empty). Give at least one, initial[b][field][cell].", nameof(initial));
        for (var b = 0; b < initial.Length; b++)
        {
            if (initial[b] is null || initial[b].Length != fields.Length)
                throw new ArgumentException(
                    $"Simulate: initial state {b} has {initial[b]?.Length ?? 0} fields but the model has {fields.Length} ({string.Join(", ", fields)}).", nameof(initial));
            for (var f = 0; f < fields.Length; f++)
                if (initial[b][f] is null || initial[b][f].Length != cells)
                    throw new ArgumentException(
                        $"Simulate: field '{fields[f]}' of initial state {b} has {initial[b][f]?.Length ?? 0} values but the grid has {cells}.", nameof(initial));
        }

        var dims = new long[] { initial.Length }.Concat(shape.Select(s => (long)s)).ToArray();
        return Enumerable.Range(0, fields.Length)
            .Select(f => tensor(initial.SelectMany(state => state[f]).ToArray(), dims, dtype: _inner.Dtype, device: Engine.torchDevice()))
            .ToArray();
    }

    private SimulationResult Run(Tensor[] u0, SimulationSettings settings)
    {
        var trajectory = _inner.Simulate(u0, settings.ToFSharp());
        var values = new Dictionary<string, double[]>();
        for (var i = 0; i < trajectory.Fields.Length; i++)
            values[trajectory.Fields[i]] = ToArray(trajectory.Values[i]);
        var shape = trajectory.Values[0].shape;
        return new SimulationResult(
            trajectory.Fields,
            trajectory.Times,
            (int)shape[1],
            shape.Skip(2).Select(s => (int)s).ToArray(),
            values,
            trajectory.Backend.IsKernels ? SimulatorBackend.Kernels : SimulatorBackend.Eager);
    }

    internal static double[] ToArray(Tensor t)
    {
        using var c = t.detach().to_type(ScalarType.Float64).cpu().contiguous();
        return c.data<double>().ToArray();
    }
}
