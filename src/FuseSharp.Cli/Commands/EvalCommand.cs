using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using FuseSharp.Evaluation;
using FuseSharp.IO;

namespace FuseSharp.Cli.Commands;

/// <summary>
/// <c>fusesharp eval perplexity --model DIR --data FILE [--block-size N]</c> (perplexity and bits per byte, sliding
/// window) and <c>fusesharp eval tasks --model DIR --tasks NAMES</c> (multiple-choice / LM log-likelihood tasks,
/// acc and acc_norm as lm-evaluation-harness reports them).
/// </summary>
internal static class EvalCommand
{
    public static Command Create()
    {
        var cmd = new Command("eval", "Evaluate a model: perplexity / bits per byte, or log-likelihood tasks.");
        cmd.Subcommands.Add(Perplexity());
        cmd.Subcommands.Add(Tasks());
        return cmd;
    }

    private static Command Perplexity()
    {
        var model = new Option<string>("--model") { Description = "Model folder.", Required = true };
        var data = new Option<string>("--data") { Description = "A text file (one document), or JSON lines with \"text\" (or \"input_ids\") per document.", Required = true };
        var block = new Option<int?>("--block-size") { Description = "Window in tokens (default: min(max positions, 2048))." };
        var stride = new Option<int?>("--stride") { Description = "Step between windows (default: block size / 2; equal to block size for disjoint blocks)." };
        var batch = new Option<int>("--batch-size") { Description = "Windows per forward (default 4).", DefaultValueFactory = _ => 4 };
        var noSpecial = new Option<bool>("--no-special-tokens") { Description = "Do not add the tokenizer's special tokens (BOS) to each document." };
        var json = new Option<bool>("--json") { Description = "Print the result as JSON." };
        var cmd = new Command("perplexity", "Perplexity and bits per byte of a text file (sliding window).") { model, data, block, stride, batch, noSpecial, json };
        cmd.SetAction(pr => CliContext.Run(() =>
        {
            using var m = EngineInputs.LoadModel(pr.GetValue(model)!);
            var path = pr.GetValue(data)!;
            if (!File.Exists(path)) throw new FuseSharpException($"{path}: no such file");
            int blockSize = pr.GetValue(block) ?? Math.Min(m.Spec.MaxPositions, 2048);
            if (blockSize < 2 || blockSize > m.Spec.MaxPositions)
                throw new FuseSharpException($"--block-size {blockSize} must be between 2 and the model's {m.Spec.MaxPositions} positions");
            int? step = pr.GetValue(stride);
            if (step is { } s && (s < 1 || s > blockSize)) throw new FuseSharpException($"--stride {s} must be between 1 and the block size {blockSize}");
            var result = path.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase)
                ? FromJsonl(m, path, pr.GetValue(model)!, blockSize, step, pr.GetValue(batch), !pr.GetValue(noSpecial))
                : Evaluation.Perplexity.Evaluate(m, EngineInputs.LoadTokenizer(pr.GetValue(model)!), [File.ReadAllText(path)], blockSize, step, pr.GetValue(batch),
                    !pr.GetValue(noSpecial), ConsoleProgress.Instance, CliContext.Cancellation);
            Print(result, blockSize, step ?? Math.Max(1, blockSize / 2), pr.GetValue(json));
            return 0;
        }));
        return cmd;
    }

    private static PerplexityResult FromJsonl(Models.TransformerModel m, string path, string modelDir, int blockSize, int? stride, int batch, bool special)
    {
        var texts = new List<string>();
        var docs = new List<IReadOnlyList<int>>();
        foreach (var (lineNo, node) in JsonLines.Read(path))
        {
            if (node["text"] is JsonValue v && v.TryGetValue<string>(out var text)) texts.Add(text);
            else if (node["input_ids"] is JsonArray a) docs.Add(a.Select(x => x!.GetValue<int>()).ToList());
            else throw new FuseSharpException($"{path}:{lineNo}: needs \"text\" or \"input_ids\"");
        }
        if (texts.Count > 0 && docs.Count > 0) throw new FuseSharpException($"{path}: mixes \"text\" and \"input_ids\" lines");
        return texts.Count > 0
            ? Evaluation.Perplexity.Evaluate(m, EngineInputs.LoadTokenizer(modelDir), texts, blockSize, stride, batch, special, ConsoleProgress.Instance, CliContext.Cancellation)
            : Evaluation.Perplexity.Evaluate(m, docs, blockSize, stride, batch, 0, ConsoleProgress.Instance, CliContext.Cancellation);
    }

    private static void Print(PerplexityResult r, int block, int stride, bool json)
    {
        var inv = CultureInfo.InvariantCulture;
        if (json)
        {
            Console.Out.WriteLine(new JsonObject
            {
                ["perplexity"] = r.Perplexity,
                ["bits_per_byte"] = double.IsNaN(r.BitsPerByte) ? null : r.BitsPerByte,
                ["nll_per_token"] = r.MeanNll,
                ["nll_sum"] = r.NegativeLogLikelihood,
                ["documents"] = r.Documents,
                ["tokens"] = r.Tokens,
                ["scored_tokens"] = r.ScoredTokens,
                ["bytes"] = r.Bytes,
                ["windows"] = r.Windows,
                ["block_size"] = block,
                ["stride"] = stride,
            }.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            return;
        }
        Console.Out.WriteLine(string.Create(inv, $"perplexity     {r.Perplexity:0.0000}"));
        if (!double.IsNaN(r.BitsPerByte)) Console.Out.WriteLine(string.Create(inv, $"bits per byte  {r.BitsPerByte:0.0000}"));
        Console.Out.WriteLine(string.Create(inv, $"nll per token  {r.MeanNll:0.0000} nats"));
        Console.Out.WriteLine(string.Create(inv, $"scored {r.ScoredTokens:N0} of {r.Tokens:N0} tokens in {r.Documents} document(s), {r.Bytes:N0} bytes; {r.Windows} windows of {block} (stride {stride})"));
    }

    private static Command Tasks()
    {
        var model = new Option<string>("--model") { Description = "Model folder.", Required = true };
        var tasks = new Option<string>("--tasks") { Description = "Comma-separated task names (NAME.jsonl under --data-dir) or .jsonl paths.", Required = true };
        var dataDir = new Option<string?>("--data-dir") { Description = "Folder searched (recursively) for NAME.jsonl (e.g. llm-foundry's local_data)." };
        var limit = new Option<int?>("--limit") { Description = "Evaluate only the first N examples of each task." };
        var batch = new Option<int>("--batch-size") { Description = "Sequences per forward (default 8).", DefaultValueFactory = _ => 8 };
        var addBos = new Option<bool>("--add-bos") { Description = "Prepend the tokenizer's special tokens (lm-evaluation-harness add_bos_token; off by default there)." };
        var maxLength = new Option<int?>("--max-length") { Description = "Window in tokens (default: the model's maximum positions)." };
        var json = new Option<bool>("--json") { Description = "Print the results as JSON." };
        var cmd = new Command("tasks", "Multiple-choice and LM log-likelihood tasks (acc, acc_norm) in llm-foundry / lm-eval JSON-lines formats.")
            { model, tasks, dataDir, limit, batch, addBos, maxLength, json };
        cmd.SetAction(pr => CliContext.Run(() =>
        {
            var names = pr.GetValue(tasks)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            if (names.Length == 0) throw new FuseSharpException("--tasks names no task");
            var paths = names.Select(n => TaskData.Resolve(n, pr.GetValue(dataDir))).ToList(); // all found before the model loads
            var data = paths.Select((p, i) => TaskData.Load(p, Path.GetFileNameWithoutExtension(p), pr.GetValue(limit))).ToList();
            using var m = EngineInputs.LoadModel(pr.GetValue(model)!);
            var tokenizer = EngineInputs.LoadTokenizer(pr.GetValue(model)!);
            var options = new TaskOptions { BatchSize = pr.GetValue(batch), AddSpecialTokens = pr.GetValue(addBos), MaxLength = pr.GetValue(maxLength) };
            var results = new List<TaskResult>();
            foreach (var t in data)
            {
                var r = TaskEvaluator.Evaluate(m, tokenizer, t, options, ConsoleProgress.Instance, CliContext.Cancellation);
                results.Add(r);
                if (!pr.GetValue(json)) Console.Out.WriteLine(TaskEvaluator.Describe(r));
            }
            if (pr.GetValue(json))
            {
                var arr = new JsonArray(results.Select(r => (JsonNode?)new JsonObject
                {
                    ["task"] = r.Name,
                    ["kind"] = r.Kind.ToString(),
                    ["n"] = r.Count,
                    ["acc"] = r.Accuracy,
                    ["acc_stderr"] = double.IsNaN(r.AccuracyStderr) ? null : r.AccuracyStderr,
                    ["acc_norm"] = r.NormalizedAccuracy,
                    ["acc_norm_stderr"] = r.NormalizedAccuracyStderr is { } s && !double.IsNaN(s) ? s : null,
                    ["acc_per_token"] = r.PerTokenAccuracy,
                    ["perplexity"] = r.Perplexity,
                }).ToArray());
                Console.Out.WriteLine(new JsonObject { ["results"] = arr }.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            }
            return 0;
        }));
        return cmd;
    }
}
