using System.Diagnostics;
using System.Globalization;

namespace FuseSharp.Bench;

/// <summary>Timing helpers shared by the suites: best-of-N wall time (the least disturbed run on a noisy machine).</summary>
internal static class BenchUtil
{
    /// <summary>Runs <paramref name="body"/> <paramref name="repeats"/> times after one warm-up and returns the fastest time in seconds.</summary>
    public static double BestOf(int repeats, Action body)
    {
        body();
        double best = double.MaxValue;
        for (int i = 0; i < repeats; i++)
        {
            var sw = Stopwatch.StartNew();
            body();
            best = Math.Min(best, sw.Elapsed.TotalSeconds);
        }
        return best;
    }

    public static string Gb(double bytesPerSecond) => (bytesPerSecond / 1e9).ToString("0.00", CultureInfo.InvariantCulture) + " GB/s";

    public static string F(double v, string format = "0.00") => v.ToString(format, CultureInfo.InvariantCulture);

    /// <summary>Prints "name: value (ratio x of baseline, target)" with PASS/MISS against the target.</summary>
    public static void Ratio(string what, double ratio, string comparison, double target)
    {
        var verdict = comparison == ">=" ? ratio >= target : ratio <= target;
        Console.WriteLine($"  RATIO {what}: {F(ratio)} (target {comparison} {F(target)}) {(verdict ? "PASS" : "MISS")}");
    }
}
