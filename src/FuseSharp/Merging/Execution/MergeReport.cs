using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using FuseSharp.Merging.Planning;
using FuseSharp.Tensors;

namespace FuseSharp.Merging.Execution;

/// <summary>What happened to one output tensor.</summary>
public sealed record TensorReport(TensorTask Task, TensorDiagnostics Diagnostics, OutputStatistics Output, double Seconds);

/// <summary>
/// The diagnostics of a merge (<c>merge_report.json</c>): per tensor the inputs, resolved parameters, delta norms,
/// kept fractions, sign-conflict rate, effective weights, guards that fired and the output's norm and NaN/Inf count;
/// overall the method, models, seed, threads, bytes and time. <see cref="Summary"/> is the short text the CLI prints.
/// </summary>
public sealed class MergeReport
{
    public MergeReport(MergePlan plan, IReadOnlyList<TensorReport> tensors, double seconds, int threads, string outputPath)
    {
        Plan = plan;
        Tensors = tensors;
        Seconds = seconds;
        Threads = threads;
        OutputPath = outputPath;
    }

    public MergePlan Plan { get; }

    public IReadOnlyList<TensorReport> Tensors { get; }

    public double Seconds { get; }

    public int Threads { get; }

    public string OutputPath { get; }

    public JsonObject ToJson()
    {
        var plan = Plan;
        var models = new JsonArray(plan.Models.Select(m => (JsonNode?)new JsonObject
        {
            ["index"] = m.Index,
            ["reference"] = m.Name,
            ["path"] = m.Path,
            ["layers"] = m.LayerCount,
        }).ToArray());
        var tensors = new JsonArray();
        foreach (var t in Tensors)
        {
            var task = t.Task;
            var o = new JsonObject
            {
                ["name"] = task.Name,
                ["shape"] = new JsonArray(task.Shape.ToArray().Select(d => (JsonNode?)d).ToArray()),
                ["dtype"] = task.OutputDType.SafetensorsName(),
                ["t"] = task.T,
            };
            if (task.CopyOnly) o["copied_from"] = task.Inputs[0].ModelName;
            else
            {
                if (task.Base is not null) o["base"] = task.Base.ModelName;
                var inputs = new JsonArray();
                for (int i = 0; i < task.Inputs.Count; i++)
                {
                    var input = task.Inputs[i];
                    var io = new JsonObject { ["model"] = input.ModelName, ["tensor"] = input.TensorName };
                    foreach (var (k, v) in input.Parameters.Values) io[k] = Value(v);
                    foreach (var (k, arr) in t.Diagnostics.PerModel)
                        if (i < arr.Length) io[k] = Number(arr[i]);
                    inputs.Add(io);
                }
                o["inputs"] = inputs;
                if (task.Parameters.Values.Count > 0)
                    o["parameters"] = new JsonObject(task.Parameters.Values.Select(p => new KeyValuePair<string, JsonNode?>(p.Key, Value(p.Value))));
                foreach (var (k, v) in t.Diagnostics.Scalars) o[k] = Number(v);
                if (t.Diagnostics.Guards.Count > 0) o["guards"] = new JsonArray(t.Diagnostics.Guards.Select(g => (JsonNode?)g).ToArray());
            }
            if (task.Notes.Count > 0) o["notes"] = new JsonArray(task.Notes.Select(n => (JsonNode?)n).ToArray());
            o["output_norm"] = Number(t.Output.Norm);
            o["nonfinite_count"] = t.Output.NonFiniteCount;
            o["seconds"] = Math.Round(t.Seconds, 4);
            tensors.Add(o);
        }
        var summary = new JsonObject
        {
            ["tensors"] = Tensors.Count,
            ["bytes_read"] = plan.BytesToRead,
            ["bytes_written"] = plan.BytesToWrite,
            ["seconds"] = Math.Round(Seconds, 3),
            ["guards_fired"] = Tensors.Sum(t => t.Diagnostics.Guards.Count),
            ["nonfinite_count"] = Tensors.Sum(t => t.Output.NonFiniteCount),
        };
        if (MeanOf("kept_fraction") is { } kept) summary["mean_kept_fraction"] = Number(kept);
        if (MeanScalar("sign_conflict_rate") is { } conflict) summary["mean_sign_conflict_rate"] = Number(conflict);
        var root = new JsonObject
        {
            ["fusesharp_version"] = typeof(MergeReport).Assembly.GetName().Version?.ToString(),
            ["merge_method"] = plan.Method.Name,
            ["reference"] = plan.Method.Reference,
            ["seed"] = plan.Options.Seed,
            ["threads"] = Threads,
            ["output"] = OutputPath,
            ["models"] = models,
            ["tokenizer"] = plan.Tokenizer.Description,
            ["output_layers"] = plan.OutputLayers,
            ["summary"] = summary,
        };
        if (plan.DataWeights is { } dw) root["data_weights"] = new JsonArray(dw.Select(w => (JsonNode?)Number(w)).ToArray());
        if (plan.Warnings.Count > 0) root["notes"] = new JsonArray(plan.Warnings.Select(w => (JsonNode?)w).ToArray());
        root["tensors"] = tensors;
        return root;
    }

    public string ToJsonString() => ToJson().ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n";

    /// <summary>A few lines for stderr: what was merged, how fast, what to look at.</summary>
    public string Summary()
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.AppendLine(inv, $"merged {Tensors.Count} tensors ({MergePlan.Bytes(Plan.BytesToWrite)}) with {Plan.Method.Name} in {Seconds:0.0} s ({Threads} threads) -> {OutputPath}");
        var weights = Tensors.Where(t => t.Diagnostics.PerModel.ContainsKey("effective_weight")).ToList();
        if (weights.Count > 0)
        {
            var names = weights[0].Diagnostics.ModelNames;
            var mean = Enumerable.Range(0, names.Count)
                .Select(i => weights.Where(t => t.Diagnostics.PerModel["effective_weight"].Length > i).Select(t => t.Diagnostics.PerModel["effective_weight"][i]).DefaultIfEmpty().Average()).ToList();
            sb.AppendLine(inv, $"  mean effective weight: {string.Join(", ", names.Select((n, i) => $"{n} {mean[i]:0.###}"))}");
        }
        if (MeanOf("kept_fraction") is { } kept) sb.AppendLine(inv, $"  mean kept fraction: {kept:0.###}");
        if (MeanScalar("sign_conflict_rate") is { } c) sb.AppendLine(inv, $"  mean sign-conflict rate: {c:0.###}");
        int guards = Tensors.Count(t => t.Diagnostics.Guards.Count > 0);
        if (guards > 0)
        {
            var top = Tensors.SelectMany(t => t.Diagnostics.Guards).GroupBy(g => g).OrderByDescending(g => g.Count()).First();
            sb.AppendLine(inv, $"  guards fired on {guards} tensors (most often: \"{top.Key}\", {top.Count()}x)");
        }
        sb.AppendLine(inv, $"  per-tensor details: {Path.Combine(OutputPath, "merge_report.json")}");
        return sb.ToString();
    }

    private double? MeanOf(string perModelKey)
    {
        var values = Tensors.Where(t => t.Diagnostics.PerModel.ContainsKey(perModelKey)).SelectMany(t => t.Diagnostics.PerModel[perModelKey]).ToList();
        return values.Count == 0 ? null : values.Average();
    }

    private double? MeanScalar(string key)
    {
        var values = Tensors.Where(t => t.Diagnostics.Scalars.ContainsKey(key)).Select(t => t.Diagnostics.Scalars[key]).ToList();
        return values.Count == 0 ? null : values.Average();
    }

    private static JsonNode? Number(double v) => double.IsFinite(v) ? JsonValue.Create(v) : JsonValue.Create(v.ToString(CultureInfo.InvariantCulture));

    private static JsonNode? Value(Config.ParameterScalar v) => v.Kind switch
    {
        Config.ParameterKind.Number => Number(v.NumberValue),
        Config.ParameterKind.Bool => JsonValue.Create(v.BoolValue),
        _ => JsonValue.Create(v.Text),
    };
}
