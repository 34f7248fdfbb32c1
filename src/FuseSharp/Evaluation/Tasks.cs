using System.Globalization;
using System.Text.Json.Nodes;
using FuseSharp.Diagnostics;
using FuseSharp.IO;
using FuseSharp.Models;
using FuseSharp.Tokenization;

namespace FuseSharp.Evaluation;

/// <summary>What a task measures.</summary>
public enum TaskKind
{
    /// <summary>Pick the choice with the highest log-likelihood after a shared context (ARC, PIQA, COPA, ...).</summary>
    MultipleChoice,

    /// <summary>Pick the context (option) under which a shared continuation is most likely: partial scoring (Winogrande).</summary>
    Schema,

    /// <summary>Predict a continuation greedily (LAMBADA): accuracy is "every token is the argmax".</summary>
    LanguageModeling,
}

/// <summary>One example: scored (context, continuation) pairs and the index of the correct pair.</summary>
/// <param name="Contexts">Context of each candidate.</param>
/// <param name="Continuations">Continuation of each candidate (its text, without the delimiter).</param>
/// <param name="Gold">Index of the correct candidate.</param>
public sealed record TaskExample(IReadOnlyList<string> Contexts, IReadOnlyList<string> Continuations, int Gold);

/// <summary>
/// A log-likelihood task read from JSON lines in the formats of the llm-foundry / lm-evaluation-harness data:
/// multiple choice <c>{"query", "choices", "gold"}</c>; schema <c>{"context_options", "continuation", "gold"}</c>;
/// language modelling <c>{"context", "continuation"}</c>; and ARC-style <c>{"question", "options": [{"label",
/// "text"}], "answer"}</c> (turned into <c>"Question: …\nAnswer:"</c> with the option texts as choices, as
/// lm-evaluation-harness's arc tasks do). The format is detected per line.
/// </summary>
public sealed class TaskData
{
    private TaskData(string name, string path, TaskKind kind, IReadOnlyList<TaskExample> examples)
    {
        Name = name;
        Path = path;
        Kind = kind;
        Examples = examples;
    }

    public string Name { get; }

    public string Path { get; }

    public TaskKind Kind { get; }

    public IReadOnlyList<TaskExample> Examples { get; }

    /// <summary>
    /// Finds a task: <paramref name="nameOrPath"/> is a .jsonl file, or a name looked up as <c>NAME.jsonl</c>
    /// under <paramref name="dataDirectory"/> (recursively).
    /// </summary>
    /// <exception cref="FuseSharpException">Not found; the message lists the tasks available in the directory.</exception>
    public static string Resolve(string nameOrPath, string? dataDirectory)
    {
        ArgumentNullException.ThrowIfNull(nameOrPath);
        if (File.Exists(nameOrPath)) return nameOrPath;
        if (dataDirectory is not null && Directory.Exists(dataDirectory))
        {
            var hit = Directory.EnumerateFiles(dataDirectory, nameOrPath + ".jsonl", SearchOption.AllDirectories).Order(StringComparer.Ordinal).FirstOrDefault();
            if (hit is not null) return hit;
            var available = Directory.EnumerateFiles(dataDirectory, "*.jsonl", SearchOption.AllDirectories).Select(System.IO.Path.GetFileNameWithoutExtension).Order(StringComparer.Ordinal);
            throw new FuseSharpException($"task '{nameOrPath}' not found in {dataDirectory}", "available: " + string.Join(", ", available));
        }
        throw new FuseSharpException($"task '{nameOrPath}' is not a file", "give a .jsonl path, or --data-dir with NAME.jsonl files (e.g. llm-foundry's local_data)");
    }

    /// <summary>Reads a task file.</summary>
    /// <exception cref="FuseSharpException">A line is not JSON, has no known format, or mixes formats; the message names file and line.</exception>
    public static TaskData Load(string path, string? name = null, int? limit = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        var examples = new List<TaskExample>();
        TaskKind? kind = null;
        foreach (var (lineNo, o) in JsonLines.Read(path))
        {
            if (limit is { } l && examples.Count >= l) break;
            var (k, ex) = Parse(o, path, lineNo);
            if (kind is { } prev && prev != k) throw new FuseSharpException($"{path}:{lineNo}: a {k} example in a {prev} task", "one file holds one task format");
            kind = k;
            examples.Add(ex);
        }
        if (examples.Count == 0) throw new FuseSharpException($"{path}: no examples");
        return new TaskData(name ?? System.IO.Path.GetFileNameWithoutExtension(path), path, kind!.Value, examples);
    }

    private static (TaskKind, TaskExample) Parse(JsonObject o, string path, int line)
    {
        string Str(JsonNode? n, string key) => n is JsonValue v && v.TryGetValue<string>(out var s) ? s : throw Bad($"\"{key}\" must be a string");
        int Gold(int count)
        {
            int g = o["gold"] is JsonValue v && v.TryGetValue<int>(out var i) ? i : throw Bad("\"gold\" must be an integer");
            return g >= 0 && g < count ? g : throw Bad($"\"gold\" is {g}, outside the {count} candidates");
        }
        FuseSharpException Bad(string what, string? hint = null) => new($"{path}:{line}: {what}", hint);
        List<string> Strings(string key) => o[key] is JsonArray a && a.Count > 0 ? a.Select(x => Str(x, key)).ToList() : throw Bad($"\"{key}\" must be a non-empty list of strings");

        if (o.ContainsKey("query") && o.ContainsKey("choices"))
        {
            var choices = Strings("choices");
            var query = Str(o["query"], "query");
            return (TaskKind.MultipleChoice, new TaskExample(choices.Select(_ => query).ToList(), choices, Gold(choices.Count)));
        }
        if (o.ContainsKey("context_options"))
        {
            var options = Strings("context_options");
            var cont = Str(o["continuation"], "continuation");
            return (TaskKind.Schema, new TaskExample(options, options.Select(_ => cont).ToList(), Gold(options.Count)));
        }
        if (o.ContainsKey("context") && o.ContainsKey("continuation"))
            return (TaskKind.LanguageModeling, new TaskExample([Str(o["context"], "context")], [Str(o["continuation"], "continuation")], 0));
        if (o.ContainsKey("question") && o["options"] is JsonArray opts)
        {
            var labels = opts.Select(x => Str(x?["label"], "options[].label")).ToList();
            var texts = opts.Select(x => Str(x?["text"], "options[].text")).ToList();
            var answer = Str(o["answer"], "answer");
            int gold = labels.IndexOf(answer);
            if (gold < 0) throw Bad($"answer '{answer}' is not one of the option labels {string.Join(", ", labels)}");
            var ctx = $"Question: {Str(o["question"], "question")}\nAnswer:";
            return (TaskKind.MultipleChoice, new TaskExample(texts.Select(_ => ctx).ToList(), texts, gold));
        }
        throw Bad($"unknown task format (keys: {string.Join(", ", o.Select(p => p.Key))})",
            "log-likelihood formats read: {query, choices, gold} (multiple choice), {context_options, continuation, gold} (schema), " +
            "{context, continuation} (language modelling), {question, options: [{label, text}], answer} (ARC); generation tasks (free-form answers) are not scored here");
    }
}

/// <summary>How requests are built and scored.</summary>
public sealed record TaskOptions
{
    /// <summary>Inserted between context and continuation unless one side already has whitespace there (lm-evaluation-harness's target_delimiter).</summary>
    public string TargetDelimiter { get; init; } = " ";

    /// <summary>Prepend the tokenizer's special tokens (BOS) to every sequence (lm-evaluation-harness add_bos_token; off by default there).</summary>
    public bool AddSpecialTokens { get; init; }

    public int BatchSize { get; init; } = 8;

    /// <summary>Window in tokens (default: the model's maximum positions).</summary>
    public int? MaxLength { get; init; }
}

/// <summary>
/// Metrics of one task, as lm-evaluation-harness reports them: <c>acc</c> (argmax of the summed log-likelihood;
/// LM tasks: greedy match), <c>acc_norm</c> (multiple choice: argmax of log-likelihood divided by the choice's
/// length in characters), standard errors of the mean, and for LM tasks the perplexity exp(−mean log-likelihood).
/// <see cref="PerTokenAccuracy"/> is llm-foundry's multiple-choice accuracy (argmax of the mean log-likelihood per
/// continuation token); the two harnesses disagree here, so both are reported.
/// </summary>
public sealed record TaskResult(string Name, TaskKind Kind, int Count, double Accuracy, double AccuracyStderr,
    double? NormalizedAccuracy, double? NormalizedAccuracyStderr, double? Perplexity)
{
    /// <summary>llm-foundry's multiple-choice / schema accuracy: lowest mean per-token negative log-likelihood wins.</summary>
    public double? PerTokenAccuracy { get; init; }
}

/// <summary>Runs log-likelihood tasks.</summary>
public static class TaskEvaluator
{
    /// <summary>Scores every example of <paramref name="task"/>.</summary>
    public static TaskResult Evaluate(TransformerModel model, ITokenizer tokenizer, TaskData task, TaskOptions? options = null,
        IProgressReporter? progress = null, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(task);
        options ??= new TaskOptions();
        var requests = new List<LogLikelihoodRequest>();
        foreach (var ex in task.Examples)
            for (int i = 0; i < ex.Contexts.Count; i++)
                requests.Add(Encode(tokenizer, ex.Contexts[i], ex.Continuations[i], options));
        using var bar = (progress ?? NullProgress.Instance).Start(task.Name, requests.Count);
        var scores = LogLikelihood.Score(model, requests, options.BatchSize, options.MaxLength, bar, cancellation);

        var acc = new List<double>();
        var accNorm = new List<double>();
        var accToken = new List<double>();
        var lls = new List<double>();
        int r = 0;
        foreach (var ex in task.Examples)
        {
            var s = scores.AsSpan(r, ex.Contexts.Count).ToArray();
            r += ex.Contexts.Count;
            if (task.Kind == TaskKind.LanguageModeling)
            {
                acc.Add(s[0].IsGreedy ? 1 : 0);
                lls.Add(s[0].LogLikelihood);
                continue;
            }
            acc.Add(ArgMax(s.Select(x => x.LogLikelihood).ToArray()) == ex.Gold ? 1 : 0);
            accToken.Add(ArgMax(s.Select(x => x.LogLikelihood / x.Tokens).ToArray()) == ex.Gold ? 1 : 0);
            if (task.Kind == TaskKind.MultipleChoice)
                accNorm.Add(ArgMax(s.Select((x, i) => x.LogLikelihood / Math.Max(1, ex.Continuations[i].EnumerateRunes().Count())).ToArray()) == ex.Gold ? 1 : 0);
        }
        return new TaskResult(task.Name, task.Kind, task.Examples.Count, acc.Average(), Stderr(acc),
            accNorm.Count > 0 ? accNorm.Average() : null, accNorm.Count > 0 ? Stderr(accNorm) : null,
            lls.Count > 0 ? Math.Exp(-lls.Average()) : null)
        {
            PerTokenAccuracy = accToken.Count > 0 ? accToken.Average() : null,
        };
    }

    /// <summary>
    /// lm-evaluation-harness's <c>_encode_pair</c>: trailing whitespace of the context moves to the continuation, the
    /// whole string is encoded once, and the continuation is what follows the context's own encoding. An empty context
    /// becomes BOS (or EOS), as the harness's prefix token.
    /// </summary>
    public static LogLikelihoodRequest Encode(ITokenizer tokenizer, string context, string continuation, TaskOptions options)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(options);
        bool delimit = options.TargetDelimiter.Length > 0 && context.Length > 0 && !char.IsWhiteSpace(context[^1]) && (continuation.Length == 0 || !char.IsWhiteSpace(continuation[0]));
        if (delimit) continuation = options.TargetDelimiter + continuation;
        int spaces = context.Length - context.TrimEnd().Length;
        if (spaces > 0)
        {
            continuation = context[^spaces..] + continuation;
            context = context[..^spaces];
        }
        IReadOnlyList<int> ctx;
        List<int> cont;
        if (context.Length == 0)
        {
            int prefix = tokenizer.BosTokenId ?? tokenizer.EosTokenId ?? throw new FuseSharpException("an empty context needs a BOS or EOS token to condition on");
            ctx = [prefix];
            cont = tokenizer.Encode(continuation, addSpecialTokens: false).Ids.ToList();
        }
        else
        {
            var whole = tokenizer.Encode(context + continuation, options.AddSpecialTokens).Ids;
            ctx = tokenizer.Encode(context, options.AddSpecialTokens).Ids;
            cont = whole.Skip(ctx.Count).ToList();
        }
        if (cont.Count == 0) throw new FuseSharpException($"the continuation '{continuation}' encodes to no tokens");
        return new LogLikelihoodRequest(ctx, cont);
    }

    private static int ArgMax(double[] v)
    {
        int best = 0;
        for (int i = 1; i < v.Length; i++) if (v[i] > v[best]) best = i;
        return best;
    }

    private static double Stderr(List<double> x)
    {
        if (x.Count < 2) return double.NaN;
        double mean = x.Average();
        double var = x.Sum(v => (v - mean) * (v - mean)) / (x.Count - 1);
        return Math.Sqrt(var / x.Count);
    }

    /// <summary>Formats a result line for humans.</summary>
    public static string Describe(TaskResult r)
    {
        ArgumentNullException.ThrowIfNull(r);
        var inv = CultureInfo.InvariantCulture;
        var s = string.Create(inv, $"{r.Name,-20} n={r.Count,-6} acc {r.Accuracy:0.0000} ± {r.AccuracyStderr:0.0000}");
        if (r.NormalizedAccuracy is { } an) s += string.Create(inv, $"  acc_norm {an:0.0000} ± {r.NormalizedAccuracyStderr:0.0000}");
        if (r.PerTokenAccuracy is { } at) s += string.Create(inv, $"  acc_per_token {at:0.0000}");
        if (r.Perplexity is { } p) s += string.Create(inv, $"  perplexity {p:0.000}");
        return s;
    }
}
