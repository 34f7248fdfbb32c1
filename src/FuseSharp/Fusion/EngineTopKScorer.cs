using System.Security.Cryptography;
using System.Text;
using FuseSharp.Models;

namespace FuseSharp.Fusion;

/// <summary>
/// The forward engine as the <see cref="ITopKScorer"/> of <c>fuse represent</c>: each call is one
/// <see cref="SequenceScorer.Score"/> (length-sorted batches under a token budget, top-k and next-token CE from the same
/// output projection, no (B, T, V) tensor), results put back in input order.
/// </summary>
public sealed class EngineTopKScorer : ITopKScorer, IDisposable
{
    private readonly TransformerModel _model;
    private readonly bool _owns;
    private readonly ScoringOptions _options;

    /// <param name="model">The model (not disposed by this scorer).</param>
    /// <param name="fingerprint">Provenance of the model, written into the representation's manifest.</param>
    /// <param name="options">Batching.</param>
    public EngineTopKScorer(TransformerModel model, string fingerprint, ScoringOptions? options = null)
        : this(model, fingerprint, options, owns: false)
    {
    }

    private EngineTopKScorer(TransformerModel model, string fingerprint, ScoringOptions? options, bool owns)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(fingerprint);
        _model = model;
        _owns = owns;
        _options = options ?? new ScoringOptions();
        Fingerprint = fingerprint;
    }

    /// <summary>Loads the model folder; the scorer owns the model.</summary>
    public static EngineTopKScorer Load(string folder, ScoringOptions? options = null) =>
        new(TransformerModel.Load(folder), FolderFingerprint(folder), options, owns: true);

    public int VocabSize => _model.Spec.VocabSize;

    public int MaxSequenceLength => _model.Spec.MaxPositions;

    public string Fingerprint { get; }

    public IReadOnlyList<ScoredSequence> Score(IReadOnlyList<int[]> sequences, int k, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(sequences);
        var result = new ScoredSequence[sequences.Count];
        var inputs = sequences.Select(s => new ScoringInput(s)).ToList();
        foreach (var r in SequenceScorer.Score(_model, inputs, k, _options, cancellation: cancel))
            result[r.Index] = new ScoredSequence(r.TopKIds, r.TopKLogits, r.CrossEntropy, k);
        return result;
    }

    /// <summary>
    /// The folder's name with a SHA-256 over config.json and the names and sizes of its weight files (cheap for any
    /// size of model; a retrained model in the same folder changes its files' sizes only if its dtype changes, so
    /// the config's and weights' modification times are included too).
    /// </summary>
    public static string FolderFingerprint(string folder)
    {
        var sb = new StringBuilder();
        var config = Path.Combine(folder, "config.json");
        if (File.Exists(config)) sb.Append(File.ReadAllText(config));
        foreach (var f in Directory.EnumerateFiles(folder, "*.safetensors").Order(StringComparer.Ordinal))
        {
            var fi = new FileInfo(f);
            sb.Append('\n').Append(fi.Name).Append(' ').Append(fi.Length).Append(' ').Append(fi.LastWriteTimeUtc.Ticks);
        }
        return $"{Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(folder)))}:{Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(sb.ToString())))[..16]}";
    }

    public void Dispose()
    {
        if (_owns) _model.Dispose();
    }
}
