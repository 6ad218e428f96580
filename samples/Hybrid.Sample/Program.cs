// Lotka–Volterra case study through the C# facade: write the model as text, simulate the "true" system,
// hide two rates, fit them back by gradient descent through the simulator, print the result and write a plot.
// Exits with 1 when a fitted rate is more than 2% off.
using System.Globalization;
using Hybrid;
using Hybrid.CSharp;

CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
HybridEngine.Initialize();
Console.WriteLine(HybridEngine.Describe());

var model = HybridModel.FromText("""
    model lotka_volterra
    field H                      # prey
    field L                      # predators
    param alpha = 0.55 positive  # prey growth rate
    param beta = 0.028 positive  # predation rate
    param gamma = 0.84 positive  # predator death rate
    param delta = 0.026 positive # predator growth per prey eaten
    dH/dt = alpha*H - beta*H*L
    dL/dt = delta*H*L - gamma*L
    initial H = 30
    initial L = 4
    """);
Console.WriteLine(model.ToUnicode());

// Synthetic observations: 21 snapshots on t ∈ [0, 10] of the true system.
var times = Enumerable.Range(0, 21).Select(i => 0.5 * i).ToArray();
var truth = model.Compile();
var observed = truth.Simulate(new SimulationSettings { Dt = 0.05, SaveTimes = times });
var data = TrainingData.FromSimulation(observed);

// Start the fit from wrong growth and death rates.
var simulator = model.Compile();
simulator.SetParameter("alpha", 0.40);
simulator.SetParameter("gamma", 1.00);

// Reports arrive on the training thread after every epoch (Progress<T> would post them to the thread pool,
// so lines could come after the results).
var progress = new ConsoleProgress();

try
{
    var result = await simulator.TrainAsync(
        data,
        new TrainingOptions { Epochs = 150, LearningRate = 0.05, Dt = 0.25 },
        progress);

    Console.WriteLine($"fitted in {result.WallTime.TotalSeconds:F1} s, final loss {result.Losses[^1]:E3}");
    Console.WriteLine("parameter      true    fitted   error");
    var worst = 0.0;
    foreach (var name in simulator.ParameterNames)
    {
        var trueValue = truth.GetParameter(name);
        var fitted = result.Parameters[name];
        var error = Math.Abs(fitted - trueValue) / trueValue;
        worst = Math.Max(worst, error);
        Console.WriteLine($"{name,-10} {trueValue,8:F4} {fitted,9:F4} {100 * error,6:F2}%");
    }

    // Data against the fitted model, as an SVG in the working folder (artifacts/samples/Hybrid.Sample under
    // ./build.sh test).
    var fit = simulator.Simulate(new SimulationSettings { Dt = 0.05, SaveTimes = times });
    var plot = Path.GetFullPath("lotka-volterra.svg");
    Plots.WriteLines(plot, "Lotka–Volterra: data and fit", times, new Dictionary<string, double[]>
    {
        ["prey (data)"] = observed.Series("H"),
        ["prey (fit)"] = fit.Series("H"),
        ["predators (data)"] = observed.Series("L"),
        ["predators (fit)"] = fit.Series("L"),
    });
    Console.WriteLine($"plot: {plot}");

    return worst <= 0.02 ? 0 : 1;
}
catch (HybridException e)
{
    Console.Error.WriteLine($"error: {e.Message}");
    return 1;
}

/// <summary>Prints every 25th epoch as it finishes.</summary>
internal sealed class ConsoleProgress : IProgress<TrainingProgress>
{
    public void Report(TrainingProgress p)
    {
        if (p.Epoch % 25 == 0)
            Console.WriteLine($"epoch {p.Epoch,4}  loss {p.Loss,10:E3}  alpha {p.Parameters["alpha"]:F4}  gamma {p.Parameters["gamma"]:F4}");
    }
}
