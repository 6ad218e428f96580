// Exponential decay du/dt = -k u, u(0) = 1, k = 0.5, through the C# facade from the Hybrid.CSharp package.
// The exact solution is u(t) = exp(-k t). RK4 with dt = 0.01 has a global error of about
// (k dt)^4 / 120 * k t ≈ 5e-12 at t = 2, so in double precision the simulated u(2) must match exp(-1)
// to 1e-9 (a wrong rate, scheme or save time misses by far more).
using Hybrid.CSharp;

HybridEngine.UseDoublePrecision(true);

var model = HybridModel.Builder("decay")
    .Field("u")
    .Parameter("k", positive: 0.5)
    .Equation("du/dt = -k*u")
    .Initial("u", 1)
    .Build();

var run = model.Compile().Simulate(new SimulationSettings { Dt = 0.01, SaveTimes = new[] { 1.0, 2.0 } });
var simulated = run.Series("u");
var exact = new[] { Math.Exp(-0.5), Math.Exp(-1.0) };

var failures = 0;
for (var i = 0; i < exact.Length; i++)
{
    var error = Math.Abs(simulated[i] - exact[i]);
    Console.WriteLine($"u({i + 1}) = {simulated[i]:R}, exact {exact[i]:R}, error {error:E1}");
    if (error > 1e-9)
    {
        Console.Error.WriteLine($"u({i + 1}) differs from exp(-{0.5 * (i + 1)}) by {error:E1} (allowed 1e-9).");
        failures++;
    }
}

return failures == 0 ? 0 : 1;
