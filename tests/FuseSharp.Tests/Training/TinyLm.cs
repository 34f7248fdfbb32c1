using System.Text.Json.Nodes;
using FuseSharp.IO;
using FuseSharp.Tensors;
using FuseSharp.Tensors.Kernels;
using FuseSharp.Training;
using FuseSharp.Training.Data;
using FuseSharp.Training.Kernels;

namespace FuseSharp.Tests.Training;

/// <summary>
/// A small trainable language model for the trainer's tests, built from the training kernels:
/// <c>logits = (rmsnorm(E[ids]) · g) · Wᵀ + b</c>, a bigram model with a normalisation. Its forward and backward are
/// the llm.c pattern in miniature: the forward saves x and rstd, the backward runs the kernels in reverse.
/// </summary>
internal sealed class TinyLm : ITrainableModel
{
    public const string ModelType = "fusesharp-tiny-test";
    private const float Eps = 1e-5f;

    private TinyLm(ModelConfig config, TensorArena parameters)
    {
        Config = config;
        Parameters = parameters;
        Gradients = parameters.CreateLike();
        VocabSize = config.VocabSize!.Value;
        Hidden = config.HiddenSize!.Value;
        MaxPositions = config.MaxPositionEmbeddings!.Value;
    }

    public ModelConfig Config { get; }

    public TensorArena Parameters { get; }

    public TensorArena Gradients { get; }

    public int VocabSize { get; }

    public int Hidden { get; }

    public int MaxPositions { get; }

    /// <summary>Run calls so far (tests poison a chosen call).</summary>
    public int Calls { get; private set; }

    /// <summary>When set, the logits of this call (1-based) are made NaN.</summary>
    public int PoisonCall { get; set; }

    private static IEnumerable<(string, Shape)> Layout(int v, int c) =>
        [("embed.weight", new Shape(v, c)), ("norm.weight", new Shape(c)), ("head.weight", new Shape(v, c)), ("head.bias", new Shape(v))];

    /// <summary>Writes a randomly initialised model folder (config.json + model.safetensors + a tokenizer file to copy along).</summary>
    public static void CreateFolder(string folder, int vocab, int hidden, int maxPositions, int seed)
    {
        Directory.CreateDirectory(folder);
        var config = new ModelConfig(new JsonObject
        {
            ["model_type"] = ModelType,
            ["vocab_size"] = vocab,
            ["hidden_size"] = hidden,
            ["max_position_embeddings"] = maxPositions,
            ["torch_dtype"] = "float32",
        });
        using var p = TensorArena.Create(Layout(vocab, hidden));
        var rng = new CounterRandom(seed, "tiny-lm");
        long k = 0;
        foreach (var name in new[] { "embed.weight", "head.weight" })
        {
            var s = p.Span(name);
            for (int i = 0; i < s.Length; i++) s[i] = (float)(0.5 * rng.NextGaussian(k++));
        }
        p.Span("norm.weight").Fill(1f);
        ArenaFiles.Save(p, folder, "model", DType.F32);
        config.Save(Path.Combine(folder, "config.json"));
        File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"), "{\"eos_token\": \"</s>\"}\n");
    }

    /// <summary>Loads a folder written by <see cref="CreateFolder"/> or saved by the trainer.</summary>
    public static TinyLm Load(string folder)
    {
        var config = ModelConfig.Load(Path.Combine(folder, "config.json"));
        var p = TensorArena.Create(Layout(config.VocabSize!.Value, config.HiddenSize!.Value));
        using var weights = SafetensorsModel.Open(folder);
        ArenaFiles.Load(p, weights);
        return new TinyLm(config, p);
    }

    public void Run(MicroBatch batch, MicroBatchLoss loss, bool backward)
    {
        Calls++;
        int n = batch.PositionCount, c = Hidden, v = VocabSize;
        var embed = Parameters.Span("embed.weight");
        var x = new float[n * c];
        for (int i = 0; i < n; i++) embed.Slice(batch.InputIds[i] * c, c).CopyTo(x.AsSpan(i * c, c));
        // h = rmsnorm(x) · g
        var rstd = new float[n];
        var h = new float[n * c];
        var g = Parameters.Span("norm.weight");
        for (int i = 0; i < n; i++)
        {
            double ss = 0;
            for (int j = 0; j < c; j++) ss += (double)x[i * c + j] * x[i * c + j];
            rstd[i] = 1f / MathF.Sqrt((float)(ss / c) + Eps);
            for (int j = 0; j < c; j++) h[i * c + j] = x[i * c + j] * rstd[i] * g[j];
        }
        // logits = h · Wᵀ + b, evaluated in chunks of 8 positions (the objective accepts any chunking).
        var w = Parameters.Span("head.weight");
        var b = Parameters.Span("head.bias");
        var dh = backward ? new float[n * c] : null;
        for (int start = 0; start < n; start += 8)
        {
            int m = Math.Min(8, n - start);
            var logits = new float[m * v];
            Gemm.MatMul(false, true, m, v, c, h.AsSpan(start * c), c, w, c, logits, v);
            for (int i = 0; i < m; i++)
                for (int j = 0; j < v; j++) logits[i * v + j] += b[j];
            if (PoisonCall == Calls) logits[0] = float.NaN;
            loss.Apply(start, m, logits, v, backward);
            if (!backward) continue;
            LinearBackward.Backward(h.AsSpan(start * c, m * c), w, logits, m, c, v, weightInOut: false,
                dh.AsSpan(start * c, m * c), Gradients.Span("head.weight"), Gradients.Span("head.bias"));
        }
        if (!backward) return;
        var dx = new float[n * c];
        RmsNormBackward.Backward(x, g, 0f, rstd, dh, dx, Gradients.Span("norm.weight"));
        EmbeddingBackward.Backward(batch.InputIds, dx, Gradients.Span("embed.weight"), c);
    }

    public void Dispose()
    {
        Parameters.Dispose();
        Gradients.Dispose();
    }
}
