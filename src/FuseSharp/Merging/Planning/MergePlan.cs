using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using FuseSharp.IO;
using FuseSharp.Merging.Config;
using FuseSharp.Merging.Methods;
using FuseSharp.Tensors;

namespace FuseSharp.Merging.Planning;

/// <summary>What the output folder's tokenizer is and where its files come from.</summary>
public sealed record TokenizerOutput
{
    /// <summary>The folder whose tokenizer files are copied, or null for none.</summary>
    public string? DonorFolder { get; init; }

    /// <summary>Replacement tokenizer files (name → content) written instead of the donor's, e.g. a stripped tokenizer.json.</summary>
    public IReadOnlyDictionary<string, string> Rewritten { get; init; } = new Dictionary<string, string>();

    /// <summary>Rows of the output embeddings when a tokenizer was built or aligned (written as vocab_size), else null.</summary>
    public int? VocabSize { get; init; }

    /// <summary>How the tokenizer was chosen (for the report).</summary>
    public string Description { get; init; } = "";
}

/// <summary>
/// A merge fully planned before any weight is read: every output tensor with its inputs, views and resolved
/// parameters (<see cref="Tasks"/>), the output config.json, the tokenizer source, and the predicted cost.
/// Holds the opened input models (headers only); dispose it to close them.
/// </summary>
public sealed class MergePlan : IDisposable
{
    /// <summary>Process memory not counted elsewhere: the .NET runtime, JIT, config and plan objects.</summary>
    public const long BaselineBytes = 96L << 20;

    public required MergeConfiguration Config { get; init; }

    public required IMergeMethod Method { get; init; }

    public required IReadOnlyList<InputModel> Models { get; init; }

    public required IReadOnlyList<TensorTask> Tasks { get; init; }

    /// <summary>config.json of the output.</summary>
    public required JsonObject OutputConfig { get; init; }

    /// <summary>The model whose config and extra files the output takes.</summary>
    public required InputModel Donor { get; init; }

    public required TokenizerOutput Tokenizer { get; init; }

    /// <summary>The chat template to write into tokenizer_config.json, or null to keep the donor's.</summary>
    public string? ChatTemplate { get; init; }

    public required int OutputLayers { get; init; }

    public required MergeOptions Options { get; init; }

    /// <summary>Notes and warnings from planning (ignored parameters, embedding cuts, ...).</summary>
    public required IReadOnlyList<string> Warnings { get; init; }

    /// <summary>Per-model weights computed from data before planning (LM-Cocktail), or null.</summary>
    public IReadOnlyList<double>? DataWeights { get; init; }

    /// <summary>Input bytes the merge reads (each input tensor once).</summary>
    public long BytesToRead => Tasks.Sum(t => t.AllInputs.Sum(i => i.Source.Count * StoredSize(i.Source)));

    public long BytesToWrite => Tasks.Sum(t => t.OutputBytes);

    /// <summary>The largest method workspace of any tensor.</summary>
    public long MaxWorkspaceBytes => Tasks.Count == 0 ? 0 : Tasks.Max(t => t.CopyOnly ? 0 : Method.WorkspaceBytes(t));

    /// <summary>
    /// Predicted peak of the process's anonymous memory (input files are mapped and output written through the
    /// page cache, so neither counts): the runtime baseline, per-thread chunk buffers, and the largest
    /// per-tensor workspace (tensors run one at a time, each parallel inside).
    /// </summary>
    public long PredictedPeakBytes(int threads)
    {
        int maxInputs = Tasks.Count == 0 ? 0 : Tasks.Max(t => t.Inputs.Count + 1);
        long longestRow = Tasks.Count == 0 ? 0 : Tasks.Max(t => t.Shape.Rank == 0 ? 1 : t.Shape[t.Shape.Rank - 1]);
        long perBuffer = Math.Max(Kernels.Chunked.Size, Math.Min(longestRow, 1L << 24)) * 4;
        long scratch = (long)threads * (maxInputs + 6) * perBuffer;
        return BaselineBytes + scratch + MaxWorkspaceBytes;
    }

    private static long StoredSize(TensorSource s) => s switch
    {
        StoredTensorSource st => st.DType.Size(),
        RowMappedSource rm => rm.Inner.DType.Size(),
        _ => 4,
    };

    /// <summary>The --dry-run text: models, method, tensors, bytes and predicted memory.</summary>
    public string Describe(int threads, bool listTensors = false)
    {
        var sb = new StringBuilder();
        var inv = CultureInfo.InvariantCulture;
        sb.AppendLine(inv, $"merge method: {Method.Name} ({Method.PrettyName}){(Method.Reference is null ? "" : " " + Method.Reference)}");
        sb.AppendLine(inv, $"models ({Models.Count}):");
        foreach (var m in Models)
            sb.AppendLine(inv, $"  [{m.Index}] {m.Name}{(m.Path != m.Name ? $" -> {m.Path}" : "")}: {m.Weights.Tensors.Count} tensors, {m.LayerCount} layers, {Bytes(m.Weights.TotalBytes)}");
        sb.AppendLine(inv, $"output: {Tasks.Count} tensors, {OutputLayers} layers, dtype {string.Join("/", Tasks.Select(t => t.OutputDType.TorchName()).Distinct())}, {Tokenizer.Description}");
        sb.AppendLine(inv, $"read:  {Bytes(BytesToRead)}");
        sb.AppendLine(inv, $"write: {Bytes(BytesToWrite)} in {Math.Max(1, (int)Math.Ceiling((double)BytesToWrite / Options.OutShardBytes))} shard(s) of at most {Bytes(Options.OutShardBytes)}");
        sb.AppendLine(inv, $"predicted peak memory: {Bytes(PredictedPeakBytes(threads))} ({threads} threads; largest tensor workspace {Bytes(MaxWorkspaceBytes)}; inputs are memory-mapped, not counted)");
        foreach (var w in Warnings) sb.AppendLine(inv, $"note: {w}");
        if (listTensors)
        {
            foreach (var t in Tasks)
            {
                sb.Append(inv, $"  {t.Name} {t.Shape} {t.OutputDType.SafetensorsName()}");
                if (t.CopyOnly) sb.Append(" copy");
                else
                {
                    sb.Append(inv, $" t={t.T:0.###} <- ");
                    sb.Append(string.Join(", ", t.AllInputs.Select(i => (i == t.Base ? "base " : "") + i.ModelName + (i.Parameters.Values.Count > 0 ? $" ({i.Parameters})" : ""))));
                    if (t.Parameters.Values.Count > 0) sb.Append(inv, $" [{t.Parameters}]");
                }
                sb.AppendLine();
            }
        }
        return sb.ToString();
    }

    /// <summary>Human-readable bytes (decimal units, as disk sizes are usually quoted).</summary>
    public static string Bytes(long b) => b switch
    {
        >= 1_000_000_000 => (b / 1e9).ToString("0.00", CultureInfo.InvariantCulture) + " GB",
        >= 1_000_000 => (b / 1e6).ToString("0.0", CultureInfo.InvariantCulture) + " MB",
        >= 1_000 => (b / 1e3).ToString("0.0", CultureInfo.InvariantCulture) + " kB",
        _ => b.ToString(CultureInfo.InvariantCulture) + " B",
    };

    public void Dispose()
    {
        foreach (var m in Models) m.Dispose();
    }
}
