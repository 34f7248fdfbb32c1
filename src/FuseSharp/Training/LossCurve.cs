using System.Globalization;
using System.Text;
using FuseSharp.IO;

namespace FuseSharp.Training;

/// <summary>
/// Draws the training loss as a standalone SVG (<c>OUT/loss.svg</c>): the per-step loss (light), its exponential
/// moving average (dark, smoothing 0.9 as TensorBoard's default), and held-out losses as points. Long runs are
/// reduced to at most 2000 plotted points (means of consecutive steps).
/// </summary>
public static class LossCurve
{
    public const string FileName = "loss.svg";
    private const int Width = 800, Height = 450, Left = 70, Right = 20, Top = 40, Bottom = 50;
    private const int MaxPoints = 2000;

    /// <summary>Writes the curve of <paramref name="records"/> to <paramref name="path"/> (atomically).</summary>
    public static void Write(string path, IReadOnlyList<StepRecord> records, string title = "training loss") =>
        AtomicFile.WriteAllText(path, Render(records, title));

    /// <summary>The SVG document.</summary>
    public static string Render(IReadOnlyList<StepRecord> records, string title = "training loss")
    {
        ArgumentNullException.ThrowIfNull(records);
        var train = records.Where(r => double.IsFinite(r.Loss)).Select(r => (X: (double)r.Step, Y: r.Loss)).ToList();
        var eval = records.Where(r => r.EvalLoss is { } e && double.IsFinite(e)).Select(r => (X: (double)r.Step, Y: r.EvalLoss!.Value)).ToList();
        var sb = new StringBuilder();
        sb.Append(Inv($"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{Width}\" height=\"{Height}\" viewBox=\"0 0 {Width} {Height}\" font-family=\"sans-serif\" font-size=\"12\">\n"));
        sb.Append(Inv($"<rect width=\"{Width}\" height=\"{Height}\" fill=\"white\"/>\n"));
        sb.Append(Inv($"<text x=\"{Width / 2}\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">{Escape(title)}</text>\n"));
        if (train.Count == 0 && eval.Count == 0)
        {
            sb.Append(Inv($"<text x=\"{Width / 2}\" y=\"{Height / 2}\" text-anchor=\"middle\" fill=\"#888\">no steps yet</text>\n</svg>\n"));
            return sb.ToString();
        }
        var all = train.Concat(eval).ToList();
        double x0 = all.Min(p => p.X), x1 = all.Max(p => p.X);
        double y0 = all.Min(p => p.Y), y1 = all.Max(p => p.Y);
        if (x1 <= x0) x1 = x0 + 1;
        if (y1 - y0 < 1e-9) { y0 -= 0.5; y1 += 0.5; }
        double pad = (y1 - y0) * 0.05;
        y0 -= pad;
        y1 += pad;
        double plotW = Width - Left - Right, plotH = Height - Top - Bottom;
        double Sx(double x) => Left + (x - x0) / (x1 - x0) * plotW;
        double Sy(double y) => Top + (y1 - y) / (y1 - y0) * plotH;

        // Axes, grid and ticks.
        sb.Append(Inv($"<g stroke=\"#ddd\" stroke-width=\"1\">\n"));
        foreach (var t in Ticks(y0, y1, 6)) sb.Append(Inv($"<line x1=\"{Left}\" y1=\"{Sy(t):0.##}\" x2=\"{Width - Right}\" y2=\"{Sy(t):0.##}\"/>\n"));
        foreach (var t in Ticks(x0, x1, 8)) sb.Append(Inv($"<line x1=\"{Sx(t):0.##}\" y1=\"{Top}\" x2=\"{Sx(t):0.##}\" y2=\"{Height - Bottom}\"/>\n"));
        sb.Append("</g>\n");
        sb.Append(Inv($"<rect x=\"{Left}\" y=\"{Top}\" width=\"{plotW}\" height=\"{plotH}\" fill=\"none\" stroke=\"#333\"/>\n"));
        foreach (var t in Ticks(y0, y1, 6)) sb.Append(Inv($"<text x=\"{Left - 6}\" y=\"{Sy(t) + 4:0.##}\" text-anchor=\"end\">{Label(t)}</text>\n"));
        foreach (var t in Ticks(x0, x1, 8)) sb.Append(Inv($"<text x=\"{Sx(t):0.##}\" y=\"{Height - Bottom + 18}\" text-anchor=\"middle\">{Label(t)}</text>\n"));
        sb.Append(Inv($"<text x=\"{Left + plotW / 2}\" y=\"{Height - 10}\" text-anchor=\"middle\">step</text>\n"));
        sb.Append(Inv($"<text x=\"16\" y=\"{Top + plotH / 2}\" text-anchor=\"middle\" transform=\"rotate(-90 16 {Top + plotH / 2})\">loss</text>\n"));

        if (train.Count > 0)
        {
            var raw = Reduce(train);
            sb.Append("<polyline fill=\"none\" stroke=\"#9ecae1\" stroke-width=\"1\" points=\"");
            foreach (var (x, y) in raw) sb.Append(Inv($"{Sx(x):0.##},{Sy(y):0.##} "));
            sb.Append("\"/>\n");
            var smooth = new List<(double, double)>(train.Count);
            double ema = train[0].Y;
            foreach (var (x, y) in train)
            {
                ema = 0.9 * ema + 0.1 * y;
                smooth.Add((x, ema));
            }
            sb.Append("<polyline fill=\"none\" stroke=\"#08519c\" stroke-width=\"2\" points=\"");
            foreach (var (x, y) in Reduce(smooth)) sb.Append(Inv($"{Sx(x):0.##},{Sy(y):0.##} "));
            sb.Append("\"/>\n");
        }
        if (eval.Count > 0)
        {
            sb.Append("<polyline fill=\"none\" stroke=\"#e6550d\" stroke-width=\"1.5\" stroke-dasharray=\"4 3\" points=\"");
            foreach (var (x, y) in eval) sb.Append(Inv($"{Sx(x):0.##},{Sy(y):0.##} "));
            sb.Append("\"/>\n");
            foreach (var (x, y) in eval) sb.Append(Inv($"<circle cx=\"{Sx(x):0.##}\" cy=\"{Sy(y):0.##}\" r=\"3\" fill=\"#e6550d\"/>\n"));
        }
        // Legend.
        int lx = Width - Right - 190, ly = Top + 12;
        sb.Append(Inv($"<g font-size=\"11\"><line x1=\"{lx}\" y1=\"{ly}\" x2=\"{lx + 20}\" y2=\"{ly}\" stroke=\"#9ecae1\"/><text x=\"{lx + 26}\" y=\"{ly + 4}\">loss per step</text>\n"));
        sb.Append(Inv($"<line x1=\"{lx}\" y1=\"{ly + 16}\" x2=\"{lx + 20}\" y2=\"{ly + 16}\" stroke=\"#08519c\" stroke-width=\"2\"/><text x=\"{lx + 26}\" y=\"{ly + 20}\">moving average (0.9)</text>\n"));
        if (eval.Count > 0)
            sb.Append(Inv($"<circle cx=\"{lx + 10}\" cy=\"{ly + 32}\" r=\"3\" fill=\"#e6550d\"/><text x=\"{lx + 26}\" y=\"{ly + 36}\">held-out loss</text>\n"));
        sb.Append("</g>\n</svg>\n");
        return sb.ToString();
    }

    private static List<(double X, double Y)> Reduce(List<(double X, double Y)> points)
    {
        if (points.Count <= MaxPoints) return points;
        var r = new List<(double, double)>(MaxPoints);
        for (int b = 0; b < MaxPoints; b++)
        {
            int s = (int)((long)points.Count * b / MaxPoints), e = (int)((long)points.Count * (b + 1) / MaxPoints);
            double sx = 0, sy = 0;
            for (int i = s; i < e; i++) { sx += points[i].X; sy += points[i].Y; }
            r.Add((sx / (e - s), sy / (e - s)));
        }
        return r;
    }

    /// <summary>About <paramref name="count"/> round tick values (1, 2 or 5 times a power of ten) within [lo, hi].</summary>
    internal static IEnumerable<double> Ticks(double lo, double hi, int count)
    {
        double raw = (hi - lo) / Math.Max(1, count);
        double mag = Math.Pow(10, Math.Floor(Math.Log10(raw)));
        double step = new[] { 1.0, 2.0, 5.0, 10.0 }.Select(m => m * mag).First(s => s >= raw);
        for (double t = Math.Ceiling(lo / step) * step; t <= hi + step * 1e-9; t += step) yield return Math.Abs(t) < step * 1e-9 ? 0 : t;
    }

    private static string Label(double v) => Math.Abs(v) >= 1e4 || (Math.Abs(v) < 1e-3 && v != 0)
        ? v.ToString("0.##E0", CultureInfo.InvariantCulture) : v.ToString("0.###", CultureInfo.InvariantCulture);

    private static string Inv(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);

    private static string Escape(string s) => s.Replace("&", "&amp;", StringComparison.Ordinal).Replace("<", "&lt;", StringComparison.Ordinal).Replace(">", "&gt;", StringComparison.Ordinal);
}
