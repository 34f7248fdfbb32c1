using FuseSharp.Models;
using FuseSharp.Tests.Tensors.Kernels;
using Xunit;

namespace FuseSharp.Tests.Models;

/// <summary>Properties of the forward API: cached decoding equals recomputation, padding and batching change nothing.</summary>
public class EngineEquivalenceTests
{
    public static TheoryData<string> Cases => new(ModelFixtures.Names);

    [Theory]
    [MemberData(nameof(Cases))]
    public void KvCacheDecoding_EqualsFullRecomputation(string name)
    {
        using var model = TransformerModel.Load(ModelFixtures.Folder(name));
        var (_, t, ids) = ModelFixtures.InputIds(name);
        var seq = ids.Take(t).ToArray();
        var full = new FullLogits();
        model.Forward(TokenBatch.Single(seq), full);

        // Prefill 5 tokens, then a chunk of 3, then one token at a time.
        using var cache = model.CreateCache(1, t);
        var got = new FullLogits();
        int pos = 0;
        foreach (int step in new[] { 5, 3 }.Concat(Enumerable.Repeat(1, t - 8)))
        {
            model.Forward(TokenBatch.Single(seq[pos..(pos + step)]), got, cache);
            for (int i = 0; i < step; i++) KernelAssert.Close(full.Row(0, pos + i), got.Row(0, i), 1e-4, 1e-4, $"{name} position {pos + i}");
            pos += step;
        }
        Assert.Equal(t, cache.Length);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void BatchedAndPadded_EqualsUnbatched(string name)
    {
        using var model = TransformerModel.Load(ModelFixtures.Folder(name));
        var (b, t, ids) = ModelFixtures.InputIds(name);
        var a = ids.Take(t).ToArray();
        var c = ids.Skip(t).Take(t - 6).ToArray();
        var d = ids.Take(3).ToArray();
        var singles = new[] { a, c, d }.Select(s =>
        {
            var f = new FullLogits();
            model.Forward(TokenBatch.Single(s), f);
            return f;
        }).ToArray();

        // Right padding.
        var right = new FullLogits();
        model.Forward(TokenBatch.RightPadded([a, c, d], padId: 0), right);
        // Left padding (mask zeros first): positions count real tokens, so rows equal the unpadded runs.
        var left = new FullLogits();
        var leftIds = new int[3 * t];
        var leftMask = new byte[3 * t];
        var rows = new[] { a, c, d };
        for (int r = 0; r < 3; r++)
            for (int i = 0; i < rows[r].Length; i++)
            {
                leftIds[r * t + t - rows[r].Length + i] = rows[r][i];
                leftMask[r * t + t - rows[r].Length + i] = 1;
            }
        model.Forward(new TokenBatch(3, t, leftIds, leftMask), left);
        for (int r = 0; r < 3; r++)
        {
            for (int i = 0; i < rows[r].Length; i++)
            {
                KernelAssert.Close(singles[r].Row(0, i), right.Row(r, i), 2e-5, 2e-5, $"{name} right-padded row {r} position {i}");
                KernelAssert.Close(singles[r].Row(0, i), left.Row(r, t - rows[r].Length + i), 2e-5, 2e-5, $"{name} left-padded row {r} position {i}");
            }
        }
        Assert.True(b >= 2);
    }

    [Theory]
    [InlineData("gpt_neox-tiny")]   // parallel residual: the MLP accumulates into the residual tile by tile
    [InlineData("mixtral-tiny")]    // experts gather the tokens of a tile
    [InlineData("mpt-tiny")]
    public void RowTiles_ChangeNothing(string name)
    {
        var (b, t, ids) = ModelFixtures.InputIds(name);
        var batch = new TokenBatch(b, t, ids);
        using var whole = TransformerModel.Load(ModelFixtures.Folder(name));
        using var tiled = TransformerModel.Load(ModelFixtures.Folder(name), new ModelOptions { RowTile = 5 });
        var x = new FullLogits();
        var y = new FullLogits();
        whole.Forward(batch, x);
        tiled.Forward(batch, y);
        KernelAssert.Close(x.Values, y.Values, 1e-5, 1e-5, name);
    }

    [Fact]
    public void SlidingWindow_IsActive_AndTheConventionsDifferByOneKey()
    {
        using var tmp = new TempDir();
        string Copy(string name, int window)
        {
            var dir = ModelFixtures.CopyToTemp("mistral-tiny", Path.Combine(tmp.Path, name));
            var path = Path.Combine(dir, "config.json");
            var cfg = (System.Text.Json.Nodes.JsonObject)System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(path))!;
            cfg["sliding_window"] = window;
            File.WriteAllText(path, cfg.ToJsonString());
            return dir;
        }
        var (_, t, ids) = ModelFixtures.InputIds("mistral-tiny");
        var batch = TokenBatch.Single(ids.Take(t).ToArray());
        FullLogits Run(string dir, SlidingWindowConvention convention)
        {
            using var m = TransformerModel.Load(dir, new ModelOptions { SlidingWindowConvention = convention });
            var f = new FullLogits();
            m.Forward(batch, f);
            return f;
        }
        var full = Run(ModelFixtures.Folder("mistral-tiny"), SlidingWindowConvention.Transformers);
        var w4 = Run(Copy("w4", 4), SlidingWindowConvention.Transformers);
        var w5 = Run(Copy("w5", 5), SlidingWindowConvention.Transformers);
        var w4Reference = Run(Copy("w4r", 4), SlidingWindowConvention.MistralReference);
        KernelAssert.Close(full.Values.AsSpan(0, 4 * 144), w4.Values.AsSpan(0, 4 * 144), 1e-6, 1e-6, "positions inside the window");
        Assert.NotEqual(full.Values, w4.Values);
        KernelAssert.Close(w5.Values, w4Reference.Values, 0, 0, "W + 1 keys");
    }

    [Fact]
    public void Observer_SeesNamedIntermediates()
    {
        using var model = TransformerModel.Load(ModelFixtures.Folder("llama-tiny"));
        var seen = new List<(string, int)>();
        model.Observer = new Recorder(seen);
        model.Forward(TokenBatch.Single([1, 2, 3]), new LastLogits());
        Assert.Contains(("embed", -1), seen);
        Assert.Contains(("attention", 1), seen);
        Assert.Contains(("residual", 1), seen);
        Assert.Contains(("final_norm", -1), seen);
    }

    private sealed class Recorder(List<(string, int)> seen) : ITensorObserver
    {
        public void Observe(string name, int layer, int rowOffset, ReadOnlySpan<float> values, int columns)
        {
            Assert.Equal(0, values.Length % columns);
            seen.Add((name, layer));
        }
    }

    [Fact]
    public void BatchedDecodingFromPaddedPrompts_EqualsDecodingEachRowAlone()
    {
        using var model = TransformerModel.Load(ModelFixtures.Folder("mpt-tiny")); // ALiBi: positions must skip the padding gap
        var prompts = new[] { new[] { 5, 9, 3, 22, 17, 8 }, new[] { 40, 2 } };
        var greedy = prompts.Select(p => Greedy(model, [p], 6)[0]).ToArray();
        var batched = Greedy(model, prompts, 6);
        Assert.Equal(greedy[0], batched[0]);
        Assert.Equal(greedy[1], batched[1]);
    }

    private static List<int>[] Greedy(TransformerModel model, int[][] prompts, int steps)
    {
        using var cache = model.CreateCache(prompts.Length, prompts.Max(p => p.Length) + steps);
        var last = new LastLogits();
        model.Forward(TokenBatch.RightPadded(prompts), last, cache);
        var outputs = prompts.Select(_ => new List<int>()).ToArray();
        for (int s = 0; s < steps; s++)
        {
            var next = new int[prompts.Length];
            for (int r = 0; r < prompts.Length; r++) outputs[r].Add(next[r] = System.Numerics.Tensors.TensorPrimitives.IndexOfMax(last.Row(r)));
            model.Forward(new TokenBatch(prompts.Length, 1, next), last, cache);
        }
        return outputs;
    }

    [Fact]
    public void TopKAndLoss_AgreeWithFullLogits()
    {
        using var model = TransformerModel.Load(ModelFixtures.Folder("qwen2-tiny"));
        var (b, t, ids) = ModelFixtures.InputIds("qwen2-tiny");
        var batch = new TokenBatch(b, t, ids);
        var full = new FullLogits();
        var top = new TopKLogits(5);
        var loss = new NextTokenLoss();
        model.Forward(batch, full);
        model.Forward(batch, new CompositeSink(top, loss));
        for (int r = 0; r < b; r++)
        {
            for (int i = 0; i < t; i++)
            {
                var row = full.Row(r, i).ToArray();
                var order = Enumerable.Range(0, row.Length).OrderByDescending(j => row[j]).ThenBy(j => j).Take(5).ToArray();
                Assert.Equal(order, top.Ids.AsSpan((r * t + i) * 5, 5).ToArray());
                if (i + 1 < t)
                {
                    double ce = Softmax(row, ids[r * t + i + 1]);
                    Assert.Equal(ce, loss.CrossEntropy[r * t + i], 1e-5); // float logits vs the double reference: summation order only
                }
                else Assert.True(float.IsNaN(loss.CrossEntropy[r * t + i]));
            }
            Assert.Equal(t - 1, loss.Count(r));
        }
    }

    private static double Softmax(float[] row, int target)
    {
        double max = row.Max(), s = row.Sum(v => Math.Exp(v - max));
        return max + Math.Log(s) - row[target];
    }

    [Fact]
    public void Labels_WithIgnoreIndex_SelectTheScoredPositions()
    {
        using var model = TransformerModel.Load(ModelFixtures.Folder("llama-tiny"));
        var ids = new[] { 3, 14, 15, 92, 65, 35 };
        var labels = new[] { -100, -100, -100, 92, 65, 35 }; // score only the last three tokens
        var all = new NextTokenLoss();
        var some = new NextTokenLoss(labels);
        model.Forward(TokenBatch.Single(ids), new CompositeSink(all, some));
        Assert.Equal(3, some.Count(0));
        Assert.Equal(all.CrossEntropy[2] + all.CrossEntropy[3] + all.CrossEntropy[4], some.Sum(0), 5);
        Assert.Equal(some.Sum(0) / 3, some.SequenceMean(0), 10);
    }
}
