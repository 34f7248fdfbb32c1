using System.CommandLine;
using System.Text.Json.Nodes;
using FuseSharp.Fusion.Alignment;
using FuseSharp.Fusion.Stages;
using FuseSharp.Fusion.Store;
using FuseSharp.Fusion.Vocab;

namespace FuseSharp.Cli.Commands;

/// <summary><c>fusesharp fuse align</c>: carry one source's representation onto the target's positions and vocabulary (spec §4).</summary>
internal static class FuseAlignCommand
{
    public static Command Create()
    {
        var target = new Option<string>("--target") { Description = "The target model's representation store.", Required = true };
        var source = new Option<string>("--source") { Description = "The source model's representation store (same corpus).", Required = true };
        var baseTok = new Option<string>("--base-tokenizer") { Description = "The target's tokenizer.", Required = true };
        var blendTok = new Option<string>("--blending-tokenizer") { Description = "The source's tokenizer.", Required = true };
        var method = new Option<string>("--method") { Description = "fusellm-soft (MinED; FuseLLM default), fusellm-hard (EM), fusechat-em, fusechat-mined, fusechat-ms, or copy (same vocabulary).", DefaultValueFactory = _ => "fusellm-soft" };
        var map = new Option<string?>("--map") { Description = "The vocabulary map (fuse vocab-map): MinED for the soft/mined methods, MS for fusechat-ms." };
        var fallback = new Option<string>("--fallback") { Description = "next (one-hot on the next target token; default, FuseChat v2's fix) or current (FuseLLM and FuseChat v1 as shipped).", DefaultValueFactory = _ => "next" };
        var noMatrix = new Option<bool>("--no-alignment-matrix") { Description = "fusechat-ms: 1:n positions fall back to one-hot instead of being resolved through the pieces." };
        var dtw = new Option<string?>("--dtw") { Description = "DTW cost and tie order: fusellm, fusechat-v1, fusechat-v2 (default: by method)." };
        var strings = new Option<string?>("--strings") { Description = "pieces or decoded token strings for matching (default: pieces for FuseLLM, decoded for FuseChat)." };
        var mode = new Option<string>("--dtw-mode") { Description = "banded (exact, pruned; default) or full.", DefaultValueFactory = _ => "banded" };
        var output = new Option<string>("--out") { Description = "Output aligned store folder.", Required = true };
        var shard = new Option<string?>("--shard") { Description = "I/N: this process's slice of the rows (auto[/N]: from SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX)." };
        var overwrite = new Option<bool>("--overwrite") { Description = "Replace an existing store of another configuration." };
        var baseMarker = new Option<string?>("--base-marker") { Description = "Override the target tokenizer's whitespace marker." };
        var blendingMarker = new Option<string?>("--blending-marker") { Description = "Override the source tokenizer's whitespace marker." };
        var cmd = new Command("align", "Align a source's top-k distributions to the target's tokens (DTW + vocabulary mapping).");
        foreach (var o in new Option[] { target, source, baseTok, blendTok, method, map, fallback, noMatrix, dtw, strings, mode, output, shard, overwrite, baseMarker, blendingMarker }) cmd.Options.Add(o);
        cmd.SetAction(pr => CliContext.Run(() =>
        {
            var p = new ParseResultAccessor(pr);
            bool copy = p.Get(method) == "copy";
            var m = p.Get(method) switch
            {
                "fusellm-soft" or "copy" => AlignmentMethod.FuseLlmSoft,
                "fusellm-hard" => AlignmentMethod.FuseLlmHard,
                "fusechat-em" => AlignmentMethod.FuseChatEm,
                "fusechat-mined" => AlignmentMethod.FuseChatMinEd,
                "fusechat-ms" => AlignmentMethod.FuseChatMs,
                var x => throw new FuseSharpException($"unknown --method '{x}'", "fusellm-soft, fusellm-hard, fusechat-em, fusechat-mined, fusechat-ms or copy"),
            };
            var b = FuseTokenizers.ForAlign(p.Get(baseTok)!, p.Get(baseMarker));
            var s = FuseTokenizers.ForAlign(p.Get(blendTok)!, p.Get(blendingMarker));
            VocabMap? vmap = p.Get(map) is { } mp ? VocabMap.Read(mp, s.Vocabulary, b.Vocabulary) : null;
            DtwVariant? variant = null;
            if (p.Get(dtw) is { } dv)
            {
                if (!DtwVariants.TryParse(dv, out var v)) throw new FuseSharpException($"unknown --dtw '{dv}'", "fusellm, fusechat-v1 or fusechat-v2");
                variant = v;
            }
            var options = new AlignStageOptions
            {
                Copy = copy,
                Aligner = new DistributionAlignerOptions
                {
                    Method = m,
                    Fallback = p.Get(fallback) switch { "next" => FallbackTarget.Next, "current" => FallbackTarget.Current, var x => throw new FuseSharpException($"--fallback must be next or current, got '{x}'") },
                    UseTokenAlignmentMatrix = !p.Get(noMatrix),
                },
                Variant = variant,
                Decoded = p.Get(strings) switch { null => null, "pieces" => false, "decoded" => true, var x => throw new FuseSharpException($"--strings must be pieces or decoded, got '{x}'") },
                Mode = p.Get(mode) switch { "banded" => DtwMode.Banded, "full" => DtwMode.Full, var x => throw new FuseSharpException($"--dtw-mode must be banded or full, got '{x}'") },
                Shard = ShardSpec.Parse(p.Get(shard)),
                Overwrite = p.Get(overwrite),
                Info = p.Get(map) is { } mp2 ? new JsonObject { ["map_sha256"] = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(mp2))) } : null,
            };
            var report = AlignStage.Run(StoreReader.Open(p.Get(target)!), StoreReader.Open(p.Get(source)!), b, s, vmap, p.Get(output)!, options, ConsoleProgress.Instance, CliContext.Cancellation);
            FuseDataOptions.Finish(report, p.Get(output)!);
            return 0;
        }));
        return cmd;
    }
}
