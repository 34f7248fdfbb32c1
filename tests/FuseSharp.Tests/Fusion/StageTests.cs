using System.Text.Json.Nodes;
using FuseSharp.Fusion;
using FuseSharp.Fusion.Alignment;
using FuseSharp.Fusion.Fuse;
using FuseSharp.Fusion.Stages;
using FuseSharp.Fusion.Store;
using FuseSharp.Tensors;
using Xunit;

namespace FuseSharp.Tests.Fusion;

/// <summary>The stages over stores, end to end on the fixture documents: represent-like stores → align → pack → fuse.</summary>
public sealed class StageTests : ScratchFolderTest
{

    private static StoreManifest RepresentationManifest(long rows, string corpus, string model) => new()
    {
        Kind = "representation",
        Rows = rows,
        CorpusSha256 = corpus,
        RowsPerPart = 2,
        K = 10,
        HasLabels = true,
        HasTokenCe = true,
        Metrics = ["metric_ce"],
        Info = new JsonObject { ["model"] = model },
    };

    /// <summary>Target (llama2) and source (neox, qwen2) representation stores of the six fusion_blocks documents.</summary>
    private (string Target, string Neox, string Qwen, List<FusionRow> Docs) BuildStores() => BuildStores(Dir);

    internal static (string Target, string Neox, string Qwen, List<FusionRow> Docs) BuildStores(string dir)
    {
        var blocks = FusionFixtures.Lines("fusion_blocks.jsonl").ToList();
        var docs = FusionTests.Documents(blocks);
        var names = new List<string>();
        foreach (var b in blocks)
            foreach (var d in b["documents"]!.AsArray())
                if (!names.Contains(d![0]!.GetValue<string>())) names.Add(d[0]!.GetValue<string>());
        var hashes = names.Select(StoreManifest.HashText).ToList();
        var corpus = StoreManifest.HashCorpus(hashes);
        string target = Path.Combine(dir, "target"), neox = Path.Combine(dir, "neox"), qwen = Path.Combine(dir, "qwen2");
        var lines = FusionFixtures.Lines("dist_align_fusellm.jsonl");
        Write(target, RepresentationManifest(docs.Count, corpus, "llama2"), i => new StoreRow
        {
            Index = i, Hash = hashes[i], InputIds = docs[i].InputIds, Labels = docs[i].Labels, TopK = docs[i].Target,
            TokenCe = Enumerable.Repeat(1.5f, docs[i].Positions).ToArray(), Metrics = [docs[i].Metrics[0]],
        });
        for (int s = 0; s < 2; s++)
        {
            string src = s == 0 ? "neox" : "qwen2";
            Write(s == 0 ? neox : qwen, RepresentationManifest(docs.Count, corpus, src), i =>
            {
                var line = lines.Single(l => l["snippet"]!.GetValue<string>() == names[i] && l["blending"]!.GetValue<string>() == src);
                var ids = FusionFixtures.Ints(line["blending_ids"]);
                return new StoreRow
                {
                    Index = i, Hash = hashes[i], InputIds = ids, Labels = ids,
                    TopK = SparseRows.Dense(FusionFixtures.IntRows(line["blending_topk_ids"]).SelectMany(r => r).ToArray(), FusionFixtures.FloatRows(line["blending_topk_logits"]).SelectMany(r => r).ToArray(), 10),
                    TokenCe = Enumerable.Range(0, ids.Length).Select(t => (float)(Half)(t * 0.01)).ToArray(),
                    Metrics = [docs[i].Metrics[1 + s]],
                };
            });
        }
        return (target, neox, qwen, docs);
    }

    private static void Write(string folder, StoreManifest m, Func<int, StoreRow> row)
    {
        var w = StoreWriter.Open(folder, m, ShardSpec.All);
        foreach (var part in w.Pending) w.Write(part, Enumerable.Range(0, part.Rows).Select(r => row((int)part.FirstRow + r)).ToList());
    }

    internal static void AlignSources(string target, string neox, string qwen, string alignedNeox, string alignedQwen, ShardSpec? shard = null)
    {
        var llama = new AlignTokenizer(TestVocabularies.Llama2);
        var t = StoreReader.Open(target);
        var options = new AlignStageOptions { Aligner = new DistributionAlignerOptions { Method = AlignmentMethod.FuseLlmSoft, Fallback = FallbackTarget.Current }, Shard = shard ?? ShardSpec.All };
        var report = AlignStage.Run(t, StoreReader.Open(neox), llama, new AlignTokenizer(TestVocabularies.Neox), TestVocabularies.NeoxToLlamaMinEd, alignedNeox, options);
        Assert.Contains(report.Group("target positions"), g => g.Label.StartsWith("matched 1:1 (exact)", StringComparison.Ordinal) && g.Count > 0);
        AlignStage.Run(t, StoreReader.Open(qwen), llama, new AlignTokenizer(TestVocabularies.Qwen2), null, alignedQwen,
            options with { Aligner = new DistributionAlignerOptions { Method = AlignmentMethod.FuseLlmHard, Fallback = FallbackTarget.Current } });
    }

    [Fact]
    public void AlignPackFuseReproduceTheReferenceBlocks()
    {
        var (target, neox, qwen, _) = BuildStores();
        string an = Path.Combine(Dir, "aligned-neox"), aq = Path.Combine(Dir, "aligned-qwen2"), packed = Path.Combine(Dir, "packed"), fused = Path.Combine(Dir, "fused");
        AlignSources(target, neox, qwen, an, aq);
        var joined = FusionDataset.Join(StoreReader.Open(target), [StoreReader.Open(an), StoreReader.Open(aq)]);
        var packReport = PackStage.Run(joined, packed, new PackingOptions { BlockSize = 128 });
        var blocks = FusionFixtures.Lines("fusion_blocks.jsonl").ToList();
        var packedRows = StoreReader.Open(packed).ReadRows().ToList();
        Assert.Equal(blocks.Count, packedRows.Count);
        for (int b = 0; b < blocks.Count; b++)
        {
            Assert.Equal(FusionFixtures.Ints(blocks[b]["input_ids"]), packedRows[b].InputIds);
            Assert.Equal(FusionFixtures.IntRows(blocks[b]["per_step_aligned_indices_0"]).SelectMany(x => x), packedRows[b].Lists[0].Rows.Ids);
            Assert.Equal(FusionFixtures.FloatRows(blocks[b]["per_step_aligned_logits_1"]).SelectMany(x => x), packedRows[b].Lists[1].Rows.Values);
            Assert.Equal(blocks[b]["metric_ce_aligned_1"]!.GetValue<double>(), packedRows[b].Metrics[2]);
        }
        FuseStage.Run(FusionDataset.FromDataset(StoreReader.Open(packed)), fused, new FusionOptions(), ShardSpec.All);
        var fusedRows = StoreReader.Open(fused).ReadRows().ToList();
        for (int b = 0; b < blocks.Count; b++)
        {
            Assert.All(fusedRows[b].Choice!, c => Assert.Equal(blocks[b]["fusion"]!["minCE_choice"]!.GetValue<int>(), c));
            foreach (var pos in blocks[b]["positions"]!.AsArray())
            {
                int t = pos!["t"]!.GetValue<int>();
                if (t >= fusedRows[b].Positions) continue;
                var want = pos["minCE_fused"]!.AsArray().Select(e => (e![0]!.GetValue<int>(), (float)e[1]!.GetValue<double>())).OrderBy(e => e.Item1);
                var l = fusedRows[b].Lists[0].Rows;
                Assert.Equal(want, l.IdsAt(t).ToArray().Zip(l.ValuesAt(t).ToArray()).Select(x => (x.First, x.Second)));
            }
        }
        Assert.Equal(blocks.Count, (long)packReport.ToJson()["values"]!["blocks"]!.GetValue<long>());
    }

    [Fact]
    public void ShardedAlignEqualsUnsharded()
    {
        var (target, neox, qwen, _) = BuildStores();
        string whole = Path.Combine(Dir, "whole"), wq = Path.Combine(Dir, "wq");
        AlignSources(target, neox, qwen, whole, wq);
        string combined = Path.Combine(Dir, "combined");
        for (int i = 0; i < 2; i++)
        {
            string machine = Path.Combine(Dir, $"m{i}");
            AlignSources(target, neox, qwen, machine, Path.Combine(Dir, $"mq{i}"), new ShardSpec(i, 2));
            Directory.CreateDirectory(combined);
            foreach (var f in Directory.EnumerateFiles(machine, "*.safetensors").Append(Path.Combine(machine, "manifest.json")))
                File.Copy(f, Path.Combine(combined, Path.GetFileName(f)), overwrite: true);
        }
        var a = StoreReader.Open(whole).ReadRows().ToList();
        var b = StoreReader.Open(combined).ReadRows().ToList();
        Assert.Equal(a.Count, b.Count);
        for (int i = 0; i < a.Count; i++)
        {
            Assert.Equal(a[i].Lists[0].Rows.Ids, b[i].Lists[0].Rows.Ids);
            Assert.Equal(a[i].Lists[0].Outcomes, b[i].Lists[0].Outcomes);
        }
    }

    [Fact]
    public void FilterNanDropsRowsAndJoinChecksProvenance()
    {
        var (target, neox, qwen, docs) = BuildStores();
        string an = Path.Combine(Dir, "an"), aq = Path.Combine(Dir, "aq");
        AlignSources(target, neox, qwen, an, aq);
        // A target store whose document 3 has a NaN metric (no supervised token).
        string nanTarget = Path.Combine(Dir, "nan-target");
        var t = StoreReader.Open(target);
        Write(nanTarget, t.Manifest, i =>
        {
            var r = t.ReadRange(i, 1)[0];
            return new StoreRow { Index = r.Index, Hash = r.Hash, InputIds = r.InputIds, Labels = r.Labels, TopK = r.TopK, TokenCe = r.TokenCe, Metrics = [i == 3 ? double.NaN : r.Metrics[0]] };
        });
        var e = Assert.Throws<FusionException>(() => FusionDataset.Join(StoreReader.Open(Path.Combine(Dir, "neox")), [StoreReader.Open(an)]));
        Assert.Contains("different target", e.Message, StringComparison.Ordinal);
        var joined = FusionDataset.Join(StoreReader.Open(target), [StoreReader.Open(an), StoreReader.Open(aq)]);
        string filtered = Path.Combine(Dir, "filtered");
        var report = FilterNanStage.Run(joined, filtered);
        Assert.Contains(("removed", 0L), report.Group("rows"));
        Assert.Equal(docs.Count, StoreReader.Open(filtered).Rows);

        // Fusing directly over documents with a NaN metric is refused with a pointer to filter-nan.
        string nanAligned = Path.Combine(Dir, "nan-an");
        var an0 = StoreReader.Open(an);
        var nanManifest = new StoreManifest
        {
            Kind = an0.Manifest.Kind, Rows = an0.Rows, CorpusSha256 = an0.Manifest.CorpusSha256, RowsPerPart = an0.Manifest.RowsPerPart, Lists = an0.Manifest.Lists,
            Metrics = an0.Manifest.Metrics, Info = (JsonObject)an0.Manifest.Info.DeepClone(),
        };
        nanManifest.Info["target"] = StoreReader.Open(nanTarget).Manifest.ConfigHash;
        Write(nanAligned, nanManifest, i => an0.ReadRange(i, 1)[0]);
        var withNan = FusionDataset.Join(StoreReader.Open(nanTarget), [StoreReader.Open(nanAligned)]);
        var fe = Assert.Throws<FusionException>(() => FuseStage.Run(withNan, Path.Combine(Dir, "fused-nan"), new FusionOptions(), ShardSpec.All));
        Assert.Contains("filter-nan", fe.Hint, StringComparison.Ordinal);
        var r2 = FilterNanStage.Run(withNan, Path.Combine(Dir, "filtered2"));
        Assert.Contains(("removed", 1L), r2.Group("rows"));
        var kept = StoreReader.Open(Path.Combine(Dir, "filtered2")).ReadRows().ToList();
        Assert.Equal(docs.Count - 1, kept.Count);
        Assert.DoesNotContain(kept, r => r.Segments![0].Document == 3);
        FuseStage.Run(FusionDataset.FromDataset(StoreReader.Open(Path.Combine(Dir, "filtered2"))), Path.Combine(Dir, "fused-ok"), new FusionOptions(), ShardSpec.All);
    }
}
