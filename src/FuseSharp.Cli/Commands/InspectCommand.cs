using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using FuseSharp.IO;
using FuseSharp.Tensors;

namespace FuseSharp.Cli.Commands;

/// <summary><c>fusesharp inspect PATH [--json]</c>: what a model folder or .safetensors file holds.</summary>
internal static partial class InspectCommand
{
    public static Command Create()
    {
        var path = new Argument<string>("PATH") { Description = "A model folder, a .safetensors file, or a model.safetensors.index.json." };
        var json = new Option<bool>("--json") { Description = "Print JSON on stdout instead of the human view." };
        var cmd = new Command("inspect", "Show a model's architecture, dtypes, parameter count, size and tensors (reads headers only).") { path, json };
        cmd.SetAction(pr => CliContext.Run(() => Execute(pr.GetValue(path)!, pr.GetValue(json))));
        return cmd;
    }

    private static int Execute(string path, bool json)
    {
        var report = Build(path);
        if (json) Console.Out.WriteLine(report.ToJson().ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        else Console.Out.Write(report.ToText());
        return 0;
    }

    internal static InspectReport Build(string path)
    {
        ModelConfig? config = null;
        IReadOnlyList<string> tokenizerFiles = [];
        string weightsPath = path;
        if (Directory.Exists(path))
        {
            using var folder = ModelFolder.Open(path, requireConfig: false);
            config = folder.Config;
            tokenizerFiles = folder.TokenizerFiles.Select(Path.GetFileName).ToList()!;
        }
        else if (!File.Exists(path))
        {
            throw new FuseSharpException($"{path}: no such file or folder", "give a model folder or a .safetensors file");
        }
        using var weights = SafetensorsModel.Open(weightsPath);
        var tensors = weights.Tensors
            .Select(t => new InspectTensor(t.Name, t.DType.SafetensorsName(), t.Shape.ToArray(), t.ByteLength, t.ElementCount, Path.GetFileName(weights.FileOf(t.Name).FilePath)))
            .OrderBy(t => t.Name, NaturalComparer.Instance)
            .ToList();
        return new InspectReport(path, config, tokenizerFiles, weights.Files.Select(f => Path.GetFileName(f.FilePath)).ToList(), weights.Metadata, tensors);
    }

    internal sealed record InspectTensor(string Name, string DType, long[] Shape, long Bytes, long Elements, string File);

    internal sealed record InspectReport(string Path, ModelConfig? Config, IReadOnlyList<string> TokenizerFiles, IReadOnlyList<string> Files,
        IReadOnlyDictionary<string, string> Metadata, IReadOnlyList<InspectTensor> Tensors)
    {
        public long Parameters => Tensors.Sum(t => t.Elements);

        public long TotalBytes => Tensors.Sum(t => t.Bytes);

        public IReadOnlyDictionary<string, int> DTypeCounts =>
            Tensors.GroupBy(t => t.DType).OrderByDescending(g => g.Count()).ToDictionary(g => g.Key, g => g.Count());

        public JsonObject ToJson()
        {
            var o = new JsonObject
            {
                ["path"] = Path,
                ["architectures"] = new JsonArray((Config?.Architectures ?? []).Select(a => (JsonNode?)a).ToArray()),
                ["model_type"] = Config?.ModelType,
                ["dtypes"] = new JsonObject(DTypeCounts.Select(p => new KeyValuePair<string, JsonNode?>(p.Key, p.Value))),
                ["parameters"] = Parameters,
                ["total_bytes"] = TotalBytes,
                ["tensor_count"] = Tensors.Count,
                ["files"] = new JsonArray(Files.Select(f => (JsonNode?)f).ToArray()),
                ["tokenizer_files"] = new JsonArray(TokenizerFiles.Select(f => (JsonNode?)f).ToArray()),
                ["metadata"] = new JsonObject(Metadata.Select(p => new KeyValuePair<string, JsonNode?>(p.Key, p.Value))),
            };
            if (Config is not null) o["config"] = Config.Raw.DeepClone();
            o["tensors"] = new JsonArray(Tensors.Select(t => (JsonNode?)new JsonObject
            {
                ["name"] = t.Name,
                ["dtype"] = t.DType,
                ["shape"] = new JsonArray(t.Shape.Select(d => (JsonNode?)d).ToArray()),
                ["bytes"] = t.Bytes,
                ["file"] = t.File,
            }).ToArray());
            return o;
        }

        public string ToText()
        {
            var sb = new StringBuilder();
            var inv = CultureInfo.InvariantCulture;
            sb.AppendLine(inv, $"model:        {Path}");
            var arch = Config is null ? "(no config.json)" : $"{string.Join(", ", Config.Architectures.DefaultIfEmpty("?"))} (model_type {Config.ModelType ?? "?"})";
            sb.AppendLine(inv, $"architecture: {arch}");
            if (Config is not null)
            {
                var dims = new[] { ("layers", Config.NumHiddenLayers), ("hidden", Config.HiddenSize), ("heads", Config.NumAttentionHeads), ("kv_heads", Config.NumKeyValueHeads), ("ffn", Config.IntermediateSize), ("vocab", Config.VocabSize) }
                    .Where(d => d.Item2 is not null).Select(d => $"{d.Item1} {d.Item2}");
                sb.AppendLine(inv, $"dimensions:   {string.Join(", ", dims)}");
            }
            sb.AppendLine(inv, $"dtypes:       {string.Join(", ", DTypeCounts.Select(p => $"{p.Key} ({p.Value} tensors)"))}");
            sb.AppendLine(inv, $"parameters:   {Parameters.ToString("N0", inv)} ({HumanCount(Parameters)})");
            sb.AppendLine(inv, $"size:         {ConsoleProgress.FormatBytes(TotalBytes)} ({TotalBytes.ToString("N0", inv)} bytes) in {Files.Count} file(s): {string.Join(", ", Files)}");
            if (TokenizerFiles.Count > 0) sb.AppendLine(inv, $"tokenizer:    {string.Join(", ", TokenizerFiles)}");
            sb.AppendLine();
            var rows = GroupLayers(Tensors);
            int w = Math.Max(4, rows.Select(r => r.Name.Length).DefaultIfEmpty(0).Max());
            int ws = Math.Max(5, rows.Select(r => r.Shape.Length).DefaultIfEmpty(0).Max());
            sb.AppendLine(inv, $"{"name".PadRight(w)}  dtype  {"shape".PadRight(ws)}  {"bytes",10}");
            foreach (var r in rows)
                sb.AppendLine(inv, $"{r.Name.PadRight(w)}  {r.DType,-5}  {r.Shape.PadRight(ws)}  {ConsoleProgress.FormatBytes(r.Bytes),10}{(r.Count > 1 ? $"  x{r.Count}" : "")}");
            sb.AppendLine(inv, $"{Tensors.Count} tensors");
            return sb.ToString();
        }

        private static string HumanCount(long n) => n switch
        {
            >= 1_000_000_000 => (n / 1e9).ToString("0.00", CultureInfo.InvariantCulture) + "B",
            >= 1_000_000 => (n / 1e6).ToString("0.00", CultureInfo.InvariantCulture) + "M",
            >= 1_000 => (n / 1e3).ToString("0.00", CultureInfo.InvariantCulture) + "K",
            _ => n.ToString(CultureInfo.InvariantCulture),
        };
    }

    internal sealed record Row(string Name, string DType, string Shape, long Bytes, int Count);

    /// <summary>
    /// Folds tensors that differ only in their layer index (the first numeric path segment) and agree in dtype and
    /// shape into one row: <c>model.layers.{0..31}.mlp.up_proj.weight</c>.
    /// </summary>
    internal static List<Row> GroupLayers(IReadOnlyList<InspectTensor> tensors)
    {
        var groups = new Dictionary<(string Pattern, string DType, string Shape), List<long>>();
        var order = new List<(string Pattern, string DType, string Shape)>();
        var plain = new List<(int Order, Row Row)>();
        foreach (var t in tensors)
        {
            var shape = "[" + string.Join(", ", t.Shape) + "]";
            var m = LayerIndex().Match(t.Name);
            if (!m.Success)
            {
                plain.Add((order.Count + plain.Count, new Row(t.Name, t.DType, shape, t.Bytes, 1)));
                continue;
            }
            var pattern = t.Name[..m.Groups[1].Index] + "{}" + t.Name[(m.Groups[1].Index + m.Groups[1].Length)..];
            var key = (pattern, t.DType, shape);
            if (!groups.TryGetValue(key, out var idx))
            {
                groups[key] = idx = [];
                order.Add(key);
                plain.Add((order.Count + plain.Count, null!));
            }
            idx.Add(long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture));
        }
        var rows = new List<Row>();
        int g = 0;
        foreach (var (_, row) in plain)
        {
            if (row is not null) { rows.Add(row); continue; }
            var key = order[g++];
            var idx = groups[key].Order().ToList();
            var bytes = tensors.First(t => t.DType == key.DType && "[" + string.Join(", ", t.Shape) + "]" == key.Shape).Bytes;
            rows.Add(new Row(key.Pattern.Replace("{}", "{" + IndexRange(idx) + "}", StringComparison.Ordinal), key.DType, key.Shape, bytes, idx.Count));
        }
        return rows;
    }

    private static string IndexRange(List<long> idx)
    {
        if (idx.Count == 1) return idx[0].ToString(CultureInfo.InvariantCulture);
        bool contiguous = idx[^1] - idx[0] == idx.Count - 1;
        return contiguous ? $"{idx[0]}..{idx[^1]}" : string.Join(",", idx);
    }

    [GeneratedRegex(@"\.(\d+)(?:\.|$)")]
    private static partial Regex LayerIndex();

    /// <summary>Orders names with embedded numbers numerically (layers.2 before layers.10).</summary>
    internal sealed class NaturalComparer : IComparer<string>
    {
        public static readonly NaturalComparer Instance = new();

        public int Compare(string? x, string? y)
        {
            if (x is null || y is null) return string.CompareOrdinal(x, y);
            int i = 0, j = 0;
            while (i < x.Length && j < y.Length)
            {
                if (char.IsAsciiDigit(x[i]) && char.IsAsciiDigit(y[j]))
                {
                    int si = i, sj = j;
                    while (i < x.Length && char.IsAsciiDigit(x[i])) i++;
                    while (j < y.Length && char.IsAsciiDigit(y[j])) j++;
                    var a = x[si..i].TrimStart('0');
                    var b = y[sj..j].TrimStart('0');
                    if (a.Length != b.Length) return a.Length.CompareTo(b.Length);
                    int c = string.CompareOrdinal(a, b);
                    if (c != 0) return c;
                }
                else
                {
                    if (x[i] != y[j]) return x[i].CompareTo(y[j]);
                    i++;
                    j++;
                }
            }
            return (x.Length - i).CompareTo(y.Length - j);
        }
    }
}
