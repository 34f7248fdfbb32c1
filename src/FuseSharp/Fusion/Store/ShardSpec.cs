using System.Globalization;

namespace FuseSharp.Fusion.Store;

/// <summary>
/// Which slice of the corpus this process works on: shard <see cref="Index"/> of <see cref="Count"/>, a contiguous
/// range of rows. Shards are independent, so a scheduler can run them on many machines (a Slurm job array, a
/// Kubernetes indexed Job) and the part files they write combine by copying them into one folder.
/// </summary>
public readonly record struct ShardSpec(int Index, int Count)
{
    /// <summary>The whole corpus in one shard.</summary>
    public static ShardSpec All => new(0, 1);

    /// <summary>Rows [Start, End) of a corpus of <paramref name="rows"/> rows for this shard (balanced: sizes differ by at most one).</summary>
    public (long Start, long End) Range(long rows) => (rows * Index / Count, rows * (Index + 1) / Count);

    public override string ToString() => $"{Index}/{Count}";

    /// <summary>
    /// Parses <c>--shard</c>: <c>I/N</c> (0-based I), or <c>auto</c> / <c>auto/N</c> to take I from the environment:
    /// <c>SLURM_ARRAY_TASK_ID</c> (minus <c>SLURM_ARRAY_TASK_MIN</c>, N defaulting to <c>SLURM_ARRAY_TASK_COUNT</c>) or
    /// Kubernetes' <c>JOB_COMPLETION_INDEX</c> (N must be given). Null or empty = the whole corpus.
    /// </summary>
    /// <exception cref="FusionException">The value or the environment does not give a valid shard.</exception>
    public static ShardSpec Parse(string? value, Func<string, string?>? environment = null)
    {
        environment ??= Environment.GetEnvironmentVariable;
        if (string.IsNullOrWhiteSpace(value)) return All;
        var parts = value.Trim().Split('/');
        if (parts.Length > 2) throw Bad(value);
        int? count = null;
        if (parts.Length == 2)
        {
            if (!int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int n) || n <= 0) throw Bad(value);
            count = n;
        }
        int index;
        if (parts[0].Equals("auto", StringComparison.OrdinalIgnoreCase))
        {
            if (Int(environment, "SLURM_ARRAY_TASK_ID") is int slurm)
            {
                index = slurm - (Int(environment, "SLURM_ARRAY_TASK_MIN") ?? 0);
                count ??= Int(environment, "SLURM_ARRAY_TASK_COUNT");
            }
            else if (Int(environment, "JOB_COMPLETION_INDEX") is int k8s)
            {
                index = k8s;
            }
            else
            {
                throw new FusionException("--shard auto: neither SLURM_ARRAY_TASK_ID nor JOB_COMPLETION_INDEX is set",
                    "run inside a Slurm job array or a Kubernetes indexed Job, or give the shard explicitly as --shard I/N");
            }
            if (count is null)
                throw new FusionException("--shard auto: the number of shards is unknown", "give it as --shard auto/N (N = the array size / the Job's completions)");
        }
        else if (!int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out index) || count is null)
        {
            throw Bad(value);
        }
        if (index < 0 || index >= count)
            throw new FusionException($"--shard {value}: shard index {index} is outside 0..{count - 1}", "shard indices are 0-based: --shard 0/8 .. --shard 7/8");
        return new ShardSpec(index, count.Value);
    }

    private static int? Int(Func<string, string?> env, string name) =>
        env(name) is { Length: > 0 } s && int.TryParse(s, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int v) ? v : null;

    private static FusionException Bad(string value) =>
        new($"--shard '{value}' is not I/N, auto or auto/N", "e.g. --shard 3/8 (the 4th of 8 slices), or --shard auto/8 inside a job array");
}
