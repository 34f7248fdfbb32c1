using System.Diagnostics;
using System.Globalization;
using FuseSharp.Diagnostics;

namespace FuseSharp.Cli;

/// <summary>
/// Progress bars on stderr. On a terminal one line is redrawn (at most 10 times a second) with count, rate and
/// ETA; when stderr is a file or pipe, a line is printed every 10 seconds and at the end, so logs stay short.
/// </summary>
internal sealed class ConsoleProgress : IProgressReporter
{
    private readonly object _lock = new();
    private readonly bool _interactive = !Console.IsErrorRedirected;
    private int _lineLength;

    public static readonly ConsoleProgress Instance = new();

    public IProgressTask Start(string description, long total, ProgressUnit unit = ProgressUnit.Items) => new Task(this, description, total, unit);

    public void Message(string text)
    {
        lock (_lock)
        {
            ClearLine();
            Console.Error.WriteLine(text);
        }
    }

    private void ClearLine()
    {
        if (_interactive && _lineLength > 0)
        {
            Console.Error.Write("\r" + new string(' ', _lineLength) + "\r");
            _lineLength = 0;
        }
    }

    private void Draw(string line, bool final)
    {
        lock (_lock)
        {
            if (_interactive)
            {
                ClearLine();
                Console.Error.Write(line);
                _lineLength = line.Length;
                if (final)
                {
                    Console.Error.WriteLine();
                    _lineLength = 0;
                }
            }
            else
            {
                Console.Error.WriteLine(line);
            }
        }
    }

    internal static string FormatAmount(double v, ProgressUnit unit) => unit switch
    {
        ProgressUnit.Bytes => FormatBytes(v),
        _ => v >= 1e6 ? (v / 1e6).ToString("0.0", CultureInfo.InvariantCulture) + "M" : v >= 1e4 ? (v / 1e3).ToString("0.0", CultureInfo.InvariantCulture) + "k" : v.ToString("0", CultureInfo.InvariantCulture),
    };

    internal static string FormatBytes(double b)
    {
        string[] units = ["B", "KiB", "MiB", "GiB", "TiB"];
        int u = 0;
        while (b >= 1024 && u < units.Length - 1) { b /= 1024; u++; }
        return b.ToString(u == 0 ? "0" : "0.0", CultureInfo.InvariantCulture) + " " + units[u];
    }

    private static string FormatTime(double seconds)
    {
        if (double.IsNaN(seconds) || double.IsInfinity(seconds)) return "?";
        var t = TimeSpan.FromSeconds(Math.Round(seconds));
        return t.TotalHours >= 1 ? t.ToString(@"h\:mm\:ss", CultureInfo.InvariantCulture) : t.ToString(@"m\:ss", CultureInfo.InvariantCulture);
    }

    private sealed class Task : IProgressTask
    {
        private readonly ConsoleProgress _owner;
        private readonly string _description;
        private readonly ProgressUnit _unit;
        private readonly Stopwatch _clock = Stopwatch.StartNew();
        private long _total;
        private long _done;
        private long _lastDrawTicks = long.MinValue;
        private bool _disposed;

        public Task(ConsoleProgress owner, string description, long total, ProgressUnit unit)
        {
            _owner = owner;
            _description = description;
            _total = total;
            _unit = unit;
        }

        public void Advance(long amount = 1)
        {
            Interlocked.Add(ref _done, amount);
            MaybeDraw();
        }

        public void SetCompleted(long completed)
        {
            Interlocked.Exchange(ref _done, completed);
            MaybeDraw();
        }

        public void SetTotal(long total) => Interlocked.Exchange(ref _total, total);

        private void MaybeDraw()
        {
            long now = _clock.ElapsedTicks;
            if (now < Stopwatch.Frequency) return; // work shorter than a second shows no bar
            long interval = Stopwatch.Frequency / (_owner._interactive ? 10 : 1) * (_owner._interactive ? 1 : 10);
            long last = Interlocked.Read(ref _lastDrawTicks);
            if (last != long.MinValue && now - last < interval) return;
            if (Interlocked.CompareExchange(ref _lastDrawTicks, now, last) != last) return;
            _owner.Draw(Render(), final: false);
        }

        private string Render()
        {
            long done = Interlocked.Read(ref _done), total = Interlocked.Read(ref _total);
            double secs = Math.Max(_clock.Elapsed.TotalSeconds, 1e-9);
            double rate = done / secs;
            string unitName = _unit switch { ProgressUnit.Bytes => "/s", ProgressUnit.Tokens => " tok/s", ProgressUnit.Steps => " steps/s", _ => "/s" };
            var rateText = _unit == ProgressUnit.Bytes ? FormatBytes(rate) + "/s" : FormatAmount(rate, _unit) + unitName;
            if (total > 0)
            {
                double frac = Math.Clamp((double)done / total, 0, 1);
                int width = 24, filled = (int)(frac * width);
                var bar = new string('#', filled) + new string('-', width - filled);
                double eta = done > 0 ? (total - done) / rate : double.NaN;
                return $"{_description} [{bar}] {frac * 100,5:0.0}% {FormatAmount(done, _unit)}/{FormatAmount(total, _unit)} {rateText} elapsed {FormatTime(secs)} eta {FormatTime(eta)}";
            }
            return $"{_description} {FormatAmount(done, _unit)} {rateText} elapsed {FormatTime(secs)}";
        }

        public void Dispose()
        {
            if (_disposed) return;
            _disposed = true;
            if (_clock.Elapsed.TotalSeconds >= 1) _owner.Draw(Render(), final: true);
        }
    }
}
