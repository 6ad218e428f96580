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

    /// <summary>
    /// Writes an SVG of a simulation (trajectory 0) to <paramref name="path"/> and returns the SVG text. A 0-D or
    /// 1-D model gives the time series of every field (cell 0 of an interval; choose another with the overload
    /// that takes a cell). A rectangle gives heatmaps: one row per field, one panel per save time shown (the
    /// first, the middle and the last), every cell drawn (x to the right, y up) with its value in a
    /// <c>data-value</c> attribute, one colour scale per field with its range printed beside the row.
    /// </summary>
    public static string WriteSimulation(string path, string title, SimulationResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        return result.Shape.Length == 2 ? WriteHeatmaps(path, title, result) : WriteSimulation(path, title, result, 0);
    }

    /// <summary>Writes the time series of cell <paramref name="cell"/> of every field of a simulation (trajectory 0).</summary>
    public static string WriteSimulation(string path, string title, SimulationResult result, int cell)
    {
        ArgumentNullException.ThrowIfNull(result);
        return WriteLines(path, title, result.Times, result.Fields.ToDictionary(f => f, f => result.Series(f, cell)));
    }

    // Viridis at five stops, from the minimum to the maximum of a field.
    private static readonly (double R, double G, double B)[] Scale =
        { (68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37) };

    private static string Colour(double v, double lo, double hi)
    {
        if (!double.IsFinite(v)) return "#cccccc";
        var u = hi > lo ? Math.Clamp((v - lo) / (hi - lo), 0, 1) : 0.5;
        var k = Math.Min((int)(u * (Scale.Length - 1)), Scale.Length - 2);
        var f = u * (Scale.Length - 1) - k;
        int C(double a, double b) => (int)Math.Round(a + (b - a) * f);
        return $"#{C(Scale[k].R, Scale[k + 1].R):x2}{C(Scale[k].G, Scale[k + 1].G):x2}{C(Scale[k].B, Scale[k + 1].B):x2}";
    }

    /// <summary>The save indices shown: all when there are at most three, else the first, middle and last.</summary>
    private static int[] ShownSaves(int saves) =>
        saves <= 3 ? Enumerable.Range(0, saves).ToArray() : new[] { 0, (saves - 1) / 2, saves - 1 };

    private static string WriteHeatmaps(string path, string title, SimulationResult result)
    {
        int nx = result.Shape[0], ny = result.Shape[1];
        var saves = ShownSaves(result.Times.Length);
        const double panel = 200, gap = 30, m = 50, legend = 90;
        double cw = panel / Math.Max(nx, ny), pw = cw * nx, ph = cw * ny;
        double w = m + saves.Length * (pw + gap) + legend, h = m + result.Fields.Count * (ph + gap) + 10;
        var svg = new StringBuilder();
        svg.Append($"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{F(w)}\" height=\"{F(h)}\" font-family=\"sans-serif\" font-size=\"12\">");
        svg.Append("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>");
        svg.Append($"<text x=\"{m}\" y=\"22\" font-size=\"14\">{SecurityElement.Escape(title)}</text>");
        for (var r = 0; r < result.Fields.Count; r++)
        {
            var field = result.Fields[r];
            var snapshots = saves.Select(s => result.At(field, s)).ToArray();
            var finite = snapshots.SelectMany(v => v).Where(double.IsFinite).DefaultIfEmpty(0).ToArray();
            double lo = finite.Min(), hi = finite.Max();
            var top = m + r * (ph + gap);
            for (var c = 0; c < saves.Length; c++)
            {
                var left = m + c * (pw + gap);
                var time = result.Times[saves[c]].ToString("G4", CultureInfo.InvariantCulture);
                svg.Append($"<text x=\"{F(left)}\" y=\"{F(top - 6)}\">{SecurityElement.Escape(field)}, t = {time}</text>");
                var values = snapshots[c];
                for (var i = 0; i < nx; i++)
                for (var j = 0; j < ny; j++)
                {
                    var v = values[i * ny + j];
                    svg.Append($"<rect class=\"cell\" data-field=\"{SecurityElement.Escape(field)}\" data-save=\"{saves[c]}\" data-i=\"{i}\" data-j=\"{j}\" ");
                    svg.Append($"data-value=\"{v.ToString("R", CultureInfo.InvariantCulture)}\" x=\"{F(left + i * cw)}\" y=\"{F(top + (ny - 1 - j) * cw)}\" ");
                    svg.Append($"width=\"{F(cw)}\" height=\"{F(cw)}\" fill=\"{Colour(v, lo, hi)}\"/>");
                }
            }

            // The colour bar: 20 steps from the maximum (top) to the minimum (bottom).
            var lx = m + saves.Length * (pw + gap);
            const int steps = 20;
            for (var k = 0; k < steps; k++)
            {
                var v = hi - (hi - lo) * (k + 0.5) / steps;
                svg.Append($"<rect x=\"{F(lx)}\" y=\"{F(top + k * ph / steps)}\" width=\"12\" height=\"{F(ph / steps + 0.5)}\" fill=\"{Colour(v, lo, hi)}\"/>");
            }

            svg.Append($"<text x=\"{F(lx + 16)}\" y=\"{F(top + 10)}\">{hi.ToString("G4", CultureInfo.InvariantCulture)}</text>");
            svg.Append($"<text x=\"{F(lx + 16)}\" y=\"{F(top + ph)}\">{lo.ToString("G4", CultureInfo.InvariantCulture)}</text>");
        }

        svg.Append("</svg>");
        var text = svg.ToString();
        var folder = Path.GetDirectoryName(Path.GetFullPath(path));
        if (folder is not null) Directory.CreateDirectory(folder);
        File.WriteAllText(path, text);
        return text;
    }
}
