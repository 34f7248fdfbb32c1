using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using FuseSharp.IO;

namespace FuseSharp.Training;

/// <summary>One line of the training log.</summary>
/// <param name="Step">1-based optimizer step.</param>
/// <param name="Epoch">Passes over the data so far (fractional).</param>
/// <param name="Loss">The step's loss.</param>
/// <param name="ClmLoss">Its causal-LM part.</param>
/// <param name="FusionLoss">Its fusion part (null without teacher distributions).</param>
/// <param name="LearningRate">The rate the step used.</param>
/// <param name="GradNorm">Global gradient norm before clipping.</param>
/// <param name="Tokens">Real tokens in the step.</param>
/// <param name="TokensPerSecond">Throughput of the step.</param>
/// <param name="ElapsedSeconds">Wall time since the (resumed) run started.</param>
/// <param name="EvalLoss">Held-out loss, on steps where it was measured.</param>
public sealed record StepRecord(long Step, double Epoch, double Loss, double ClmLoss, double? FusionLoss, double LearningRate, double GradNorm,
    long Tokens, double TokensPerSecond, double ElapsedSeconds, double? EvalLoss = null)
{
    public string ToJsonLine()
    {
        var o = new JsonObject
        {
            ["step"] = Step,
            ["epoch"] = Math.Round(Epoch, 6),
            ["loss"] = Finite(Loss),
            ["loss_clm"] = Finite(ClmLoss),
        };
        if (FusionLoss is { } f) o["loss_fusion"] = Finite(f);
        o["lr"] = LearningRate;
        o["grad_norm"] = Finite(GradNorm);
        o["tokens"] = Tokens;
        o["tokens_per_s"] = Math.Round(TokensPerSecond, 1);
        o["elapsed_s"] = Math.Round(ElapsedSeconds, 3);
        if (EvalLoss is { } e) o["eval_loss"] = Finite(e);
        return o.ToJsonString();
    }

    /// <summary>Parses a line written by <see cref="ToJsonLine"/>; null for anything else.</summary>
    public static StepRecord? Parse(string line)
    {
        try
        {
            if (JsonNode.Parse(line) is not JsonObject o || o["step"] is null || o["loss"] is null) return null;
            static double D(JsonNode? n) => n is JsonValue v && v.TryGetValue<double>(out var d) ? d : double.NaN;
            return new StepRecord(o["step"]!.GetValue<long>(), D(o["epoch"]), D(o["loss"]), D(o["loss_clm"]), o["loss_fusion"] is null ? null : D(o["loss_fusion"]),
                D(o["lr"]), D(o["grad_norm"]), o["tokens"]?.GetValue<long>() ?? 0, D(o["tokens_per_s"]), D(o["elapsed_s"]), o["eval_loss"] is null ? null : D(o["eval_loss"]));
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
        {
            return null;
        }
    }

    private static JsonNode? Finite(double v) => double.IsFinite(v) ? JsonValue.Create(v) : JsonValue.Create(v.ToString(CultureInfo.InvariantCulture));
}

/// <summary>
/// The per-step log, <c>OUT/log.jsonl</c>: one JSON object per optimizer step, flushed as it is written (so it can
/// be followed while training). A resumed run first drops the lines past the step it resumes from, so the log reads
/// as one uninterrupted run.
/// </summary>
public sealed class TrainingLog : IDisposable
{
    public const string FileName = "log.jsonl";
    private readonly StreamWriter _writer;
    private readonly List<StepRecord> _records;

    private TrainingLog(string path, StreamWriter writer, List<StepRecord> records)
    {
        FilePath = path;
        _writer = writer;
        _records = records;
    }

    public string FilePath { get; }

    /// <summary>Every record of the run so far (earlier sessions included).</summary>
    public IReadOnlyList<StepRecord> Records => _records;

    /// <summary>Opens the log of <paramref name="outputDirectory"/>, keeping the records up to <paramref name="keepUpToStep"/> (0: a fresh log).</summary>
    public static TrainingLog Open(string outputDirectory, long keepUpToStep)
    {
        var path = Path.Combine(outputDirectory, FileName);
        var kept = new List<StepRecord>();
        if (keepUpToStep > 0 && File.Exists(path))
        {
            foreach (var line in File.ReadLines(path))
            {
                if (StepRecord.Parse(line) is { } r)
                {
                    if (r.Step <= keepUpToStep) kept.Add(r);
                }
                else if (EvalLine(line) is { } ev && ev.Step <= keepUpToStep && kept.FindLastIndex(k => k.Step == ev.Step) is var i and >= 0)
                {
                    kept[i] = kept[i] with { EvalLoss = ev.Loss };
                }
            }
        }
        var sb = new StringBuilder();
        foreach (var r in kept) sb.Append(r.ToJsonLine()).Append('\n');
        AtomicFile.WriteAllText(path, sb.ToString());
        var writer = new StreamWriter(new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.Read), new UTF8Encoding(false)) { NewLine = "\n" };
        return new TrainingLog(path, writer, kept);
    }

    public void Append(StepRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        _records.Add(record);
        _writer.WriteLine(record.ToJsonLine());
        _writer.Flush();
    }

    /// <summary>Attaches a held-out loss to the last record (and rewrites nothing: it is logged on its own line).</summary>
    public void AppendEval(long step, double evalLoss)
    {
        int i = _records.FindLastIndex(r => r.Step == step);
        if (i >= 0) _records[i] = _records[i] with { EvalLoss = evalLoss };
        var o = new JsonObject { ["step"] = step, ["eval_loss"] = double.IsFinite(evalLoss) ? evalLoss : null };
        _writer.WriteLine(o.ToJsonString());
        _writer.Flush();
    }

    private static (long Step, double Loss)? EvalLine(string line)
    {
        try
        {
            return JsonNode.Parse(line) is JsonObject o && o["step"] is JsonValue s && o["eval_loss"] is JsonValue e && e.TryGetValue<double>(out var d)
                ? (s.GetValue<long>(), d) : null;
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
        {
            return null;
        }
    }

    public void Dispose() => _writer.Dispose();
}
