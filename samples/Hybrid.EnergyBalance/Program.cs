// Case study 3 (energy balance of global temperature) through the C# facade: the two-box model as text, the
// CO₂ forcing as a forcing, C, C_d, λ, γ and the anomaly offset T₀ fitted with Adam on 1880–2000, tested on
// 2001–2018 against the literature parameters. The same model, split and objective as the F# case
// (src/Hybrid.Models/Cases/EnergyBalance.fs, "EBM literature" and "EBM fitted"); its data loader supplies the
// temperatures and the forcing. Seen here: literature train/test MSE 0.01723/0.00685 (°C², identical to the F#
// case), fitted 0.01549/0.00688 with λ ≈ 0.75 W/m²/K (the F# case's own Adam, on its own parameter scaling,
// reaches 0.01544/0.00679 with λ ≈ 0.85). Exits with 1 when the fit is not better than the literature
// parameters on the training years or gives an implausible feedback.
using System.Globalization;
using Hybrid.CSharp;
using Hybrid.Models.Cases;

CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
HybridEngine.Initialize();

var data = EnergyBalance.load();
var years = data.Years;
var trainYears = Array.IndexOf(years, 2000) + 1;   // 1880 … 2000
var testFrom = trainYears;                          // 2001 … 2018

// A = T + T₀ is the anomaly the data report (relative to a 20th-century mean); T and the deep-ocean D start
// at the pre-industrial equilibrium in 1880. Time is in years since 1880; one explicit Euler step a year. The
// heat capacities are written in units that make every parameter of order one, as in the F# case, so that
// one Adam learning rate suits them all.
const string text = """
    model energy_balance
    domain point
    field A                      # observed surface anomaly T + T0, °C
    field D                      # deep-ocean anomaly, °C
    forcing F                    # CO2 forcing 5.35 ln(C/280), W/m2
    param c = 0.73 positive      # mixed-layer heat capacity / 10 W yr/m2/K (Geoffroy et al. 2013)
    param cd = 1.06 positive     # deep-ocean heat capacity / 100 W yr/m2/K
    param lambda = 1.13 positive # feedback, W/m2/K
    param gamma = 0.73 positive  # heat exchange, W/m2/K
    param T0 = -0.25             # anomaly of the pre-industrial state
    dA/dt = (F - lambda*(A - T0) - gamma*(A - T0 - D))/(10*c)
    dD/dt = gamma*(A - T0 - D)/(100*cd)
    initial A = T0
    initial D = 0
    """;
var model = HybridModel.FromText(text);
Console.WriteLine(model.ToUnicode());

var forcing = new Dictionary<string, Func<double, double[]>>
{
    ["F"] = t => new[] { data.Forcing[Math.Clamp((int)Math.Round(t), 0, data.Forcing.Length - 1)] },
};
var simulator = model.Compile(new CompileSettings { Forcings = forcing });
var allTimes = Enumerable.Range(0, years.Length).Select(k => (double)k).ToArray();
var everyYear = new SimulationSettings { Scheme = IntegrationScheme.Euler, Dt = 1, SaveTimes = allTimes, CheckStability = false };

double Mse(int from, int to)
{
    var a = simulator.Simulate(everyYear).Series("A");
    return Enumerable.Range(from, to - from).Average(k => Math.Pow(a[k] - data.Temperature[k], 2));
}

// The literature parameters with T₀ from the training residual (closed form), as the F# case does.
simulator.SetParameter("T0", 0);
var start = simulator.Simulate(everyYear).Series("A");
simulator.SetParameter("T0", Enumerable.Range(0, trainYears).Average(k => data.Temperature[k] - start[k]));
var literatureTrain = Mse(0, trainYears);
var literatureTest = Mse(testFrom, years.Length);

var training = new TrainingData(
    allTimes[..trainYears],
    new Dictionary<string, double[][]> { ["A"] = data.Temperature[..trainYears].Select(v => new[] { v }).ToArray() });
var result = await simulator.TrainAsync(
    training,
    new TrainingOptions { Epochs = 500, LearningRate = 0.1, Scheme = IntegrationScheme.Euler, Dt = 1 });
var fittedTrain = Mse(0, trainYears);
var fittedTest = Mse(testFrom, years.Length);

var p = result.Parameters;
var ecs = 5.35 * Math.Log(2) / p["lambda"];
Console.WriteLine($"{"model",-16} {"train MSE",10} {"test MSE",10}");
Console.WriteLine($"{"EBM literature",-16} {literatureTrain,10:F5} {literatureTest,10:F5}");
Console.WriteLine($"{"EBM fitted",-16} {fittedTrain,10:F5} {fittedTest,10:F5}");
Console.WriteLine(
    $"fitted: C {10 * p["c"]:F2}, C_d {100 * p["cd"]:F3}, λ {p["lambda"]:F3} W/m²/K (ECS {ecs:F2} K), γ {p["gamma"]:F3}, T₀ {p["T0"]:F3} °C; " +
    $"{result.Epochs} Adam epochs in {result.WallTime.TotalSeconds:F1} s");

var plot = Path.GetFullPath("energy-balance.svg");
Plots.WriteLines(plot, "Global temperature anomaly (°C): data and the fitted two-box model", allTimes.Select(t => 1880 + t).ToArray(),
    new Dictionary<string, double[]> { ["data"] = data.Temperature, ["EBM fitted"] = simulator.Simulate(everyYear).Series("A") });
Console.WriteLine($"plot: {plot}");

if (!(fittedTrain < literatureTrain) || p["lambda"] < 0.3 || p["lambda"] > 3)
{
    Console.Error.WriteLine("The fit did not improve on the literature parameters, or its feedback is implausible.");
    return 1;
}
return 0;
