using System.Text.Json.Nodes;
using FuseSharp.Diagnostics;
using FuseSharp.IO;
using FuseSharp.Tensors;

namespace FuseSharp.Models;

/// <summary>
/// Randomly initialised models (<c>fusesharp init-model</c>, benchmarks, tests, training from scratch), with
/// transformers' default initialisation: embeddings and linear weights N(0, <c>initializer_range</c>) (default
/// 0.02), norm weights 1 (0 for Gemma's stored w − 1), biases 0, the padding row of a padding-idx embedding 0.
/// Every value is drawn from a counter-based stream keyed by (seed, tensor name), so the result is the same for any
/// thread count and whether the model is built in memory or streamed to disk.
/// </summary>
public static class ModelInitializer
{
    private const int Chunk = 1 << 16;

    /// <summary>
    /// The config of a new model: <paramref name="config"/> (kept whole) plus <c>architectures</c>,
    /// <c>model_type</c> and <c>torch_dtype</c>; validated by resolving the spec.
    /// </summary>
    /// <exception cref="ModelConfigException">A required field is missing or a value is invalid.</exception>
    public static (ModelConfig Config, TransformerSpec Spec) PrepareConfig(Architecture architecture, JsonObject config, DType dtype, string path = "config.json")
    {
        ArgumentNullException.ThrowIfNull(architecture);
        ArgumentNullException.ThrowIfNull(config);
        var raw = (JsonObject)config.DeepClone();
        raw["architectures"] = new JsonArray(architecture.ClassNames[0]);
        raw["model_type"] = architecture.ModelType;
        raw["torch_dtype"] = dtype.TorchName();
        var mc = new ModelConfig(raw, path);
        return (mc, architecture.Resolve(mc));
    }

    /// <summary>The parameters as tensors in memory (F32 or BF16).</summary>
    public static Dictionary<string, Tensor> CreateWeights(Architecture architecture, TransformerSpec spec, double initializerRange, long seed, DType dtype = DType.F32)
    {
        ArgumentNullException.ThrowIfNull(architecture);
        CheckDType(dtype);
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        try
        {
            foreach (var p in architecture.Parameters(spec))
            {
                var t = Tensor.Allocate(dtype, new Shape(p.Shape), zero: false);
                result[p.Name] = t;
                Generate(p, spec, initializerRange, seed, (offset, values) =>
                {
                    if (dtype == DType.F32) values.CopyTo(t.AsSpan<float>().Slice((int)offset, values.Length));
                    else BFloat16Conversion.FromSingle(values, t.AsSpan<ushort>().Slice((int)offset, values.Length));
                });
            }
            return result;
        }
        catch
        {
            foreach (var t in result.Values) t.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Writes a model folder (config.json, generation_config.json, model.safetensors) into <paramref name="outDir"/>
    /// atomically, streaming each tensor chunk by chunk (memory stays at one chunk per thread).
    /// </summary>
    public static void WriteFolder(string outDir, Architecture architecture, ModelConfig config, TransformerSpec spec, long seed, DType dtype,
        bool overwrite = false, IProgressReporter? progress = null, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(architecture);
        ArgumentNullException.ThrowIfNull(config);
        CheckDType(dtype);
        var parameters = architecture.Parameters(spec);
        double std = config.GetDouble("initializer_range") ?? 0.02;
        using var output = AtomicOutputDirectory.Create(outDir, overwrite);
        using (var writer = SafetensorsWriter.Create(Path.Combine(output.Path, SafetensorsModel.SingleFileName),
            parameters.Select(p => new TensorSpec(p.Name, dtype, new Shape(p.Shape)))))
        {
            using var bar = (progress ?? NullProgress.Instance).Start("init-model", parameters.Sum(p => p.ElementCount * dtype.Size()), ProgressUnit.Bytes);
            foreach (var p in parameters)
            {
                cancellation.ThrowIfCancellationRequested();
                Generate(p, spec, std, seed, (offset, values) =>
                {
                    writer.WriteSingle(p.Name, values, offset);
                    bar.Advance(values.Length * dtype.Size());
                });
            }
            writer.Commit();
        }
        config.Save(Path.Combine(output.Path, "config.json"));
        var gen = new JsonObject { ["_from_model_config"] = true };
        if (spec.BosTokenId is { } bos) gen["bos_token_id"] = bos;
        if (spec.EosTokenIds.Count == 1) gen["eos_token_id"] = spec.EosTokenIds[0];
        else if (spec.EosTokenIds.Count > 1) gen["eos_token_id"] = new JsonArray(spec.EosTokenIds.Select(i => (JsonNode?)i).ToArray());
        if (spec.PadTokenId is { } pad) gen["pad_token_id"] = pad;
        AtomicFile.WriteAllText(Path.Combine(output.Path, "generation_config.json"), gen.ToJsonString(ModelConfig.IndentedJson) + "\n");
        output.Commit();
    }

    /// <summary>Produces the initial values of <paramref name="p"/> in chunks (in parallel; <paramref name="sink"/> must be thread-safe per chunk).</summary>
    private static void Generate(ParameterInfo p, TransformerSpec spec, double std, long seed, Action<long, float[]> sink)
    {
        long n = p.ElementCount;
        var rng = new CounterRandom(seed, p.Name);
        long chunks = (n + Chunk - 1) / Chunk;
        long padRow = p.Role == ParameterRole.Embedding && spec.EmbeddingPaddingIndex is { } pi && pi >= 0 && pi < spec.VocabSize ? pi : -1;
        long cols = p.Shape[^1];
        Parallel.For(0L, chunks, Parallelism.Options, c =>
        {
            long start = c * Chunk;
            var values = new float[(int)Math.Min(Chunk, n - start)];
            switch (p.Init)
            {
                case ParameterInit.Ones:
                    Array.Fill(values, 1f);
                    break;
                case ParameterInit.Zeros:
                    break;
                default:
                    // Box-Muller on counters (2j, 2j + 1) gives the pair (z_2j, z_2j+1): one log, sqrt, sin and cos per two values.
                    for (int i = 0; i < values.Length; i += 2)
                    {
                        long pair = (start + i) / 2; // chunks start at even indices
                        double r = Math.Sqrt(-2.0 * Math.Log(1.0 - rng.NextDouble(2 * pair))) * std;
                        var (sin, cos) = Math.SinCos(2 * Math.PI * rng.NextDouble(2 * pair + 1));
                        values[i] = (float)(r * cos);
                        if (i + 1 < values.Length) values[i + 1] = (float)(r * sin);
                    }
                    if (padRow >= 0)
                        for (int i = 0; i < values.Length; i++) if ((start + i) / cols == padRow) values[i] = 0f;
                    break;
            }
            sink(start, values);
        });
    }

    private static void CheckDType(DType dtype)
    {
        if (dtype is not (DType.F32 or DType.BF16)) throw new FuseSharpException($"cannot initialise a model in {dtype}", "use float32 or bfloat16");
    }
}
