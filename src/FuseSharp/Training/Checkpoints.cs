using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using FuseSharp.IO;
using FuseSharp.Tensors;

namespace FuseSharp.Training;

/// <summary>
/// Where a run stands (<c>trainer_state.json</c> of a checkpoint). Together with the weights and the optimizer
/// moments it is everything a resumed run needs: the data order and every other random choice are functions of
/// the seed and the step.
/// </summary>
public sealed record TrainerState
{
    public const string FileName = "trainer_state.json";
    private const string FormatName = "fusesharp-trainer-state";
    private const int FormatVersion = 1;

    /// <summary>Optimizer steps taken.</summary>
    public long GlobalStep { get; init; }

    /// <summary>Steps of the whole run.</summary>
    public long TotalSteps { get; init; }

    /// <summary>Sequences drawn so far (the position in the data order).</summary>
    public long ExamplesSeen { get; init; }

    /// <summary>Real tokens trained on so far.</summary>
    public long TokensSeen { get; init; }

    /// <summary>Loss of the last step.</summary>
    public double LastLoss { get; init; }

    /// <summary>The options that determine the trajectory (a resumed run must match them).</summary>
    public JsonObject Fingerprint { get; init; } = [];

    public JsonObject ToJson() => new()
    {
        ["format"] = FormatName,
        ["version"] = FormatVersion,
        ["global_step"] = GlobalStep,
        ["total_steps"] = TotalSteps,
        ["examples_seen"] = ExamplesSeen,
        ["tokens_seen"] = TokensSeen,
        ["last_loss"] = double.IsFinite(LastLoss) ? LastLoss : null,
        ["fingerprint"] = Fingerprint.DeepClone(),
    };

    /// <exception cref="TrainingException">Missing, malformed or from another program.</exception>
    public static TrainerState Load(string path)
    {
        JsonObject o;
        try
        {
            o = JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new TrainingException($"{path}: not a JSON object");
        }
        catch (Exception e) when (e is JsonException or IOException)
        {
            throw new TrainingException($"{path}: cannot read the trainer state ({e.Message})", "the checkpoint is damaged; resume from an earlier one or start again", e);
        }
        if (o["format"]?.GetValue<string>() != FormatName || o["version"]?.GetValue<int>() != FormatVersion)
            throw new TrainingException($"{path}: not a FuseSharp trainer state (version {FormatVersion})", "resume only from checkpoints written by this version of fusesharp train");
        try
        {
            return new TrainerState
            {
                GlobalStep = o["global_step"]!.GetValue<long>(),
                TotalSteps = o["total_steps"]!.GetValue<long>(),
                ExamplesSeen = o["examples_seen"]!.GetValue<long>(),
                TokensSeen = o["tokens_seen"]!.GetValue<long>(),
                LastLoss = o["last_loss"] is JsonValue v ? v.GetValue<double>() : double.NaN,
                Fingerprint = o["fingerprint"] as JsonObject ?? [],
            };
        }
        catch (Exception e) when (e is NullReferenceException or InvalidOperationException or FormatException)
        {
            throw new TrainingException($"{path}: incomplete trainer state ({e.Message})", "the checkpoint is damaged; resume from an earlier one or start again", e);
        }
    }
}

/// <summary>
/// Checkpoints of a run, <c>OUT/checkpoint-{step}</c>: a loadable model folder (float32 weights, so a resumed run
/// continues from the exact values) plus <c>optimizer.safetensors</c> (AdamW moments) and <c>trainer_state.json</c>.
/// A checkpoint is written into a hidden temporary folder and renamed into place only when complete, so an
/// interrupted or failed save (disk full) leaves every earlier checkpoint as it was.
/// </summary>
public sealed class CheckpointManager
{
    public const string Prefix = "checkpoint-";
    public const string OptimizerFileName = "optimizer.safetensors";

    public CheckpointManager(string outputDirectory, int? keepLast = null)
    {
        if (keepLast is < 1) throw new TrainingException($"--save-total-limit {keepLast} must be at least 1");
        OutputDirectory = Path.GetFullPath(outputDirectory);
        KeepLast = keepLast;
    }

    public string OutputDirectory { get; }

    /// <summary>How many checkpoints to keep (oldest deleted first); null keeps all.</summary>
    public int? KeepLast { get; }

    /// <summary>Test hook: runs after a checkpoint's files are written, before it is moved into place.</summary>
    internal Action<string>? BeforeCommit { get; set; }

    /// <summary>The complete checkpoints, oldest first.</summary>
    public IReadOnlyList<(long Step, string Path)> List()
    {
        if (!Directory.Exists(OutputDirectory)) return [];
        var list = new List<(long, string)>();
        foreach (var dir in Directory.EnumerateDirectories(OutputDirectory, Prefix + "*"))
        {
            var name = Path.GetFileName(dir);
            if (long.TryParse(name.AsSpan(Prefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out var step) && File.Exists(Path.Combine(dir, TrainerState.FileName)))
                list.Add((step, dir));
        }
        return list.OrderBy(c => c.Item1).ToList();
    }

    /// <summary>The newest complete checkpoint, or null.</summary>
    public (long Step, string Path)? Latest()
    {
        var all = List();
        return all.Count == 0 ? null : all[^1];
    }

    /// <summary>Deletes the temporary folders of saves that never finished (an earlier run killed mid-save).</summary>
    public void RemoveIncomplete()
    {
        if (!Directory.Exists(OutputDirectory)) return;
        foreach (var dir in Directory.EnumerateDirectories(OutputDirectory, "." + Prefix + "*.tmp-*")) TryDelete(dir);
    }

    /// <summary>Writes checkpoint <paramref name="state"/>.GlobalStep and prunes old ones; returns its path.</summary>
    /// <exception cref="TrainingException">It could not be written; the earlier checkpoints are intact.</exception>
    public string Save(ITrainableModel model, AdamW optimizer, TrainerState state, string? sourceFolder)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(optimizer);
        ArgumentNullException.ThrowIfNull(state);
        long step = state.GlobalStep;
        var final = Path.Combine(OutputDirectory, Prefix + step.ToString(CultureInfo.InvariantCulture));
        var temp = Path.Combine(OutputDirectory, $".{Prefix}{step}.tmp-{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..8]}");
        try
        {
            Directory.CreateDirectory(temp);
            ModelSaver.Save(model, temp, DType.F32, sourceFolder);
            var meta = new Dictionary<string, string>(SafetensorsWriter.DefaultMetadata) { ["step"] = optimizer.StepCount.ToString(CultureInfo.InvariantCulture) };
            using (var w = ShardedSafetensorsWriter.Create(temp,
                optimizer.ExpAvg.Entries.Select(e => new TensorSpec("exp_avg." + e.Name, DType.F32, e.Shape))
                    .Concat(optimizer.ExpAvgSq.Entries.Select(e => new TensorSpec("exp_avg_sq." + e.Name, DType.F32, e.Shape))).ToList(),
                long.MaxValue, meta, "optimizer"))
            {
                for (int i = 0; i < optimizer.ExpAvg.Count; i++)
                {
                    w.WriteSingle("exp_avg." + optimizer.ExpAvg.Entries[i].Name, optimizer.ExpAvg.Span(i));
                    w.WriteSingle("exp_avg_sq." + optimizer.ExpAvgSq.Entries[i].Name, optimizer.ExpAvgSq.Span(i));
                }
                w.Commit();
            }
            // The state goes last: a folder with trainer_state.json is a complete checkpoint.
            AtomicFile.WriteAllText(Path.Combine(temp, TrainerState.FileName), state.ToJson().ToJsonString(ModelConfigJson) + "\n");
            BeforeCommit?.Invoke(temp);
            if (Directory.Exists(final))
            {
                var old = final + $".old-{Environment.ProcessId}";
                Directory.Move(final, old);
                Directory.Move(temp, final);
                TryDelete(old);
            }
            else
            {
                Directory.Move(temp, final);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FuseSharpException)
        {
            TryDelete(temp);
            var previous = Latest();
            throw new TrainingException(
                $"checkpoint at step {step} could not be written ({e.Message}); "
                + (previous is { } p ? $"the previous checkpoint {p.Path} is intact" : "no earlier checkpoint exists"),
                "free disk space (or fix permissions), then continue with --resume", e);
        }
        Prune();
        return final;
    }

    /// <summary>Loads the AdamW moments and step count of checkpoint <paramref name="checkpoint"/> into <paramref name="optimizer"/>.</summary>
    /// <exception cref="TrainingException">The file is missing or does not match the model.</exception>
    public static void LoadOptimizer(string checkpoint, AdamW optimizer)
    {
        ArgumentNullException.ThrowIfNull(optimizer);
        var path = Path.Combine(checkpoint, OptimizerFileName);
        if (!File.Exists(path)) throw new TrainingException($"{path}: not found", "the checkpoint is incomplete; resume from an earlier one");
        using var file = SafetensorsFile.Open(path);
        ArenaFiles.Load(optimizer.ExpAvg, file, "exp_avg.");
        ArenaFiles.Load(optimizer.ExpAvgSq, file, "exp_avg_sq.");
        if (!file.Metadata.TryGetValue("step", out var s) || !long.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var step))
            throw new TrainingException($"{path}: no optimizer step in the metadata", "the checkpoint was not written by fusesharp train");
        optimizer.StepCount = step;
    }

    private void Prune()
    {
        if (KeepLast is not { } keep) return;
        var all = List();
        for (int i = 0; i < all.Count - keep; i++) TryDelete(all[i].Path);
    }

    private static void TryDelete(string dir)
    {
        try { Directory.Delete(dir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    internal static readonly JsonSerializerOptions ModelConfigJson = new() { WriteIndented = true };
}
