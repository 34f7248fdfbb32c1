using System.Text.Json.Nodes;
using FuseSharp.Fusion.Alignment;
using FuseSharp.Fusion.Vocab;
using Xunit;

namespace FuseSharp.Tests.Fusion;

public class DistributionAlignerTests
{
    public static TheoryData<string, string, string> FuseLlmCases()
    {
        var data = new TheoryData<string, string, string>();
        foreach (var l in FusionFixtures.Lines("dist_align_fusellm.jsonl"))
            foreach (var r in new[] { "hard/current", "hard/next", "soft/current", "soft/next" })
                data.Add(l["snippet"]!.GetValue<string>(), l["blending"]!.GetValue<string>(), r);
        return data;
    }

    [Theory]
    [MemberData(nameof(FuseLlmCases))]
    public void FuseLlmTransformStepLogits(string snippet, string blending, string result)
    {
        var line = FusionFixtures.Lines("dist_align_fusellm.jsonl").Single(l => l["snippet"]!.GetValue<string>() == snippet && l["blending"]!.GetValue<string>() == blending);
        var src = TestVocabularies.Get(blending);
        var map = blending == "neox" ? TestVocabularies.NeoxToLlamaMinEd : MapFromEntries(line["minED_map_entries_used"]!.AsObject(), src);
        var options = new DistributionAlignerOptions
        {
            Method = result.StartsWith("hard", StringComparison.Ordinal) ? AlignmentMethod.FuseLlmHard : AlignmentMethod.FuseLlmSoft,
            Fallback = result.EndsWith("current", StringComparison.Ordinal) ? FallbackTarget.Current : FallbackTarget.Next,
        };
        var basePieces = FusionFixtures.Strings(line["base_pieces"]);
        var blendPieces = FusionFixtures.Strings(line["blending_pieces"]);
        var dtw = TokenDtw.Align(blendPieces, basePieces, DtwVariant.FuseLlm, src.Marker, "▁");
        var aligned = new DistributionAligner(TestVocabularies.Llama2, src, map, options).Align(Input(line, basePieces, blendPieces, dtw));
        AssertResult(line["results"]![result]!, aligned);
    }

    public static TheoryData<string, string, string> FuseChatCases()
    {
        var data = new TheoryData<string, string, string>();
        foreach (var l in FusionFixtures.Lines("dist_align_fusechat_v2.jsonl"))
            foreach (var r in new[] { "hard", "default_matrix", "default_nomatrix", "soft_intended" })
                data.Add(l["snippet"]!.GetValue<string>(), l["blending"]!.GetValue<string>(), r);
        return data;
    }

    [Theory]
    [MemberData(nameof(FuseChatCases))]
    public void FuseChatV2TransformStepLogits(string snippet, string blending, string result)
    {
        var line = FusionFixtures.Lines("dist_align_fusechat_v2.jsonl").Single(l => l["snippet"]!.GetValue<string>() == snippet && l["blending"]!.GetValue<string>() == blending);
        var src = TestVocabularies.Get(blending);
        var baseDecoded = FusionFixtures.Strings(line["base_decoded"]);
        var blendDecoded = FusionFixtures.Strings(line["blending_decoded"]);
        var dtw = TokenDtw.Align(blendDecoded, baseDecoded, DtwVariant.FuseChatV2, src.Marker, "▁");
        Assert.Equal(FusionFixtures.Show(FusionFixtures.IntRows(line["base_to_blending"])), FusionFixtures.Show(dtw.BaseToBlending()));
        Assert.Equal(line["dtw_total_cost"]!.GetValue<double>(), dtw.TotalCost);
        var (method, matrix, mapName) = result switch
        {
            "hard" => (AlignmentMethod.FuseChatEm, false, (string?)null),
            "default_matrix" => (AlignmentMethod.FuseChatMs, true, "ms_blending_to_base_used"),
            "default_nomatrix" => (AlignmentMethod.FuseChatMs, false, "ms_blending_to_base_used"),
            _ => (AlignmentMethod.FuseChatMinEd, false, "minED_blending_to_base_used"),
        };
        VocabMap? map = mapName is null ? null : IdMap(line[mapName]!.AsObject(), src);
        var options = new DistributionAlignerOptions { Method = method, UseTokenAlignmentMatrix = matrix, Fallback = FallbackTarget.Next };
        var aligned = new DistributionAligner(TestVocabularies.Llama2, src, map, options).Align(Input(line, baseDecoded, blendDecoded, dtw));
        AssertResult(line["results"]![result]!, aligned);
    }

    [Fact]
    public void OutcomesDescribeEveryPosition()
    {
        // C++ against NeoX: NeoX merges whitespace runs that Llama splits, so some Llama tokens span several NeoX tokens.
        var line = FusionFixtures.Lines("dist_align_fusellm.jsonl").First(l => l["snippet"]!.GetValue<string>() == "code_cpp_a" && l["blending"]!.GetValue<string>() == "neox");
        var basePieces = FusionFixtures.Strings(line["base_pieces"]);
        var blendPieces = FusionFixtures.Strings(line["blending_pieces"]);
        var dtw = TokenDtw.Align(blendPieces, basePieces, DtwVariant.FuseLlm, "Ġ", "▁");
        var aligned = new DistributionAligner(TestVocabularies.Llama2, TestVocabularies.Neox, TestVocabularies.NeoxToLlamaMinEd, new DistributionAlignerOptions()).Align(Input(line, basePieces, blendPieces, dtw));
        for (int t = 0; t < aligned.Positions; t++)
        {
            bool oneHot = aligned.Outcomes[t] is AlignmentOutcome.FallbackUnmatched or AlignmentOutcome.FallbackOneToMany;
            Assert.Equal(oneHot || aligned.Outcomes[t] == AlignmentOutcome.Empty, aligned.SourcePositions[t] < 0);
            if (oneHot) Assert.Equal([1.0f], aligned.Lists.ValuesAt(t).ToArray());
        }
        Assert.Contains(AlignmentOutcome.Exact, aligned.Outcomes);
        Assert.Contains(AlignmentOutcome.FallbackOneToMany, aligned.Outcomes);
        Assert.Contains(AlignmentOutcome.FallbackUnmatched, aligned.Outcomes);
    }

    [Fact]
    public void SoftModeWithoutAMapIsAClearError()
    {
        var e = Assert.Throws<FuseSharp.Fusion.FusionException>(() => new DistributionAligner(TestVocabularies.Llama2, TestVocabularies.Neox, null, new DistributionAlignerOptions { Method = AlignmentMethod.FuseLlmSoft }));
        Assert.Contains("vocab-map", e.Hint, StringComparison.Ordinal);
    }

    internal static AlignmentInput Input(JsonObject line, string[] baseTokens, string[] blendTokens, DtwAlignment dtw)
    {
        var topIds = FusionFixtures.IntRows(line["blending_topk_ids"]);
        var topLogits = FusionFixtures.FloatRows(line["blending_topk_logits"]);
        int k = topIds[0].Length;
        return new AlignmentInput(FusionFixtures.Ints(line["base_ids"]), baseTokens, FusionFixtures.Ints(line["blending_ids"]), blendTokens, dtw,
            topIds.SelectMany(r => r).ToArray(), topLogits.SelectMany(r => r).ToArray(), k);
    }

    private static void AssertResult(JsonNode expected, AlignedDocument aligned)
    {
        var ids = FusionFixtures.IntRows(expected["ids"]);
        var values = FusionFixtures.FloatRows(expected["values"]);
        Assert.Equal(ids.Length, aligned.Positions);
        for (int t = 0; t < ids.Length; t++)
        {
            Assert.True(ids[t].SequenceEqual(aligned.Lists.IdsAt(t).ToArray()), $"position {t}: expected ids [{string.Join(",", ids[t])}], got [{string.Join(",", aligned.Lists.IdsAt(t).ToArray())}] ({aligned.Outcomes[t]})");
            Assert.True(values[t].SequenceEqual(aligned.Lists.ValuesAt(t).ToArray()), $"position {t}: values differ");
        }
    }

    private static VocabMap MapFromEntries(JsonObject entries, TokenVocabulary blending)
    {
        var path = Path.Combine(Path.GetTempPath(), $"fusesharp-map-{Guid.NewGuid():N}.json");
        try
        {
            File.WriteAllText(path, entries.ToJsonString());
            return VocabMap.Read(path, blending, TestVocabularies.Llama2);
        }
        finally
        {
            File.Delete(path);
        }
    }

    private static VocabMap IdMap(JsonObject entries, TokenVocabulary blending)
    {
        var target = new int[blending.Count];
        Array.Fill(target, -1);
        foreach (var (k, v) in entries) target[int.Parse(k, System.Globalization.CultureInfo.InvariantCulture)] = v!.GetValue<int>();
        return new VocabMap(VocabMapType.Ms, target, VocabMap.HarmonisedKeys(blending, "▁"), null, new VocabMapStats(0, 0, 0, 0, 0), unmappedId: 0);
    }
}
