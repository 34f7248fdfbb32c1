using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using FuseSharp.Diagnostics;
using FuseSharp.Fusion;
using FuseSharp.Fusion.Alignment;

namespace FuseSharp.Cli.Commands;

/// <summary>
/// <c>fusesharp fuse dtw --input CASES.jsonl</c>: DTW token alignment of arbitrary token sequences, one case per line
/// (<c>{"base_tokens", "blending_tokens", "variant", "base_marker", "blending_marker"}</c>), one result per line
/// (<c>{"base_to_blending": [[...], ...], "total_cost": x}</c>), so alignments can be compared with the reference
/// code's outputs on any input.
/// </summary>
internal static class FuseDtwCommand
{
    private const int Batch = 256;

    public static Command Create()
    {
        var input = new Option<string>("--input") { Description = "JSONL cases: {\"base_tokens\": [...], \"blending_tokens\": [...], \"variant\": \"fusellm|fusechat-v1|fusechat-v2\", \"base_marker\": \"▁\", \"blending_marker\": \"Ġ\"} (markers default to ▁ / Ġ).", Required = true };
        var output = new Option<string?>("--output") { Description = "Write the results here instead of stdout." };
        var mode = new Option<string>("--mode") { Description = "banded (exact, pruned; default) or full (every cell).", DefaultValueFactory = _ => "banded" };
        var cmd = new Command("dtw", "Align token sequences with the FuseLLM / FuseChat DTW (exact reference results).") { input, output, mode };
        cmd.SetAction(pr => CliContext.Run(() => Execute(pr.GetValue(input)!, pr.GetValue(output), pr.GetValue(mode)!)));
        return cmd;
    }

    private static int Execute(string input, string? output, string modeName)
    {
        var mode = modeName switch
        {
            "banded" => DtwMode.Banded,
            "full" => DtwMode.Full,
            _ => throw new FuseSharpException($"--mode must be banded or full, got '{modeName}'"),
        };
        if (!File.Exists(input)) throw new FuseSharpException($"{input}: no such file", "give a JSONL file of DTW cases");
        var lines = File.ReadLines(input).Select((l, i) => (Line: i + 1, Text: l)).Where(x => !string.IsNullOrWhiteSpace(x.Text));
        using var sink = output is null ? Console.OpenStandardOutput() : new FileStream(output + ".tmp", FileMode.Create, FileAccess.Write);
        using var progress = ConsoleProgress.Instance.Start("dtw", 0);
        var batch = new List<(int Line, string Text)>(Batch);
        void Flush()
        {
            var results = new string[batch.Count];
            Parallel.For(0, batch.Count, new ParallelOptions { MaxDegreeOfParallelism = Tensors.Parallelism.MaxThreads, CancellationToken = CliContext.Cancellation }, i =>
                results[i] = AlignCase(input, batch[i].Line, batch[i].Text, mode));
            foreach (var r in results) sink.Write(Encoding.UTF8.GetBytes(r + "\n"));
            progress.Advance(batch.Count);
            batch.Clear();
        }
        try
        {
            foreach (var l in lines)
            {
                batch.Add(l);
                if (batch.Count == Batch) Flush();
            }
            if (batch.Count > 0) Flush();
        }
        catch (AggregateException e) when (e.InnerExceptions.FirstOrDefault(x => x is FuseSharpException) is FuseSharpException f)
        {
            throw f;
        }
        sink.Flush();
        sink.Dispose();
        if (output is not null) File.Move(output + ".tmp", output, overwrite: true);
        return 0;
    }

    private static string AlignCase(string file, int line, string text, DtwMode mode)
    {
        string where = $"{file}:{line}";
        JsonObject o;
        try
        {
            o = JsonNode.Parse(text)?.AsObject() ?? throw new JsonException("not an object");
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            throw new FusionException($"{where}: malformed JSON ({e.Message})", "one JSON object per line");
        }
        string[] Tokens(string name) => o[name] is JsonArray a && a.All(x => x is JsonValue v && v.TryGetValue<string>(out _))
            ? a.Select(x => x!.GetValue<string>()).ToArray()
            : throw new FusionException($"{where}: \"{name}\" must be a list of token strings");
        string Marker(string name, string fallback) => o[name] is JsonValue v && v.TryGetValue<string>(out var s) ? s : fallback;
        var variantName = o["variant"] is JsonValue vv && vv.TryGetValue<string>(out var vn) ? vn : "fusellm";
        if (!DtwVariants.TryParse(variantName, out var variant))
            throw new FusionException($"{where}: unknown variant \"{variantName}\"", "use fusellm, fusechat-v1 or fusechat-v2");
        DtwAlignment a;
        try
        {
            a = TokenDtw.Align(Tokens("blending_tokens"), Tokens("base_tokens"), variant, Marker("blending_marker", "Ġ"), Marker("base_marker", "▁"), mode);
        }
        catch (FusionException e)
        {
            throw new FusionException($"{where}: {e.Message}", e.Hint);
        }
        var sb = new StringBuilder("{\"base_to_blending\": [");
        for (int j = 0; j < a.BaseLength; j++)
        {
            if (j > 0) sb.Append(", ");
            sb.Append('[');
            for (int i = a.BaseFirst[j]; i <= a.BaseLast[j]; i++)
            {
                if (i > a.BaseFirst[j]) sb.Append(", ");
                sb.Append(i.ToString(CultureInfo.InvariantCulture));
            }
            sb.Append(']');
        }
        sb.Append("], \"total_cost\": ").Append(a.TotalCost.ToString("R", CultureInfo.InvariantCulture)).Append('}');
        return sb.ToString();
    }
}
