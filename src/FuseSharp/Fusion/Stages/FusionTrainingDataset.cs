using FuseSharp.Diagnostics;
using FuseSharp.Fusion.Fuse;
using FuseSharp.Fusion.Store;
using FuseSharp.Training.Data;

namespace FuseSharp.Fusion.Stages;

/// <summary>
/// The fusion data as the trainer sees it (<see cref="ITrainingDataset"/>): one <see cref="TrainingExample"/> per row
/// (a packed FuseLLM block or a FuseChat dialogue) with the labels of the row and, per position, the fused teacher
/// distribution as <see cref="SparseDistributions"/> (ids and probabilities; no shift: the distribution at t predicts
/// token t + 1, like the logits at t). Built from a fused store (<c>fuse targets</c>) or by fusing a dataset in
/// memory with <see cref="FusionOptions"/> (the reference fuses inside its trainer, spec §6), or without teacher for
/// the causal-LM-only baseline on exactly the same rows.
/// <para>Rows are held in memory (k ids and probabilities per position: about 80 bytes per position at k = 10 for
/// MinCE, 3× for AvgCE), which suits the miniature and medium runs this toolkit trains on a CPU.</para>
/// </summary>
public sealed class FusionTrainingDataset : ITrainingDataset
{
    private readonly TrainingExample[] _examples;

    private FusionTrainingDataset(TrainingExample[] examples, string description)
    {
        if (examples.Length == 0) throw new FusionException("the fusion data has no rows", "check the earlier stages' reports (filter-nan may have removed every row)");
        _examples = examples;
        Description = description;
        TokenCount = examples.Sum(e => (long)e.Length);
        MaxLength = examples.Max(e => e.Length);
        MaxTokenId = examples.Max(e => Math.Max(e.InputIds.Max(), e.Targets is { Ids.Length: > 0 } t ? t.Ids.Max() : -1));
    }

    public int Count => _examples.Length;

    public TrainingExample this[int index] => _examples[index];

    public long TokenCount { get; }

    public int MaxLength { get; }

    public string Description { get; }

    /// <summary>The largest token id among inputs and teacher entries (checked against the model's vocabulary).</summary>
    public int MaxTokenId { get; }

    /// <summary>Whether the examples carry teacher distributions.</summary>
    public bool HasTeacher => _examples[0].Targets is not null;

    /// <summary>Reads a fused store (kind "fused", written by <c>fuse targets</c>).</summary>
    /// <exception cref="FusionException">The store is not a fused one, or is incomplete.</exception>
    public static FusionTrainingDataset FromFusedStore(StoreReader fused, IProgressReporter? progress = null, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(fused);
        if (fused.Manifest.Kind != "fused")
            throw new FusionException($"{fused.Folder} is a {fused.Manifest.Kind} store, not a fused one", "pass the output of `fuse targets` as --data, or give --dataset/--target to fuse while loading");
        var examples = new List<TrainingExample>((int)fused.Rows);
        using var task = (progress ?? NullProgress.Instance).Start("loading fused targets", fused.Rows);
        foreach (var part in fused.Parts)
        {
            cancel.ThrowIfCancellationRequested();
            foreach (var r in fused.ReadPart(part))
            {
                var d = r.Lists.Single(l => l.Name == FuseStage.ListName).Rows;
                examples.Add(Example(r.InputIds, r.Labels ?? r.InputIds, d));
                task.Advance();
            }
        }
        return new FusionTrainingDataset([.. examples], $"fused store {fused.Folder} ({fused.Manifest.ConfigHash})");
    }

    /// <summary>Fuses every row of <paramref name="data"/> with <paramref name="options"/> (MinCE/AvgCE, temperature) while loading.</summary>
    /// <exception cref="FusionException">A used candidate's metric is NaN (run filter-nan first) or a row is inconsistent.</exception>
    public static FusionTrainingDataset Fuse(FusionDataset data, FusionOptions options, IProgressReporter? progress = null, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(options);
        var examples = new TrainingExample[data.Rows];
        using var task = (progress ?? NullProgress.Instance).Start($"fusing targets ({options.Rule}, T = {options.Temperature})", data.Rows);
        long i = 0;
        foreach (var (_, row) in data.ReadRows())
        {
            cancel.ThrowIfCancellationRequested();
            var fused = DistributionFusion.Fuse(row, options, $"row {i}");
            examples[i++] = Example(row.InputIds, row.Labels, fused.Distribution);
            task.Advance();
        }
        return new FusionTrainingDataset(examples, $"{string.Join(",", data.Inputs.Select(n => n!.GetValue<string>()))} fused {options.Rule} T={options.Temperature} target={options.WithTarget} sources={(options.Sources is null ? "all" : string.Join(",", options.Sources))} {options.Precision}");
    }

    /// <summary>The rows of <paramref name="data"/> without teacher: the causal-LM-only baseline on exactly the same sequences.</summary>
    public static FusionTrainingDataset LanguageModeling(FusionDataset data, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(data);
        var examples = new List<TrainingExample>((int)data.Rows);
        foreach (var (_, row) in data.ReadRows())
        {
            cancel.ThrowIfCancellationRequested();
            examples.Add(new TrainingExample(row.InputIds, row.Labels));
        }
        return new FusionTrainingDataset([.. examples], $"{string.Join(",", data.Inputs.Select(n => n!.GetValue<string>()))} causal-LM only");
    }

    /// <summary>The same rows without their teacher distributions.</summary>
    public FusionTrainingDataset WithoutTeacher() =>
        new(_examples.Select(e => new TrainingExample(e.InputIds, e.Labels)).ToArray(), Description + " (causal-LM only)");

    // SparseRows and SparseDistributions share the CSR layout; the fused values are probabilities.
    private static TrainingExample Example(int[] ids, int[] labels, SparseRows d) =>
        new(ids, labels, new SparseDistributions(d.Offsets, d.Ids, d.Values));
}
