using Hybrid.CSharp;

var model = HybridModel.Builder("lotka_volterra")          // or HybridModel.FromText(text),
    .Field("H").Field("L")                                 //    HybridModel.Example("lotka_volterra"),
    .Parameter("alpha", positive: 0.55)                    //    HybridModel.BuilderFromText(text)
    .Parameter("beta", positive: 0.028)
    .Parameter("gamma", positive: 0.84)
    .Parameter("delta", positive: 0.026)
    .Parameter("hare0", positive: 30)                      // used in an initial line: fitted too
    .Equation("dH/dt = alpha*H - beta*H*L")                // one equation per call, parsed alone
    .Equation("dL/dt = delta*H*L - gamma*L")
    .Initial("H", "hare0").Initial("L", 4)
    .Build();
Console.WriteLine(model.ToUnicode());                      // also ToAscii(), ToLatex()

using var sim = model.Compile();                           // or Compile(new CompileSettings { ... }); IDisposable
var times = Enumerable.Range(0, 21).Select(i => 0.5 * i).ToArray();
var settings = new SimulationSettings { Dt = 0.05, SaveTimes = times };   // Scheme, StartTime, ...
var run = sim.Simulate(settings);                          // or Simulate(initial[field][cell], settings)
double[] prey = run.Series("H");                           // one value per save time; At(field, i) = cells

var data = TrainingData.FromSimulation(run);               // or new TrainingData(times, field ↦ [time][cell]),
                                                           //    TrainingData.FromCsv(path, "t", "H", "L")
var options = new TrainingOptions { Epochs = 150, LearningRate = 0.05, Dt = 0.25, CheckpointDirectory = "ckpt" };
sim.SetParameter("alpha", 0.4);                            // GetParameter, Parameters, ParameterNames
using var cancel = new CancellationTokenSource();
var result = await sim.TrainAsync(                         // or sim.Train(...), which waits
    data, options,
    new Progress<TrainingProgress>(p => Console.WriteLine($"{p.Epoch}: {p.Loss:E2}")),
    cancel.Token);
Console.WriteLine(result.Parameters["alpha"]);
var logFit = sim.Train(data, new TrainingOptions           // L-BFGS on the misfit of the logarithms
{
    Optimizer = TrainingOptimizer.Lbfgs, Epochs = 5, LearningRate = 1, Dt = 0.25, Loss = TrainingLoss.LogMse,
});                                                        // Loss: Mse, LogMse, GaussianNll; Horizon: windows

sim.Save("lv.bin");                                        // parameters and closure network weights
sim.Load("lv.bin");
sim.LoadCheckpoint("ckpt");                                // the latest checkpoint training wrote

// Uncertainty: a (bootstrap) ensemble, its parameter spread, predictive spread and calibration.
using var ensemble = await HybridEnsemble.TrainAsync(
    model, data, new TrainingOptions { Epochs = 150, LearningRate = 0.05, Dt = 0.25 }, members: 5, bootstrap: true);
var alpha = ensemble.Parameters["alpha"];                  // Mean, StandardDeviation
var prediction = ensemble.Predict(settings);               // Mean and StandardDeviation, as simulations
var calibration = HybridEnsemble.Calibrate(prediction, data); // coverage, ECE, CRPS, NLL
HybridEnsemble.WriteReliabilityPlot("reliability.svg", "LV", calibration);

// Plots: self-contained SVG line plots.
Plots.WriteSimulation("lv.svg", "Lotka–Volterra", run);
Plots.WriteLines("fit.svg", "prey", times,
    new Dictionary<string, double[]> { ["data"] = prey, ["fit"] = sim.Simulate(settings).Series("H") });
