using System.Diagnostics;
using FuseSharp.Fusion.Alignment;
using FuseSharp.Fusion.Vocab;
using Xunit;
using Xunit.Abstractions;

namespace FuseSharp.Tests.Fusion;

public class VocabMapTests(ITestOutputHelper output)
{
    [Fact]
    public void MinEdMatchesFuseLlmVocabMapping()
    {
        var sw = Stopwatch.StartNew();
        var map = TestVocabularies.NeoxToLlamaMinEd;
        output.WriteLine($"MinED 50277 x 32000: {sw.Elapsed.TotalSeconds:0.00} s");
        var f = FusionFixtures.Json("vocab_map_minED_neox_to_llama2.json");
        Assert.Equal(f["vocab_totals"]!["n"]!.GetValue<int>(), map.Count);
        Assert.Equal(f["vocab_totals"]!["n_exact"]!.GetValue<int>(), map.Stats.Exact);
        int checkedEntries = 0;
        foreach (var e in f["entries"]!.AsArray())
        {
            int id = e![0]!.GetValue<int>();
            Assert.Equal(e[1]!.GetValue<string>(), map.Key(id));
            Assert.True(e[3]!.GetValue<int>() == map[id], $"neox {id} {e[1]}: expected {e[2]} ({e[3]}), got {TestVocabularies.Llama2.Piece(map[id])} ({map[id]})");
            Assert.Equal(e[4]!.GetValue<int>(), map.Distances![id]);
            checkedEntries++;
        }
        Assert.Equal(f["n_entries"]!.GetValue<int>(), checkedEntries);
    }

    [Fact]
    public void BucketedSearchEqualsFullScan()
    {
        var llama = TestVocabularies.Llama2;
        var index = new VocabMapper.NearestPieceIndex(llama);
        var search = index.NewSearch();
        var rng = new Random(11);
        string[] samples = ["", "▁", "Ċ", "Ã©", "<|endoftext|>", "▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁x", "😀▁the"];
        var keys = samples.Concat(Enumerable.Range(0, 60).Select(_ => TestVocabularies.Neox.Piece(rng.Next(TestVocabularies.Neox.Count))!.Replace('Ġ', '▁')));
        foreach (var key in keys)
        {
            var (id, d) = search.Nearest(key);
            var (rid, rd) = VocabMapper.NearestReference(key, llama);
            Assert.True(rid == id && rd == d, $"{key}: fast ({id}, {d}) vs reference ({rid}, {rd})");
        }
    }

    [Fact]
    public void FuseLlmJsonIsWrittenAsPythonDoesAndReadsBack()
    {
        var map = TestVocabularies.NeoxToLlamaMinEd;
        var path = Path.Combine(Path.GetTempPath(), $"fusesharp-map-{Guid.NewGuid():N}.json");
        try
        {
            map.WriteFuseLlmJson(path, TestVocabularies.Llama2);
            var text = File.ReadAllText(path);
            Assert.StartsWith("{\"<|endoftext|>\": \"Context\", \"<|padding|>\": \"\\u2581padding\", \"!\": \"!\"", text, StringComparison.Ordinal);
            var back = VocabMap.Read(path, TestVocabularies.Neox, TestVocabularies.Llama2);
            for (int i = 0; i < map.Count; i++) Assert.Equal(map[i], back[i]);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void FuseChatV2MinEdAsShippedMapsEveryNonExactTokenToTheFirstPivotEntry()
    {
        var map = VocabMapper.MinEdFuseChatV2AsShipped(TestVocabularies.Qwen2, TestVocabularies.Llama2);
        foreach (var sample in FusionFixtures.Json("fusechat_v2_minED_as_shipped.json")["find_best_mapping_samples"]!.AsArray())
        {
            int src = sample!["source_id"]!.GetValue<int>();
            Assert.Equal(sample["source_piece"]!.GetValue<string>(), TestVocabularies.Qwen2.Piece(src));
            Assert.Equal(sample["mapped_pivot_id"]!.GetValue<int>(), map[src]);
        }
    }

    [Fact]
    public void ExactMapKeepsOnlyHarmonisedMatches()
    {
        var map = VocabMapper.Exact(TestVocabularies.Neox, TestVocabularies.Llama2);
        Assert.Equal(20362, map.Stats.Exact);
        Assert.Equal(TestVocabularies.Llama2.Id("▁the"), map[TestVocabularies.Neox.Id("Ġthe")!.Value]);
        Assert.Equal(-1, map[0]); // <|endoftext|> is no Llama piece
    }

    public static TheoryData<string> MsSources() => ["ms_mapping_qwen2_to_llama2.json", "ms_mapping_neox_to_llama2.json"];

    [Theory]
    [MemberData(nameof(MsSources))]
    public void MsCountsAndMapMatchFuseChatV2(string file)
    {
        var f = FusionFixtures.Json(file);
        var blending = TestVocabularies.Get(f["source"]!.GetValue<string>());
        var llama = TestVocabularies.Llama2;
        var counts = new CoAlignmentCounts();
        foreach (var doc in f["documents"]!.AsArray())
        {
            var a = TokenDtw.Align(FusionFixtures.Strings(doc!["blending_decoded"]), FusionFixtures.Strings(doc["base_decoded"]), DtwVariant.FuseChatV2, "Ġ", "▁");
            Assert.Equal(FusionFixtures.Show(FusionFixtures.IntRows(doc["base_to_blending_positions"])), FusionFixtures.Show(a.BaseToBlending()));
            counts.Add(FusionFixtures.Ints(doc["base_ids"]), FusionFixtures.Ints(doc["blending_ids"]), a);
        }
        var expected = f["counts"]!.AsArray().Select(c => (c![0]!.GetValue<int>(), c[1]!.GetValue<int>(), c[2]!.GetValue<int>())).ToList();
        Assert.Equal(expected, counts.Entries().ToList());

        var map = MsVocabMapper.Build(counts, blending, llama);
        var list = map.ToIdList(map.UnmappedId!.Value);
        Assert.Equal(f["default_pivot_id"]!.GetValue<int>(), map.UnmappedId);
        var want = f["blending_to_base"]!.AsObject().ToDictionary(p => int.Parse(p.Key, System.Globalization.CultureInfo.InvariantCulture), p => p.Value!.GetValue<int>());
        for (int s = 0; s < list.Length; s++)
        {
            int e = want.TryGetValue(s, out int v) ? v : f["default_pivot_id"]!.GetValue<int>();
            Assert.True(e == list[s], $"source {s} '{blending.Piece(s)}': expected {e} '{llama.Piece(e)}', got {list[s]} '{llama.Piece(list[s])}'");
        }
    }
}
