using System.Security.Cryptography;
using System.Text;
using FuseSharp.Diagnostics;
using FuseSharp.IO;
using FuseSharp.Models;
using FuseSharp.Tensors;

namespace FuseSharp.Fusion;

/// <summary>
/// <see cref="ITopKScorer"/> over the CPU engine: <see cref="SequenceScorer"/> sorts the sequences it is given by
/// length, packs them into right-padded batches under <see cref="ScoringOptions.MaxTokensPerBatch"/>, and takes the
/// top-k and the next-token CE from one forward per batch (FP32 arithmetic; the reference runs bf16 and casts the logits
/// to fp16, which the store does too).
/// </summary>
public sealed class ModelTopKScorer : ITopKScorer, IDisposable
{
    private readonly TransformerModel _model;
    private readonly ScoringOptions _options;
    private readonly bool _ownsModel;

    /// <param name="model">The model.</param>
    /// <param name="fingerprint">What identifies the model in a store's provenance (see <see cref="FingerprintFolder"/>).</param>
    /// <param name="options">Batching.</param>
    /// <param name="ownsModel">Dispose the model with the scorer.</param>
    public ModelTopKScorer(TransformerModel model, string fingerprint, ScoringOptions? options = null, bool ownsModel = false)
    {
        _model = model ?? throw new ArgumentNullException(nameof(model));
        Fingerprint = fingerprint ?? throw new ArgumentNullException(nameof(fingerprint));
        _options = options ?? new ScoringOptions();
        _ownsModel = ownsModel;
    }

    /// <summary>Loads the model folder (config.json + safetensors) and fingerprints it.</summary>
    public static ModelTopKScorer Load(string folder, ScoringOptions? options = null, ModelOptions? modelOptions = null)
    {
        var model = TransformerModel.Load(folder, modelOptions);
        try
        {
            return new ModelTopKScorer(model, FingerprintFolder(folder), options, ownsModel: true);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    public TransformerModel Model => _model;

    public int VocabSize => _model.Spec.VocabSize;

    public int MaxSequenceLength => _model.Options.AllowLongerThanTrained ? int.MaxValue : _model.Spec.MaxPositions;

    public string Fingerprint { get; }

    public IReadOnlyList<SequenceScores> Score(IReadOnlyList<int[]> sequences, int k, IProgressTask? progress = null, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(sequences);
        var inputs = sequences.Select(s => new ScoringInput(s)).ToList();
        var results = new SequenceScores[inputs.Count];
        foreach (var r in SequenceScorer.Score(_model, inputs, k, _options, progress, cancel)) results[r.Index] = r;
        return results;
    }

    /// <summary>
    /// A content fingerprint of a model folder that is the same on every machine holding the same files (no paths,
    /// sizes or times): SHA-256 over config.json and, for every tensor in name order, its name, dtype, shape and a
    /// sample of its bytes (up to 4 KiB at its start, middle and end), so a fine-tune of the same architecture differs
    /// while a 100 GB checkpoint is not read whole. Returned as <c>model_type:hex</c>.
    /// </summary>
    public static string FingerprintFolder(string folder)
    {
        using var mf = ModelFolder.Open(folder);
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        sha.AppendData(File.ReadAllBytes(Path.Combine(mf.Path, "config.json")));
        const int Sample = 4096;
        foreach (var e in mf.Weights.Tensors.OrderBy(e => e.Name, StringComparer.Ordinal))
        {
            sha.AppendData(Encoding.UTF8.GetBytes($"\n{e.Name}\t{e.DType.SafetensorsName()}\t{e.Shape}\n"));
            var bytes = mf.Weights.GetBytes(e.Name);
            if (bytes.Length <= 3 * Sample)
            {
                sha.AppendData(bytes);
                continue;
            }
            sha.AppendData(bytes[..Sample]);
            sha.AppendData(bytes.Slice(bytes.Length / 2 - Sample / 2, Sample));
            sha.AppendData(bytes[^Sample..]);
        }
        return $"{mf.Config?.ModelType ?? "model"}:{Convert.ToHexStringLower(sha.GetHashAndReset())}";
    }

    public void Dispose()
    {
        if (_ownsModel) _model.Dispose();
    }
}
