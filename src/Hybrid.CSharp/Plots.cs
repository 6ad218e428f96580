using System.Globalization;
using System.Security;
using System.Text;

namespace Hybrid.CSharp;

/// <summary>Self-contained SVG line plots (no dependencies), e.g. of simulations against data.</summary>
public static class Plots
{
    private static readonly string[] Colours = { "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#000000" };

    private static string F(double v) => v.ToString("0.##", CultureInfo.InvariantCulture);

    /// <summary>
    /// Writes an SVG line plot of named series over a shared x axis to <paramref name="path"/> and returns the
    /// SVG text. NaN values leave gaps; axes span the finite values.
    /// </summary>
    /// <exception cref="ArgumentException">No series, or a series whose length differs from x.</exception>
    public static string WriteLines(string path, string title, double[] x, IReadOnlyDictionary<string, double[]> series)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(series);
        if (series.Count == 0)
            throw new ArgumentException("Plots.WriteLines: no series were given; give at least one name ↦ values.", nameof(series));
        foreach (var (name, values) in series)
            if (values is null || values.Length != x.Length)
                throw new ArgumentException($"Plots.WriteLines: series '{name}' has {values?.Length ?? 0} values but x has {x.Length}. Give one value per x (NaN for a gap).", nameof(series));
        const double w = 560, h = 340, m = 50;
        var ys = series.Values.SelectMany(v => v).Where(double.IsFinite).DefaultIfEmpty(0).ToArray();
        double x0 = x.Where(double.IsFinite).DefaultIfEmpty(0).Min(), x1 = x.Where(double.IsFinite).DefaultIfEmpty(1).Max();
        double y0 = ys.Min(), y1 = ys.Max();
        if (x1 <= x0) x1 = x0 + 1;
        if (y1 <= y0) y1 = y0 + 1;
        double Px(double v) => m + (w - 2 * m) * (v - x0) / (x1 - x0);
        double Py(double v) => h - m - (h - 2 * m) * (v - y0) / (y1 - y0);
        var svg = new StringBuilder();
        svg.Append($"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">");
        svg.Append("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>");
        svg.Append($"<text x=\"{m}\" y=\"22\" font-size=\"14\">{SecurityElement.Escape(title)}</text>");
        svg.Append($"<rect x=\"{m}\" y=\"{m}\" width=\"{w - 2 * m}\" height=\"{h - 2 * m}\" fill=\"none\" stroke=\"#999\"/>");
        svg.Append($"<text x=\"{m}\" y=\"{h - m + 16}\">{F(x0)}</text><text x=\"{w - m}\" y=\"{h - m + 16}\" text-anchor=\"end\">{F(x1)}</text>");
        svg.Append($"<text x=\"{m - 4}\" y=\"{h - m}\" text-anchor=\"end\">{F(y0)}</text><text x=\"{m - 4}\" y=\"{m + 10}\" text-anchor=\"end\">{F(y1)}</text>");
        var k = 0;
        foreach (var (name, values) in series)
        {
            var colour = Colours[k % Colours.Length];
            var run = new List<string>();
            void Flush()
            {
                if (run.Count > 0)
                    svg.Append($"<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{string.Join(" ", run)}\"/>");
                run.Clear();
            }

            for (var i = 0; i < x.Length; i++)
                if (double.IsFinite(values[i]) && double.IsFinite(x[i])) run.Add($"{F(Px(x[i]))},{F(Py(values[i]))}");
                else Flush();
            Flush();
            svg.Append($"<text x=\"{w - m - 4}\" y=\"{m + 16 * (k + 1)}\" text-anchor=\"end\" fill=\"{colour}\">{SecurityElement.Escape(name)}</text>");
            k++;
        }

        svg.Append("</svg>");
        var text = svg.ToString();
        var folder = Path.GetDirectoryName(Path.GetFullPath(path));
        if (folder is not null) Directory.CreateDirectory(folder);
        File.WriteAllText(path, text);
        return text;
    }

    /// <summary>Writes the time series of cell <paramref name="cell"/> of every field of a simulation (trajectory 0).</summary>
    public static string WriteSimulation(string path, string title, SimulationResult result, int cell = 0)
    {
        ArgumentNullException.ThrowIfNull(result);
        return WriteLines(path, title, result.Times, result.Fields.ToDictionary(f => f, f => result.Series(f, cell)));
    }
}
