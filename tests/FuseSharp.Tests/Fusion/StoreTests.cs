using System.Text.Json.Nodes;
using FuseSharp.Fusion;
using FuseSharp.Fusion.Fuse;
using FuseSharp.Fusion.Store;
using FuseSharp.Tensors;
using Xunit;

namespace FuseSharp.Tests.Fusion;

public sealed class StoreTests : ScratchFolderTest
{

    internal static StoreManifest Manifest(long rows, int shards = 1, int rowsPerPart = 3, ColumnCodecKind codec = ColumnCodecKind.ShuffleZlib, string model = "m") => new()
    {
        Kind = "representation",
        Rows = rows,
        CorpusSha256 = StoreManifest.HashCorpus(Enumerable.Range(0, (int)rows).Select(i => StoreManifest.HashText($"doc {i}")).ToList()),
        Shards = shards,
        RowsPerPart = rowsPerPart,
        Codec = codec,
        K = 4,
        HasLabels = true,
        HasTokenCe = true,
        HasChoice = true,
        HasSegments = true,
        Lists = [new StoreListSpec("aligned", DType.F16, Outcomes: true, TokenCe: true), new StoreListSpec("fused", DType.BF16)],
        Metrics = ["metric_ce", "metric_ce_aligned"],
        Info = new JsonObject { ["model"] = model },
    };

    internal static StoreRow Row(long i)
    {
        var rng = new Random((int)i + 1);
        int n = 1 + rng.Next(12);
        int[] ids = Enumerable.Range(0, n).Select(_ => rng.Next(50000)).ToArray();
        var top = Enumerable.Range(0, n * 4).Select(_ => rng.Next(150000)).ToArray();
        var logits = Enumerable.Range(0, n * 4).Select(_ => (float)(Half)(rng.NextDouble() * 20 - 5)).ToArray();
        var counts = Enumerable.Range(0, n).Select(_ => rng.Next(0, 4)).ToArray();
        var offsets = new int[n + 1];
        for (int t = 0; t < n; t++) offsets[t + 1] = offsets[t] + counts[t];
        var aligned = new SparseRows(offsets, Enumerable.Range(0, offsets[n]).Select(_ => rng.Next(32000)).ToArray(), Enumerable.Range(0, offsets[n]).Select(_ => (float)(Half)(rng.NextDouble() * 10)).ToArray());
        var fused = new SparseRows(offsets, aligned.Ids, aligned.Values.Select(v => BFloat16Conversion.ToSingle(BFloat16Conversion.FromSingle(v / 10))).ToArray());
        return new StoreRow
        {
            Index = i,
            Hash = StoreManifest.HashText($"doc {i}"),
            InputIds = ids,
            Labels = ids.Select((x, t) => t % 3 == 0 ? -100 : x).ToArray(),
            TopK = SparseRows.Dense(top, logits, 4),
            TokenCe = Enumerable.Range(0, n).Select(t => t == n - 1 ? float.NaN : (float)(Half)(rng.NextDouble() * 5)).ToArray(),
            Lists =
            [
                new StoreList("aligned", aligned) { Outcomes = Enumerable.Range(0, n).Select(_ => (byte)rng.Next(6)).ToArray(), TokenCe = Enumerable.Repeat(float.NaN, n).ToArray() },
                new StoreList("fused", fused),
            ],
            Metrics = [rng.NextDouble() * 4, i == 2 ? double.NaN : 1.25],
            Choice = Enumerable.Range(0, n).Select(_ => (sbyte)rng.Next(-1, 3)).ToArray(),
            Segments = [new RowSegment(i, 0, n, 0)],
        };
    }

    private static void WriteShard(string folder, StoreManifest m, ShardSpec shard, Func<StorePart, bool>? stopAt = null)
    {
        var w = StoreWriter.Open(folder, m, shard);
        foreach (var part in w.Pending)
        {
            if (stopAt?.Invoke(part) == true) return;
            w.Write(part, Enumerable.Range(0, part.Rows).Select(r => Row(part.FirstRow + r)).ToList());
        }
    }

    [Theory]
    [InlineData(ColumnCodecKind.ShuffleZlib)]
    [InlineData(ColumnCodecKind.None)]
    public void RowsRoundTrip(ColumnCodecKind codec)
    {
        var m = Manifest(10, codec: codec);
        WriteShard(Dir, m, ShardSpec.All);
        var reader = StoreReader.Open(Dir);
        Assert.Equal(4, reader.Parts.Count);
        var rows = reader.ReadRows().ToList();
        Assert.Equal(10, rows.Count);
        foreach (var got in rows)
        {
            var want = Row(got.Index);
            Assert.Equal(want.Hash, got.Hash);
            Assert.Equal(want.InputIds, got.InputIds);
            Assert.Equal(want.Labels, got.Labels);
            Assert.Equal(want.TopK!.Ids, got.TopK!.Ids);
            Assert.Equal(want.TopK.Values, got.TopK.Values);
            Assert.Equal(want.TokenCe, got.TokenCe);
            for (int l = 0; l < 2; l++)
            {
                Assert.Equal(want.Lists[l].Rows.Offsets, got.Lists[l].Rows.Offsets);
                Assert.Equal(want.Lists[l].Rows.Ids, got.Lists[l].Rows.Ids);
                Assert.Equal(want.Lists[l].Rows.Values, got.Lists[l].Rows.Values);
                Assert.Equal(want.Lists[l].Outcomes, got.Lists[l].Outcomes);
                Assert.Equal(want.Lists[l].TokenCe, got.Lists[l].TokenCe);
            }
            Assert.Equal(want.Metrics, got.Metrics);
            Assert.Equal(want.Choice, got.Choice);
            Assert.Equal(want.Segments, got.Segments);
        }
    }

    [Fact]
    public void KilledRunResumesAtTheFirstMissingPart()
    {
        var m = Manifest(10);
        WriteShard(Dir, m, ShardSpec.All, stopAt: p => p.Index == 2);
        File.WriteAllText(Path.Combine(Dir, m.PartFileName(0, 2) + ".tmp-123-abc"), "half a file");
        var e = Assert.Throws<FusionException>(() => StoreReader.Open(Dir));
        Assert.Contains("incomplete", e.Message, StringComparison.Ordinal);
        Assert.Contains("--shard", e.Hint, StringComparison.Ordinal);
        var w = StoreWriter.Open(Dir, m, ShardSpec.All);
        Assert.Equal([2, 3], w.Pending.Select(p => p.Index));
        Assert.Empty(Directory.EnumerateFiles(Dir, "*.tmp-*"));
        foreach (var part in w.Pending) w.Write(part, Enumerable.Range(0, part.Rows).Select(r => Row(part.FirstRow + r)).ToList());
        Assert.Equal(10, StoreReader.Open(Dir).ReadRows().Count());
    }

    [Fact]
    public void ShardsFromDifferentMachinesCombineByCopying()
    {
        var m = Manifest(11, shards: 3, rowsPerPart: 2);
        var machines = Enumerable.Range(0, 3).Select(i => Path.Combine(Dir, $"machine{i}")).ToList();
        for (int i = 0; i < 3; i++) WriteShard(machines[i], m, new ShardSpec(i, 3));
        var combined = Path.Combine(Dir, "combined");
        Directory.CreateDirectory(combined);
        foreach (var mdir in machines)
            foreach (var f in Directory.EnumerateFiles(mdir)) File.Copy(f, Path.Combine(combined, Path.GetFileName(f)), overwrite: true);
        var rows = StoreReader.Open(combined).ReadRows().ToList();
        Assert.Equal(Enumerable.Range(0, 11).Select(i => (long)i), rows.Select(r => r.Index));
        Assert.Throws<FusionException>(() => StoreReader.Open(machines[1]));
    }

    [Fact]
    public void DifferentConfigurationIsRefusedAndNothingIsLost()
    {
        WriteShard(Dir, Manifest(6), ShardSpec.All);
        var before = Directory.EnumerateFiles(Dir).Select(File.ReadAllBytes).ToList();
        var e = Assert.Throws<FusionException>(() => StoreWriter.Open(Dir, Manifest(6, model: "other"), ShardSpec.All));
        Assert.Contains("info.model", e.Message, StringComparison.Ordinal);
        Assert.Equal(before, Directory.EnumerateFiles(Dir).Select(File.ReadAllBytes).ToList());
        var w = StoreWriter.Open(Dir, Manifest(6, model: "other"), ShardSpec.All, overwrite: true);
        Assert.Equal(2, w.Pending.Count);
    }

    [Fact]
    public void ForeignPartFileIsRefused()
    {
        var a = Path.Combine(Dir, "a");
        var b = Path.Combine(Dir, "b");
        WriteShard(a, Manifest(6), ShardSpec.All);
        WriteShard(b, Manifest(6, model: "other"), ShardSpec.All);
        File.Copy(Path.Combine(b, Manifest(6).PartFileName(0, 1)), Path.Combine(a, Manifest(6).PartFileName(0, 1)), overwrite: true);
        var e = Assert.Throws<FusionException>(() => StoreReader.Open(a));
        Assert.Contains("different configuration", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void EditedManifestIsDetected()
    {
        WriteShard(Dir, Manifest(3), ShardSpec.All);
        var path = Path.Combine(Dir, StoreManifest.FileName);
        File.WriteAllText(path, File.ReadAllText(path).Replace("\"k\": 4", "\"k\": 5", StringComparison.Ordinal));
        var e = Assert.Throws<FusionException>(() => StoreReader.Open(Dir));
        Assert.Contains("config_hash", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void CorpusMismatchNamesTheDocument()
    {
        var a = Path.Combine(Dir, "a");
        var b = Path.Combine(Dir, "b");
        WriteShard(a, Manifest(6), ShardSpec.All);
        var mb = Manifest(6);
        var w = StoreWriter.Open(b, new StoreManifest
        {
            Kind = mb.Kind, Rows = mb.Rows, CorpusSha256 = "different", Shards = 1, RowsPerPart = 3, K = 4, HasLabels = true, HasTokenCe = true,
            HasChoice = true, HasSegments = true, Lists = mb.Lists, Metrics = mb.Metrics, Info = mb.Info,
        }, ShardSpec.All);
        foreach (var part in w.Pending)
        {
            w.Write(part, Enumerable.Range(0, part.Rows).Select(r =>
            {
                var row = Row(part.FirstRow + r);
                return part.FirstRow + r == 4 ? new StoreRow { Index = row.Index, Hash = 42, InputIds = row.InputIds, Labels = row.Labels, TopK = row.TopK, TokenCe = row.TokenCe, Lists = row.Lists, Metrics = row.Metrics, Choice = row.Choice, Segments = row.Segments } : row;
            }).ToList());
        }
        var e = Assert.Throws<FusionException>(() => StoreReader.Open(a).RequireSameCorpus(StoreReader.Open(b), "target", "source"));
        Assert.Contains("document 4", e.Message, StringComparison.Ordinal);
        var short5 = Path.Combine(Dir, "c");
        WriteShard(short5, Manifest(5), ShardSpec.All);
        e = Assert.Throws<FusionException>(() => StoreReader.Open(a).RequireSameCorpus(StoreReader.Open(short5), "target", "source"));
        Assert.Contains("6 documents", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("3/8", 3, 8)]
    [InlineData(" 0/1 ", 0, 1)]
    public void ShardSpecParses(string value, int index, int count) => Assert.Equal(new ShardSpec(index, count), ShardSpec.Parse(value, _ => null));

    [Fact]
    public void ShardSpecFromSchedulerEnvironment()
    {
        var slurm = new Dictionary<string, string> { ["SLURM_ARRAY_TASK_ID"] = "5", ["SLURM_ARRAY_TASK_MIN"] = "1", ["SLURM_ARRAY_TASK_COUNT"] = "8" };
        Assert.Equal(new ShardSpec(4, 8), ShardSpec.Parse("auto", k => slurm.GetValueOrDefault(k)));
        var k8s = new Dictionary<string, string> { ["JOB_COMPLETION_INDEX"] = "2" };
        Assert.Equal(new ShardSpec(2, 4), ShardSpec.Parse("auto/4", k => k8s.GetValueOrDefault(k)));
        Assert.Throws<FusionException>(() => ShardSpec.Parse("auto", k => k8s.GetValueOrDefault(k)));
        Assert.Throws<FusionException>(() => ShardSpec.Parse("auto/4", _ => null));
        Assert.Throws<FusionException>(() => ShardSpec.Parse("8/8", _ => null));
        Assert.Throws<FusionException>(() => ShardSpec.Parse("x", _ => null));
        Assert.Equal(ShardSpec.All, ShardSpec.Parse(null, _ => null));
    }

    [Fact]
    public void ShardRangesCoverTheCorpusOnce()
    {
        for (int n = 1; n <= 7; n++)
        {
            long next = 0;
            for (int i = 0; i < n; i++)
            {
                var (s, e) = new ShardSpec(i, n).Range(23);
                Assert.Equal(next, s);
                next = e;
            }
            Assert.Equal(23, next);
        }
    }
}
