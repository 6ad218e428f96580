using System.Globalization;

namespace Hybrid.CSharp;

/// <summary>Checks of the facade's arguments: each failure is an ArgumentException-family exception that names
/// the argument (as the caller wrote it), the value, why it is refused and the fix.</summary>
internal static class Argument
{
    internal static string Show(double value) => value.ToString("R", CultureInfo.InvariantCulture);

    /// <summary>A finite number (not NaN or ±∞).</summary>
    internal static double Finite(double value, string name, string example)
    {
        if (!double.IsFinite(value))
            throw new ArgumentOutOfRangeException(
                name, value, $"{name} must be a finite number, got {Show(value)}. Give a finite value, e.g. {example}.");
        return value;
    }

    /// <summary>A finite number ≥ <paramref name="min"/>.</summary>
    internal static double AtLeast(double value, double min, string name, string why)
    {
        if (!(value >= min) || double.IsInfinity(value))
            throw new ArgumentOutOfRangeException(
                name, value, $"{name} must be a finite number ≥ {Show(min)} ({why}), got {Show(value)}.");
        return value;
    }

    /// <summary>A finite number &gt; 0.</summary>
    internal static double Positive(double value, string name, string why)
    {
        if (!(value > 0) || double.IsInfinity(value))
            throw new ArgumentOutOfRangeException(name, value, $"{name} must be a finite number > 0 ({why}), got {Show(value)}.");
        return value;
    }

    /// <summary>An integer ≥ <paramref name="min"/>.</summary>
    internal static int AtLeast(int value, int min, string name, string why)
    {
        if (value < min)
            throw new ArgumentOutOfRangeException(name, value, $"{name} must be ≥ {min} ({why}), got {value}.");
        return value;
    }
}
