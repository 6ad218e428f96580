using Hybrid.Training;
using static TorchSharp.torch;

namespace Hybrid.CSharp;

/// <summary>
/// Observed trajectory for training: save times and, for each observed field, its values at those times
/// ([time][cell], one cell for a 0-D model). NaN marks a missing value. Fields left out are not observed.
/// </summary>
public sealed class TrainingData
{
    /// <summary>Creates the data set; the arrays are copied.</summary>
    /// <param name="times">Observation times: finite and strictly increasing, ≥ the start time of the simulation.</param>
    /// <param name="observations">Per observed field: one array of cell values per time (NaN = missing).</param>
    /// <exception cref="ArgumentNullException">An argument, a field's array or one of its snapshots is null.</exception>
    /// <exception cref="ArgumentException">No times or no fields, a time that is not finite or not above the one
    /// before it, a field with the wrong number of snapshots, or an infinite value.</exception>
    public TrainingData(double[] times, IReadOnlyDictionary<string, double[][]> observations)
    {
        ArgumentNullException.ThrowIfNull(times);
        ArgumentNullException.ThrowIfNull(observations);
        if (times.Length == 0)
            throw new ArgumentException("TrainingData: times is empty; give at least one observation time.", nameof(times));
        if (observations.Count == 0)
            throw new ArgumentException("TrainingData: observations is empty; give at least one observed field.", nameof(observations));
        for (var i = 0; i < times.Length; i++)
        {
            if (!double.IsFinite(times[i]))
                throw new ArgumentOutOfRangeException(
                    nameof(times), times[i], $"TrainingData: times[{i}] is {Argument.Show(times[i])}; every time must be a finite number. Remove the row or give its time.");
            if (i > 0 && !(times[i] > times[i - 1]))
                throw new ArgumentException(
                    $"TrainingData: times must increase, but times[{i}] = {Argument.Show(times[i])} follows times[{i - 1}] = {Argument.Show(times[i - 1])}. Sort the observations by time, with each time once.",
                    nameof(times));
        }

        foreach (var (field, values) in observations)
        {
            if (values is null)
                throw new ArgumentNullException(nameof(observations), $"TrainingData: the snapshots of field '{field}' are null; give one array of cell values per time.");
            if (values.Length != times.Length)
                throw new ArgumentException(
                    $"TrainingData: field '{field}' has {values.Length} snapshots but there are {times.Length} times. Give one snapshot per time (NaN for a missing value).",
                    nameof(observations));
            for (var s = 0; s < values.Length; s++)
            {
                if (values[s] is null)
                    throw new ArgumentNullException(
                        nameof(observations),
                        $"TrainingData: the snapshot of field '{field}' at time {Argument.Show(times[s])} (index {s}) is null. Give its cell values, with NaN where a value is missing.");
                var k = Array.FindIndex(values[s], double.IsInfinity);
                if (k >= 0)
                    throw new ArgumentException(
                        $"TrainingData: field '{field}' at time {Argument.Show(times[s])}, cell {k}, is {Argument.Show(values[s][k])}. Infinity is not a measurement: give a finite value, or NaN for a missing one.",
                        nameof(observations));
            }
        }

        Times = (double[])times.Clone();
        Observations = observations.ToDictionary(kv => kv.Key, kv => kv.Value.Select(v => (double[])v.Clone()).ToArray());
    }

    /// <summary>Observation times.</summary>
    public double[] Times { get; }

    /// <summary>Observed values per field: [time][cell].</summary>
    public IReadOnlyDictionary<string, double[][]> Observations { get; }

    /// <summary>Every field of a simulation result (trajectory 0) as training data, e.g. for synthetic experiments.</summary>
    public static TrainingData FromSimulation(SimulationResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        return new TrainingData(result.Times, result.Fields.ToDictionary(f => f, f => result.Values(f)));
    }

    /// <summary>
    /// A time series of a 0-D model read from a CSV file (header row, comma-separated, '#' comments; empty,
    /// <c>NA</c>, <c>N/A</c> and <c>#N/A</c> cells are missing): the <paramref name="timeColumn"/> gives the times
    /// (present, finite, increasing) and each entry of <paramref name="fieldColumns"/> maps a model field to the
    /// column holding its observations.
    /// </summary>
    /// <param name="path">The CSV file.</param>
    /// <param name="timeColumn">Name of the time column, e.g. <c>"Year"</c>.</param>
    /// <param name="fieldColumns">Model field ↦ column name, e.g. <c>{ ["H"] = "Hare", ["L"] = "Lynx" }</c>.</param>
    /// <exception cref="ArgumentException">No field columns.</exception>
    /// <exception cref="Hybrid.HybridException">The file is missing or malformed, a column is missing, a time is
    /// missing or out of order, or a value is not a number; the message names the file, row and column.</exception>
    public static TrainingData FromCsv(string path, string timeColumn, IReadOnlyDictionary<string, string> fieldColumns)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(timeColumn);
        ArgumentNullException.ThrowIfNull(fieldColumns);
        if (fieldColumns.Count == 0)
            throw new ArgumentException(
                "TrainingData.FromCsv: fieldColumns is empty; map at least one model field to a column, e.g. new Dictionary<string, string> { [\"H\"] = \"Hare\" }.",
                nameof(fieldColumns));
        HybridEngine.Initialize();
        var fields = fieldColumns.Keys.ToArray();
        var columns = fields.Select(f => fieldColumns[f] ?? throw new ArgumentNullException(nameof(fieldColumns), $"The column of field '{f}' is null.")).ToArray();
        return TorchThread.Run(() =>
        {
            var table = Data.readCsv(path);
            using var scope = NewDisposeScope();
            var (times, values) = Data.timeSeries(table, timeColumn, columns, ScalarType.Float64);
            var flat = HybridSimulator.ToArray(values); // [T; fields] row-major
            var observations = new Dictionary<string, double[][]>();
            for (var f = 0; f < fields.Length; f++)
                observations[fields[f]] = Enumerable.Range(0, times.Length).Select(r => new[] { flat[r * fields.Length + f] }).ToArray();
            return new TrainingData(times, observations);
        });
    }

    /// <summary>As <see cref="FromCsv(string, string, IReadOnlyDictionary{string, string})"/>, with each field read
    /// from the column of the same name.</summary>
    public static TrainingData FromCsv(string path, string timeColumn, params string[] fields)
    {
        ArgumentNullException.ThrowIfNull(fields);
        return FromCsv(path, timeColumn, fields.ToDictionary(f => f ?? throw new ArgumentNullException(nameof(fields)), f => f));
    }
}
