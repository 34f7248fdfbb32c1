using System.CommandLine;
using FuseSharp.Fusion.Stages;
using FuseSharp.Fusion.Text;
using FuseSharp.Fusion.Vocab;

namespace FuseSharp.Cli.Commands;

/// <summary>
/// <c>fusesharp fuse vocab-map --base TOKENIZER --blending TOKENIZER --type em|mined|ms [--corpus FILE] --out MAP.json</c>:
/// the blending → base vocabulary map as FuseLLM writes it (spec §3).
/// </summary>
internal static class FuseVocabMapCommand
{
    public static Command Create()
    {
        var @base = new Option<string>("--base") { Description = "The base (target) tokenizer: a folder, tokenizer.json, tokenizer.model or vocab.json.", Required = true };
        var blending = new Option<string>("--blending") { Description = "The blending (source) tokenizer.", Required = true };
        var type = new Option<string>("--type") { Description = "em (exact after marker harmonisation), mined (nearest by edit distance; FuseLLM), ms (co-alignment statistics; FuseChat v2).", Required = true };
        var corpus = new Option<string?>("--corpus") { Description = "ms: the corpus (JSONL) whose DTW co-alignments give the statistics." };
        var format = new Option<string>("--corpus-format") { Description = "text (default) or chat.", DefaultValueFactory = _ => "text" };
        var output = new Option<string>("--out") { Description = "The map file (MAP.json).", Required = true };
        var fileFormat = new Option<string>("--format") { Description = "fusellm ({\"blending piece\": \"base piece\"}, default) or ids (FuseChat v2's list of base ids).", DefaultValueFactory = _ => "fusellm" };
        var scorer = new Option<string>("--ms-scorer") { Description = "ms: faithful (the shipped d * sigmoid(count) scorer; default) or frequency (most co-aligned, ties by distance).", DefaultValueFactory = _ => "faithful" };
        var asShipped = new Option<bool>("--fusechat-v2-as-shipped") { Description = "mined: FuseChat v2's shipped map (non-exact tokens all go to the first base entry), to reproduce its runs." };
        var baseMarker = new Option<string?>("--base-marker") { Description = "Override the base tokenizer's whitespace marker (▁ or Ġ)." };
        var blendingMarker = new Option<string?>("--blending-marker") { Description = "Override the blending tokenizer's whitespace marker." };
        var cmd = new Command("vocab-map", "Map the blending vocabulary onto the base vocabulary (EM, MinED or MS).");
        foreach (var o in new Option[] { @base, blending, type, corpus, format, output, fileFormat, scorer, asShipped, baseMarker, blendingMarker }) cmd.Options.Add(o);
        cmd.SetAction(pr => CliContext.Run(() =>
        {
            var p = new ParseResultAccessor(pr);
            var mapType = p.Get(type) switch
            {
                "em" => VocabMapType.Em,
                "mined" => VocabMapType.MinEd,
                "ms" => VocabMapType.Ms,
                var x => throw new FuseSharpException($"--type must be em, mined or ms, got '{x}'"),
            };
            var baseTok = FuseTokenizers.Load(p.Get(@base)!);
            var blendTok = FuseTokenizers.Load(p.Get(blending)!);
            var baseVocab = FuseTokenizers.Vocabulary(baseTok, p.Get(@base)!, p.Get(baseMarker));
            var blendVocab = FuseTokenizers.Vocabulary(blendTok, p.Get(blending)!, p.Get(blendingMarker));
            CoAlignmentCounts? counts = null;
            if (mapType == VocabMapType.Ms)
            {
                var c = p.Get(corpus) ?? throw new FuseSharpException("--type ms needs --corpus FILE", "the statistics come from DTW co-alignments over a corpus tokenized with both tokenizers");
                var cf = p.Get(format) switch { "text" => CorpusFormat.Text, "chat" => CorpusFormat.Chat, var x => throw new FuseSharpException($"--corpus-format must be text or chat, got '{x}'") };
                counts = VocabMapStage.CountCorpus(c, baseTok, blendTok, baseVocab, blendVocab, cf,
                    Fusion.Text.ReferenceSequences.PerTokenDecoder(baseTok, baseVocab, FuseTokenizers.CleanUpSpaces(p.Get(@base)!)),
                    Fusion.Text.ReferenceSequences.PerTokenDecoder(blendTok, blendVocab, FuseTokenizers.CleanUpSpaces(p.Get(blending)!)),
                    ConsoleProgress.Instance, CliContext.Cancellation);
            }
            var ms = p.Get(scorer) switch { "faithful" => MsScorer.Faithful, "frequency" => MsScorer.Frequency, var x => throw new FuseSharpException($"--ms-scorer must be faithful or frequency, got '{x}'") };
            VocabMap map;
            Fusion.Report.StageReport report;
            if (p.Get(asShipped))
            {
                if (mapType != VocabMapType.MinEd) throw new FuseSharpException("--fusechat-v2-as-shipped goes with --type mined");
                map = VocabMapper.MinEdFuseChatV2AsShipped(blendVocab, baseVocab);
                report = new Fusion.Report.StageReport("vocab-map");
            }
            else
            {
                (map, report) = VocabMapStage.Run(blendVocab, baseVocab, mapType, counts, ms, ConsoleProgress.Instance, CliContext.Cancellation);
            }
            var outPath = p.Get(output)!;
            switch (p.Get(fileFormat))
            {
                case "fusellm": map.WriteFuseLlmJson(outPath, baseVocab); break;
                case "ids": map.WriteIdListJson(outPath, map.UnmappedId ?? baseVocab.UnkId ?? baseVocab.EosId ?? 0); break;
                case var x: throw new FuseSharpException($"--format must be fusellm or ids, got '{x}'");
            }
            report.Write(Path.ChangeExtension(outPath, null) + ".report");
            Console.Error.Write(report.Summary());
            Console.Error.WriteLine($"vocab-map: {map.Stats.Entries} of {map.Count} blending tokens mapped -> {outPath}");
            return 0;
        }));
        return cmd;
    }
}
