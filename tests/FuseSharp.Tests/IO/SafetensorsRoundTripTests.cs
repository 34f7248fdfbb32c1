using FuseSharp.IO;
using FuseSharp.Tensors;
using Xunit;

namespace FuseSharp.Tests.IO;

public class SafetensorsRoundTripTests
{
    public static TheoryData<string> PythonWrittenFiles => new()
    {
        "merge-bf16_base/model.safetensors",
        "merge-ft_wide/model.safetensors",
        "gpt2-tiny/model.safetensors",
        "gpt2-tiny/expected.safetensors",
    };

    /// <summary>
    /// Single-dtype files come back byte for byte. Mixed-dtype files differ only in layout: the fixture writer orders
    /// tensors by name, ours (like the Rust crate) by descending dtype size then name; both are valid, so those are
    /// compared tensor by tensor.
    /// </summary>
    [Theory]
    [MemberData(nameof(PythonWrittenFiles))]
    public void RewritingAPythonWrittenFile_GivesTheSameFile(string relative)
    {
        var path = TestPaths.Fixture("io", relative);
        using var tmp = TestPaths.NewTempDir();
        var outPath = tmp.File("out.safetensors");
        using (var src = SafetensorsFile.Open(path))
        {
            using var w = SafetensorsWriter.Create(outPath, src.Tensors.Select(t => new TensorSpec(t.Name, t.DType, t.Shape)), src.Metadata);
            // Write in reverse order to exercise positional writes.
            foreach (var t in src.Tensors.Reverse()) w.Write(t.Name, src.GetBytes(t.Name));
            w.Commit();
        }
        using var a = SafetensorsFile.Open(path);
        using var b = SafetensorsFile.Open(outPath);
        Assert.Equal(a.Metadata, b.Metadata);
        Assert.Equal(a.Tensors.Select(t => t.Name).Order(), b.Tensors.Select(t => t.Name).Order());
        foreach (var t in a.Tensors)
        {
            Assert.Equal(t.DType, b.GetEntry(t.Name).DType);
            Assert.Equal(t.Shape, b.GetEntry(t.Name).Shape);
            Assert.True(a.GetBytes(t.Name).SequenceEqual(b.GetBytes(t.Name)), t.Name);
        }
        if (a.Tensors.Select(t => t.DType).Distinct().Count() == 1)
            Assert.Equal(File.ReadAllBytes(path), File.ReadAllBytes(outPath));
    }

    [Fact]
    public void WrittenFile_ReadsBackEveryTensor_WithValuesConverted()
    {
        using var tmp = TestPaths.NewTempDir();
        var path = tmp.File("m.safetensors");
        var a = Enumerable.Range(0, 24).Select(i => i * 0.37f - 3).ToArray();
        var specs = new[]
        {
            new TensorSpec("a.f32", DType.F32, new Shape(2, 3, 4)),
            new TensorSpec("a.bf16", DType.BF16, new Shape(24)),
            new TensorSpec("a.f16", DType.F16, new Shape(4, 6)),
            new TensorSpec("empty", DType.F32, new Shape(0, 5)),
            new TensorSpec("scalar", DType.I64, Shape.Scalar),
        };
        using (var w = SafetensorsWriter.Create(path, specs, new Dictionary<string, string> { ["format"] = "pt", ["note"] = "ünïcode" }))
        {
            w.WriteSingle("a.f32", a);
            w.WriteSingle("a.bf16", a);
            w.WriteSingle("a.f16", a);
            w.WriteSingle("empty", ReadOnlySpan<float>.Empty);
            w.Write("scalar", BitConverter.GetBytes(42L));
            w.Commit();
        }
        using var f = SafetensorsFile.Open(path);
        Assert.Equal("ünïcode", f.Metadata["note"]);
        Assert.Equal(0, (f.DataStart) % 8);
        Assert.Equal(a, f.GetTensor("a.f32").ToSingleArray());
        var bf = f.GetTensor("a.bf16").ToSingleArray();
        var h = f.GetTensor("a.f16").ToSingleArray();
        for (int i = 0; i < a.Length; i++)
        {
            Assert.Equal(BFloat16Conversion.ToSingle(BFloat16Conversion.FromSingle(a[i])), bf[i]);
            Assert.Equal((float)(Half)a[i], h[i]);
        }
        Assert.Equal(0, f.GetEntry("empty").ByteLength);
        Assert.Equal(42L, BitConverter.ToInt64(f.GetBytes("scalar")));
        // Every tensor starts at a multiple of its element size (descending-size layout).
        foreach (var t in f.Tensors) Assert.Equal(0, (f.DataStart + t.Begin) % t.DType.Size());
    }

    [Fact]
    public void Writer_DisposedWithoutCommit_LeavesNothing()
    {
        using var tmp = TestPaths.NewTempDir();
        var path = tmp.File("m.safetensors");
        using (var w = SafetensorsWriter.Create(path, [new TensorSpec("x", DType.F32, new Shape(4))]))
        {
            w.WriteSingle("x", new float[4]);
        }
        Assert.Empty(Directory.EnumerateFileSystemEntries(tmp.Path));
    }

    [Fact]
    public void Writer_Commit_RefusesATensorNotFullyWritten()
    {
        using var tmp = TestPaths.NewTempDir();
        var path = tmp.File("m.safetensors");
        using var w = SafetensorsWriter.Create(path, [new TensorSpec("x", DType.F32, new Shape(4)), new TensorSpec("y", DType.F32, new Shape(2))]);
        w.WriteSingle("x", new float[4]);
        w.WriteSingle("y", new float[1]);
        var e = Assert.Throws<SafetensorsException>(w.Commit);
        Assert.Equal(SafetensorsErrorKind.WriteFailed, e.Kind);
        Assert.Contains("'y'", e.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(path));
    }

    [Fact]
    public void Writer_ConcurrentChunkedWrites_ProduceTheSameFileAsSequential()
    {
        using var tmp = TestPaths.NewTempDir();
        var values = Enumerable.Range(0, 10_000).Select(i => MathF.Sin(i)).ToArray();
        var specs = Enumerable.Range(0, 8).Select(i => new TensorSpec($"t{i}", i % 2 == 0 ? DType.BF16 : DType.F32, new Shape(10_000))).ToList();
        void Write(string p, bool parallel)
        {
            using var w = SafetensorsWriter.Create(p, specs);
            var jobs = specs.SelectMany(s => Enumerable.Range(0, 10).Select(c => (s.Name, Chunk: c))).ToList();
            void One((string Name, int Chunk) j) => w.WriteSingle(j.Name, values.AsSpan(j.Chunk * 1000, 1000), j.Chunk * 1000);
            if (parallel) Parallel.ForEach(jobs, new ParallelOptions { MaxDegreeOfParallelism = 4 }, One);
            else foreach (var j in jobs) One(j);
            w.Commit();
        }
        Write(tmp.File("a.safetensors"), parallel: false);
        Write(tmp.File("b.safetensors"), parallel: true);
        Assert.Equal(File.ReadAllBytes(tmp.File("a.safetensors")), File.ReadAllBytes(tmp.File("b.safetensors")));
    }

    [Fact]
    public void ShardedWriter_SplitsByBudget_AndTheIndexLoadsAsOneModel()
    {
        using var tmp = TestPaths.NewTempDir();
        var specs = Enumerable.Range(0, 10).Select(i => new TensorSpec($"model.layers.{i}.w", DType.F32, new Shape(100))).ToList(); // 400 bytes each
        using (var w = ShardedSafetensorsWriter.Create(tmp.Path, specs, maxShardBytes: 1000))
        {
            Assert.Equal(5, w.ShardFiles.Count); // two 400-byte tensors per 1000-byte shard
            Assert.Equal("model-00001-of-00005.safetensors", w.ShardFiles[0]);
            foreach (var s in specs) w.WriteSingle(s.Name, Enumerable.Repeat((float)s.Name.Length, 100).ToArray());
            w.Commit();
        }
        Assert.True(File.Exists(Path.Combine(tmp.Path, "model.safetensors.index.json")));
        using var m = SafetensorsModel.Open(tmp.Path);
        Assert.Equal(10, m.Tensors.Count);
        Assert.Equal(4000, m.TotalBytes);
        Assert.Equal(5, m.Files.Count);
        Assert.Equal(16f, m.ReadSingle("model.layers.3.w")[7]);
        var index = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(tmp.Path, "model.safetensors.index.json")));
        Assert.Equal(4000, index.RootElement.GetProperty("metadata").GetProperty("total_size").GetInt64());
    }

    [Fact]
    public void ShardedWriter_OneShard_WritesModelSafetensorsWithoutIndex()
    {
        using var tmp = TestPaths.NewTempDir();
        using (var w = ShardedSafetensorsWriter.Create(tmp.Path, [new TensorSpec("w", DType.F32, new Shape(3))], maxShardBytes: 5L << 30))
        {
            w.WriteSingle("w", [1f, 2f, 3f]);
            w.Commit();
        }
        Assert.Equal(["model.safetensors"], Directory.GetFiles(tmp.Path).Select(Path.GetFileName));
    }

    [Fact]
    public void ShardPlan_GivesATensorLargerThanTheBudgetItsOwnShard()
    {
        var plan = ShardedSafetensorsWriter.PlanShards(
            [new TensorSpec("a", DType.F32, new Shape(10)), new TensorSpec("big", DType.F32, new Shape(1000)), new TensorSpec("c", DType.F32, new Shape(10))], 100);
        Assert.Equal([["a"], ["big"], ["c"]], plan.Select(s => s.Select(t => t.Name).ToArray()).ToArray());
    }

    [Fact]
    public void ModelFolder_IgnoresOtherSafetensorsFiles_LikeFromPretrained()
    {
        using var m = SafetensorsModel.Open(TestPaths.Fixture("io", "gpt2-tiny"));
        Assert.Single(m.Files);
        Assert.EndsWith("model.safetensors", m.Files[0].FilePath, StringComparison.Ordinal);
        Assert.DoesNotContain(m.Tensors, t => t.Name == "logits");
    }
}
