using System.Globalization;
using System.Text.Json.Nodes;
using FuseSharp.IO;
using FuseSharp.Merging.Planning;

namespace FuseSharp.Merging.Methods;

/// <summary>One LM-Cocktail example: a prompt and the expected continuation (<c>{"input", "output"}</c> JSONL).</summary>
public sealed record CocktailExample(string Input, string Output);

/// <summary>
/// Scores a candidate model on examples: the mean token cross-entropy of <c>output</c> given <c>input</c>
/// (LM-Cocktail's decoder loss, spec §2.15: ids = encode(input + ' ' + output) + [eos], prompt tokens masked,
/// HF mean CE per batch, averaged over batches). Merging sits below the engine, so the engine's implementation
/// (<c>FuseSharp.Evaluation.ExampleLossScorer</c>) reaches the planner through <see cref="MergeOptions.ExampleLossScorer"/>.
/// </summary>
public interface IExampleLossScorer
{
    /// <summary>
    /// The mean loss of the model in <paramref name="modelFolder"/> on <paramref name="examples"/>, tokenized with the tokenizer in
    /// <paramref name="tokenizerFolder"/> (the reference uses the first model's tokenizer for every candidate).
    /// </summary>
    double Loss(string modelFolder, string tokenizerFolder, IReadOnlyList<CocktailExample> examples, int maxInputLength, int batchSize, CancellationToken cancellation);
}

/// <summary>
/// LM-Cocktail <c>mix_models</c> (FlagEmbedding, spec §2.15): <c>Σ w_i θ_i</c> with weights that must sum to 1
/// (within 1e-3; the reference checks only <c>Σ − 1 ≤ 1e-3</c>, one-sided, which lets sums below 1 through; this
/// checks both sides). No base role and no normalisation. With <c>example_data</c> the weights are
/// <c>softmax(−L_i / temperature)</c> of each model's loss on the examples (<c>mix_models_with_data</c>,
/// temperature default 5.0 as in the code; its docstring says 3.0), computed once before the merge by the
/// <see cref="IExampleLossScorer"/> of <see cref="MergeOptions.ExampleLossScorer"/>. Integer tensors are copied (the reference keeps the last model's).
/// </summary>
public sealed class LmCocktail : IMergeMethod
{
    public string Name => "lm_cocktail";

    public string PrettyName => "LM-Cocktail";

    public string? Reference => "https://arxiv.org/abs/2311.13534";

    public BaseModelPolicy BasePolicy => BaseModelPolicy.Input;

    public EmbeddingShapePolicy EmbeddingPolicy => EmbeddingShapePolicy.CommonSubmatrix;

    public IReadOnlyList<ParameterDef> Parameters { get; } =
    [
        ParameterDef.OptionalString("example_data", "JSONL file of {\"input\", \"output\"} examples; weights = softmax(-loss / temperature)"),
        ParameterDef.Number("temperature", 5.0, "softmax temperature for data-driven weights", ParameterDef.Positive),
        ParameterDef.Number("max_input_length", 2048, "tokens per example when scoring", ParameterDef.PositiveInteger),
        ParameterDef.Number("batch_size", 2, "examples per batch when scoring", ParameterDef.PositiveInteger),
    ];

    public IReadOnlyList<ParameterDef> ModelParameters { get; } = [ParameterDef.OptionalNumber("weight", "weight of this model (the weights must sum to 1)")];

    public void Validate(TensorTask task)
    {
        MethodHelpers.RequireCounts(task, Name, needsBase: false, min: 1);
        foreach (var i in task.Inputs)
            MethodHelpers.Require(i.Parameters.Has("weight"), task, $"model {i.ModelName} has no weight",
                "give every model a weight (summing to 1), or set example_data to compute them from data");
        double sum = task.Inputs.Sum(i => i.Weight);
        MethodHelpers.Require(Math.Abs(sum - 1) <= 1e-3, task, string.Create(CultureInfo.InvariantCulture, $"LM-Cocktail weights must sum to 1 (within 1e-3), they sum to {sum:R}"),
            "rescale the weights so they add up to 1");
    }

    public long WorkspaceBytes(TensorTask task) => 0;

    public void Merge(TensorMergeContext ctx) => Linear.WeightedSum(ctx, normalize: false);

    /// <summary>Reads <c>{"input", "output"}</c> lines.</summary>
    /// <exception cref="FuseSharpException">A missing file or a malformed line (named by file and line).</exception>
    public static IReadOnlyList<CocktailExample> ReadExamples(string path)
    {
        var list = new List<CocktailExample>();
        foreach (var (line, o) in JsonLines.Read(path))
        {
            if (o["input"] is not JsonValue i || !i.TryGetValue<string>(out var input) || o["output"] is not JsonValue v || !v.TryGetValue<string>(out var output))
                throw new MergeConfigException(path, line, "expected an object with string fields \"input\" and \"output\"");
            list.Add(new CocktailExample(input, output));
        }
        if (list.Count == 0) throw new MergeConfigException(path, 0, "example_data has no examples", "give one {\"input\": ..., \"output\": ...} object per line");
        return list;
    }

    /// <summary>LM-Cocktail's weights from losses: <c>softmax(−L / T)</c> (max-subtracted for stability).</summary>
    public static double[] WeightsFromLosses(IReadOnlyList<double> losses, double temperature)
    {
        var z = losses.Select(l => -l / temperature).ToArray();
        double max = z.Max();
        var e = z.Select(x => Math.Exp(x - max)).ToArray();
        double s = e.Sum();
        return e.Select(x => x / s).ToArray();
    }

    /// <summary>Scores every model on the examples and returns the weights (planning calls this before resolving parameters).</summary>
    /// <exception cref="MergeConfigException">No scorer is given.</exception>
    public static double[] WeightsFromData(IExampleLossScorer? scorer, IReadOnlyList<string> modelFolders, string examplePath, double temperature, int maxInputLength,
        int batchSize, Action<string>? log, CancellationToken ct)
    {
        if (scorer is null)
            throw new MergeConfigException(examplePath, 0, "lm_cocktail with example_data needs a loss scorer (MergeOptions.ExampleLossScorer) to run the models",
                "use the fusesharp merge command, pass FuseSharp.Evaluation.ExampleLossScorer in the options, or give the weights explicitly");
        var examples = ReadExamples(examplePath);
        var losses = modelFolders.Select(f => scorer.Loss(f, modelFolders[0], examples, maxInputLength, batchSize, ct)).ToList();
        var weights = WeightsFromLosses(losses, temperature);
        for (int i = 0; i < modelFolders.Count; i++)
            log?.Invoke(string.Create(CultureInfo.InvariantCulture, $"lm_cocktail: {modelFolders[i]}: loss {losses[i]:F4} -> weight {weights[i]:F4}"));
        return weights;
    }
}
