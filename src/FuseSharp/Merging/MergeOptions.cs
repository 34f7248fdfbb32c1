using System.Globalization;
using System.Text.RegularExpressions;

namespace FuseSharp.Merging;

/// <summary>How a merge runs (the CLI flags of <c>fusesharp merge</c>).</summary>
public sealed record MergeOptions
{
    /// <summary>Default shard budget: 5 GB, mergekit's default (the writer compares bytes).</summary>
    public const long DefaultShardBytes = 5_000_000_000;

    /// <summary>Seed of the counter-based random streams (DARE, DELLA, Arcee Fusion sampling). mergekit is unseeded by default; FuseSharp uses 0.</summary>
    public long Seed { get; init; }

    /// <summary>Largest shard in bytes.</summary>
    public long OutShardBytes { get; init; } = DefaultShardBytes;

    /// <summary>Copy (or build) the tokenizer into the output folder.</summary>
    public bool CopyTokenizer { get; init; } = true;

    /// <summary>Write README.md (model card) and fusesharp_config.yml.</summary>
    public bool WriteModelCard { get; init; } = true;

    /// <summary>Allow models of different architectures (mergekit's <c>--allow-crimes</c>).</summary>
    public bool AllowCrimes { get; init; }

    /// <summary>Replace an existing non-empty output folder.</summary>
    public bool Overwrite { get; init; }

    /// <summary>
    /// Runs candidate models on examples for LM-Cocktail's <c>example_data</c> (the engine's
    /// <c>FuseSharp.Evaluation.ExampleLossScorer</c>; the merge command sets it). Null: data-driven weights are refused.
    /// </summary>
    public Methods.IExampleLossScorer? ExampleLossScorer { get; init; }

    /// <summary>
    /// Parses a size such as <c>5GB</c>, <c>500M</c>, <c>2GiB</c>, <c>5B</c> (mergekit's suffixes K/M/B are thousands,
    /// millions, billions; here B after a number alone means billion as in mergekit, and "GB"/"GiB" are bytes).
    /// </summary>
    public static long ParseSize(string text)
    {
        var m = Regex.Match(text.Trim(), @"^(?<n>\d+(?:\.\d+)?)\s*(?<u>[a-zA-Z]*)$", RegexOptions.CultureInvariant);
        if (!m.Success) throw new FuseSharpException($"cannot read size '{text}'", "write e.g. 5GB, 500MB, 2GiB or 1000000000");
        double n = double.Parse(m.Groups["n"].Value, CultureInfo.InvariantCulture);
        double factor = m.Groups["u"].Value.ToUpperInvariant() switch
        {
            "" => 1,
            "K" or "KB" => 1e3,
            "M" or "MB" => 1e6,
            "B" or "G" or "GB" => 1e9,
            "T" or "TB" => 1e12,
            "KIB" => 1024.0,
            "MIB" => 1024.0 * 1024,
            "GIB" => 1024.0 * 1024 * 1024,
            "TIB" => 1024.0 * 1024 * 1024 * 1024,
            var u => throw new FuseSharpException($"unknown size unit '{u}' in '{text}'", "use K, M, G/B, T (decimal) or KiB, MiB, GiB"),
        };
        var bytes = n * factor;
        if (bytes < 1 || bytes > long.MaxValue) throw new FuseSharpException($"size '{text}' is out of range", "give a positive size such as 5GB");
        return (long)bytes;
    }
}
