using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using FuseSharp.Diagnostics;
using FuseSharp.Evaluation;
using FuseSharp.Fusion.Text;
using FuseSharp.IO;
using FuseSharp.Models;

namespace FuseSharp.Fusion.Recipes;

/// <summary>Held-out bits per byte of one model on one set.</summary>
/// <param name="Model">The model's name in the run (target, clm, fused, merged, a source).</param>
/// <param name="Role">What it is (before, causal-LM only, FuseLLM, source, ...).</param>
/// <param name="Set">The held-out set.</param>
/// <param name="BitsPerByte">Σ −log2 p over the scored tokens / UTF-8 bytes of the texts.</param>
/// <param name="Tokens">Tokens scored.</param>
/// <param name="Bytes">UTF-8 bytes of the set.</param>
public sealed record HeldOutScore(string Model, string Role, string Set, double BitsPerByte, long Tokens, long Bytes);

/// <summary>The evaluation of a recipe run: held-out bits per byte per model and set (tokenizer-independent, spec §18.5).</summary>
public sealed class RecipeResults
{
    public const string FileName = "results.json";

    public RecipeResults(IReadOnlyList<HeldOutScore> scores)
    {
        ArgumentNullException.ThrowIfNull(scores);
        Scores = scores;
    }

    public IReadOnlyList<HeldOutScore> Scores { get; }

    public IReadOnlyList<string> Sets => Scores.Select(s => s.Set).Distinct().ToList();

    public IReadOnlyList<string> Models => Scores.Select(s => s.Model).Distinct().ToList();

    /// <summary>Bits per byte of <paramref name="model"/> on <paramref name="set"/>.</summary>
    public double Get(string model, string set) => Scores.Single(s => s.Model == model && s.Set == set).BitsPerByte;

    /// <summary>The unweighted mean over the sets (each domain counts once, as spec §18.5 averages domains).</summary>
    public double Mean(string model) => Sets.Average(s => Get(model, s));

    /// <summary>A Markdown table: one row per model, one column per set, and the mean.</summary>
    public string Table()
    {
        var sb = new StringBuilder();
        var sets = Sets;
        sb.Append("| model | role | ").Append(string.Join(" | ", sets)).Append(" | mean |\n");
        sb.Append("|---|---|").Append(string.Concat(sets.Select(_ => "---:|"))).Append("---:|\n");
        foreach (var m in Models)
        {
            var role = Scores.First(s => s.Model == m).Role;
            sb.Append("| ").Append(m).Append(" | ").Append(role).Append(" | ");
            foreach (var s in sets) sb.Append(Get(m, s).ToString("0.0000", CultureInfo.InvariantCulture)).Append(" | ");
            sb.Append(Mean(m).ToString("0.0000", CultureInfo.InvariantCulture)).Append(" |\n");
        }
        sb.Append("\nHeld-out bits per UTF-8 byte (lower is better).\n");
        return sb.ToString();
    }

    /// <summary>
    /// Mean ± sample standard deviation over runs (e.g. seeds) of every model's bits per byte per set and of its mean
    /// over sets, as a Markdown table; models and sets as in the first run.
    /// </summary>
    public static string SummaryTable(IReadOnlyList<RecipeResults> runs)
    {
        ArgumentNullException.ThrowIfNull(runs);
        if (runs.Count == 0) throw new ArgumentException("no runs", nameof(runs));
        var first = runs[0];
        static string Stat(IReadOnlyList<double> xs)
        {
            double mean = xs.Average();
            double sd = xs.Count > 1 ? Math.Sqrt(xs.Sum(x => (x - mean) * (x - mean)) / (xs.Count - 1)) : double.NaN;
            return string.Create(CultureInfo.InvariantCulture, $"{mean:0.0000} ± {sd:0.0000}");
        }
        var sb = new StringBuilder();
        sb.Append("| model | role | ").Append(string.Join(" | ", first.Sets)).Append(" | mean |\n");
        sb.Append("|---|---|").Append(string.Concat(first.Sets.Select(_ => "---:|"))).Append("---:|\n");
        foreach (var m in first.Models)
        {
            var having = runs.Where(r => r.Models.Contains(m)).ToList();
            sb.Append("| ").Append(m).Append(" | ").Append(first.Scores.First(s => s.Model == m).Role).Append(" | ");
            foreach (var s in first.Sets) sb.Append(Stat(having.Select(r => r.Get(m, s)).ToList())).Append(" | ");
            sb.Append(Stat(having.Select(r => r.Mean(m)).ToList())).Append(" |\n");
        }
        sb.Append(CultureInfo.InvariantCulture, $"\nHeld-out bits per UTF-8 byte, mean ± sample std over {runs.Count} runs (lower is better).\n");
        return sb.ToString();
    }

    public void Save(string path)
    {
        var arr = new JsonArray(Scores.Select(s => (JsonNode?)new JsonObject
        {
            ["model"] = s.Model,
            ["role"] = s.Role,
            ["set"] = s.Set,
            ["bits_per_byte"] = s.BitsPerByte,
            ["tokens"] = s.Tokens,
            ["bytes"] = s.Bytes,
        }).ToArray());
        AtomicFile.WriteAllText(path, new JsonObject { ["scores"] = arr }.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }) + "\n");
    }

    public static RecipeResults Load(string path)
    {
        var root = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        return new RecipeResults(root["scores"]!.AsArray().Select(n => new HeldOutScore(
            n!["model"]!.GetValue<string>(), n["role"]!.GetValue<string>(), n["set"]!.GetValue<string>(),
            n["bits_per_byte"]!.GetValue<double>(), n["tokens"]!.GetValue<long>(), n["bytes"]!.GetValue<long>())).ToList());
    }
}

/// <summary>Scores a run's models on the held-out sets with the forward engine (sliding windows, <see cref="Perplexity"/>).</summary>
public static class RecipeEvaluation
{
    /// <summary>
    /// Loads each model with its own tokenizer and measures bits per byte on every set; then each ensemble (models
    /// sharing one tokenizer, scored by averaging their next-token probabilities, <see cref="Perplexity.EvaluateEnsemble(IReadOnlyList{TransformerModel}, FuseSharp.Tokenization.ITokenizer, IReadOnlyList{string}, int, int?, int, bool, IProgressReporter?, CancellationToken)"/>).
    /// </summary>
    /// <exception cref="FusionException">An ensemble's models do not share the first one's vocabulary.</exception>
    public static RecipeResults Run(IReadOnlyList<(string Name, string Path, string Role)> models, IReadOnlyList<HeldOutSet> sets, int blockSize,
        IProgressReporter? progress = null, CancellationToken cancel = default, IReadOnlyList<(string Name, IReadOnlyList<string> Paths, string Role)>? ensembles = null)
    {
        ArgumentNullException.ThrowIfNull(models);
        ArgumentNullException.ThrowIfNull(sets);
        var texts = sets.Select(s => (s.Name, Texts: ReadTexts(s))).ToList();
        var scores = new List<HeldOutScore>();
        var all = models.Select(m => (m.Name, Paths: (IReadOnlyList<string>)[m.Path], m.Role)).Concat(ensembles ?? []);
        foreach (var (name, paths, role) in all)
        {
            cancel.ThrowIfCancellationRequested();
            var tokenizer = FusionTokenizers.Load(paths[0]);
            var vocab = paths.Count > 1 ? tokenizer.GetVocab() : null;
            foreach (var other in paths.Skip(1))
            {
                var v = FusionTokenizers.Load(other).GetVocab();
                if (v.Count != vocab!.Count || vocab.Any(kv => !v.TryGetValue(kv.Key, out int id) || id != kv.Value))
                    throw new FusionException($"ensemble {name}: {other} has another vocabulary than {paths[0]}", "a probability-averaging ensemble needs models with one tokenizer");
            }
            var loaded = new List<TransformerModel>();
            try
            {
                foreach (var p in paths) loaded.Add(TransformerModel.Load(p));
                int block = Math.Min(blockSize, loaded.Min(m => m.Spec.MaxPositions));
                foreach (var (set, docs) in texts)
                {
                    // No special tokens: every model is scored on exactly the text's bytes.
                    var r = Perplexity.EvaluateEnsemble(loaded, tokenizer, docs, block, stride: block / 2, batchSize: 8, addSpecialTokens: false, progress: null, cancellation: cancel);
                    scores.Add(new HeldOutScore(name, role, set, r.BitsPerByte, r.ScoredTokens, r.Bytes));
                }
            }
            finally
            {
                foreach (var m in loaded) m.Dispose();
            }
            progress?.Message(string.Create(CultureInfo.InvariantCulture,
                $"  {name,-16} {string.Join("  ", scores.Where(s => s.Model == name).Select(s => $"{s.Set} {s.BitsPerByte:0.0000}"))}"));
        }
        return new RecipeResults(scores);
    }

    /// <summary>JSONL (one document per line, <see cref="HeldOutSet.TextField"/>) or plain text (the whole file is one document).</summary>
    public static IReadOnlyList<string> ReadTexts(HeldOutSet set)
    {
        ArgumentNullException.ThrowIfNull(set);
        if (!set.Path.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase)) return [File.ReadAllText(set.Path)];
        var list = FusionCorpus.Read(set.Path, CorpusFormat.Text, set.TextField).Select(r => r.Text!).Where(t => t.Length > 0).ToList();
        if (list.Count == 0) throw new FusionException($"{set.Path}: the held-out set is empty");
        return list;
    }
}
