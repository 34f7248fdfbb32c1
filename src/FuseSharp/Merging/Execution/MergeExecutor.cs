using System.Diagnostics;
using FuseSharp.Diagnostics;
using FuseSharp.IO;
using FuseSharp.Merging.Kernels;
using FuseSharp.Merging.Methods;
using FuseSharp.Merging.Planning;
using FuseSharp.Tensors;

namespace FuseSharp.Merging.Execution;

/// <summary>
/// Runs a <see cref="MergePlan"/>: tensors one after another in output order, each computed in FP32 by its method
/// with every core working on fixed chunks of it (so results do not depend on the thread count), inputs read from
/// memory-mapped files, results converted once to the output dtype and written with positional writes straight
/// into preallocated shards. Memory stays at the per-thread chunk buffers plus one tensor's method workspace,
/// whatever the model size. The output folder is built in a temporary sibling and renamed into place at the end;
/// any failure, a full disk or Ctrl-C removes it, so no partial model is left behind.
/// </summary>
public static class MergeExecutor
{
    /// <summary>Merges into <paramref name="outputPath"/>.</summary>
    /// <exception cref="MergeException">A tensor produced NaN/Inf, or an input is corrupt.</exception>
    /// <exception cref="OperationCanceledException">Cancelled; nothing is left at <paramref name="outputPath"/>.</exception>
    public static MergeReport Run(MergePlan plan, string outputPath, IProgressReporter? progress = null, CancellationToken ct = default) =>
        Run(plan, outputPath, progress, ct, null);

    /// <summary>As <see cref="Run(MergePlan, string, IProgressReporter?, CancellationToken)"/>; <paramref name="wrapSink"/> lets tests inject write failures.</summary>
    internal static MergeReport Run(MergePlan plan, string outputPath, IProgressReporter? progress, CancellationToken ct, Func<ITensorSink, ITensorSink>? wrapSink)
    {
        progress ??= NullProgress.Instance;
        var sw = Stopwatch.StartNew();
        using var folder = AtomicOutputDirectory.Create(outputPath, plan.Options.Overwrite);
        CheckFreeSpace(folder.Path, plan.BytesToWrite);
        var specs = plan.Tasks.Select(t => new TensorSpec(t.Name, t.OutputDType, t.Shape)).ToList();
        var metadata = new Dictionary<string, string> { ["format"] = "pt", ["merge_method"] = plan.Method.Name, ["created_by"] = "fusesharp" };
        List<TensorReport> reports;
        using (var writer = ShardedSafetensorsWriter.Create(folder.Path, specs, plan.Options.OutShardBytes, metadata))
        {
            ITensorSink sink = new ShardedSink(writer);
            if (wrapSink is not null) sink = wrapSink(sink);
            reports = MergeAll(plan, sink, progress, ct);
            ct.ThrowIfCancellationRequested();
            writer.Commit();
        }
        var report = new MergeReport(plan, reports, sw.Elapsed.TotalSeconds, Parallelism.MaxThreads, Path.GetFullPath(outputPath));
        OutputFolder.WriteMetadata(plan, folder.Path, report);
        ct.ThrowIfCancellationRequested();
        folder.Commit();
        return report;
    }

    /// <summary>Refuses to start when the output's file system cannot hold the weights (shards are also preallocated).</summary>
    private static void CheckFreeSpace(string folder, long bytes)
    {
        long free;
        try
        {
            free = new DriveInfo(Path.GetFullPath(folder)).AvailableFreeSpace;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            return; // unknown: the preallocation will tell
        }
        if (free < bytes)
            throw new FuseSharpException($"{folder}: the merged weights need {MergePlan.Bytes(bytes)} but only {MergePlan.Bytes(free)} is free",
                "free some space or write the output to another disk");
    }

    /// <summary>Merges every tensor of the plan into <paramref name="sink"/> (no files besides what the sink writes).</summary>
    public static List<TensorReport> MergeAll(MergePlan plan, ITensorSink sink, IProgressReporter? progress = null, CancellationToken ct = default)
    {
        progress ??= NullProgress.Instance;
        var reports = new List<TensorReport>(plan.Tasks.Count);
        using var bar = progress.Start($"merging ({plan.Method.Name})", plan.BytesToWrite, ProgressUnit.Bytes);
        foreach (var task in plan.Tasks)
        {
            ct.ThrowIfCancellationRequested();
            reports.Add(MergeTensor(plan, task, sink, ct));
            bar.Advance(task.OutputBytes);
        }
        return reports;
    }

    /// <summary>Merges one tensor, checks its output covers every element and is finite.</summary>
    public static TensorReport MergeTensor(MergePlan plan, TensorTask task, ITensorSink sink, CancellationToken ct)
    {
        var sw = Stopwatch.StartNew();
        var output = new TensorOutput(sink, task.Name, task.Count, task.OutputDType);
        using var ctx = new TensorMergeContext(task, output, plan.Options.Seed, ct);
        try
        {
            // An empty tensor has nothing to compute or write.
            if (task.Count > 0 && task.CopyOnly) Copy(task, output, ct);
            else if (task.Count > 0) plan.Method.Merge(ctx);
        }
        catch (MergeException e) when (e.Tensor is null)
        {
            throw new MergeException(e.Message, task.Name, e.Hint, e);
        }
        var stats = output.Complete();
        if (stats.NonFiniteCount > 0)
            throw new MergeException(
                $"{plan.Method.Name} produced {stats.NonFiniteCount} NaN/Inf values{(task.OutputDType == DType.F16 ? " (or values beyond float16's range)" : "")}, the first at element {stats.FirstNonFinite}",
                task.Name, Hint(plan, task, ctx.Diagnostics));
        return new TensorReport(task, ctx.Diagnostics, stats, sw.Elapsed.TotalSeconds);
    }

    private static string Hint(MergePlan plan, TensorTask task, TensorDiagnostics d)
    {
        var parts = new List<string>();
        if (d.Guards.Count > 0) parts.Add("guards fired: " + string.Join("; ", d.Guards));
        if (task.OutputDType == DType.F16) parts.Add("try out_dtype: bfloat16 or float32");
        parts.Add($"check the parameters ({task.Parameters}) and weights of {string.Join(", ", task.AllInputs.Select(i => i.ModelName))}");
        _ = plan;
        return string.Join("; ", parts);
    }

    private static void Copy(TensorTask task, TensorOutput output, CancellationToken ct)
    {
        var source = task.Inputs[0].Source as StoredTensorSource
            ?? throw new InvalidOperationException($"copy-only tensor '{task.Name}' must come straight from a file");
        int size = source.DType.Size();
        Chunked.For(task.Count, ct, (_, start, length, _) => output.WriteRaw(start, source.RawBytes(start, length), size));
    }
}
