using FuseSharp.Tensors.Kernels;
using Xunit;

namespace FuseSharp.Tests.Tensors.Kernels;

public class AttentionTests
{
    public static TheoryData<int, int, int, int, int, bool> Shapes => new()
    {
        // batch, T, heads, kvHeads, headDim, causal
        { 1, 1, 4, 4, 8, true },
        { 2, 5, 4, 2, 16, true },
        { 2, 150, 4, 1, 20, true },   // several key blocks, MQA, head dim not a multiple of 8
        { 1, 70, 2, 2, 64, false },
        { 3, 33, 8, 2, 8, true },
        { 1, 3, 1, 1, 12, true },     // fewer than 4 rows: dot-product path
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Plain_MatchesReference(int b, int t, int h, int kv, int d, bool causal) =>
        Check(b, t, h, kv, d, causal, padding: false, window: 0, alibi: false, positions: false, queryStart: 0, extraKeys: 0);

    [Theory]
    [MemberData(nameof(Shapes))]
    public void PaddingMask_MatchesReference(int b, int t, int h, int kv, int d, bool causal) =>
        Check(b, t, h, kv, d, causal, padding: true, window: 0, alibi: false, positions: false, queryStart: 0, extraKeys: 0);

    [Theory]
    [MemberData(nameof(Shapes))]
    public void SlidingWindowAndAlibi_MatchReference(int b, int t, int h, int kv, int d, bool causal)
    {
        Check(b, t, h, kv, d, causal, padding: false, window: 7, alibi: false, positions: false, queryStart: 0, extraKeys: 0);
        Check(b, t, h, kv, d, causal, padding: true, window: 0, alibi: true, positions: false, queryStart: 0, extraKeys: 0);
        Check(b, t, h, kv, d, causal, padding: true, window: 5, alibi: true, positions: true, queryStart: 0, extraKeys: 0);
    }

    [Theory]
    [InlineData(1, 1, 4, 2, 16, 37)]   // decode step after 37 cached tokens
    [InlineData(2, 4, 4, 4, 8, 100)]   // a chunk appended to a cache
    [InlineData(1, 9, 8, 1, 32, 64)]
    public void CachedQueries_MatchReference(int b, int t, int h, int kv, int d, int past)
    {
        Check(b, t, h, kv, d, true, padding: false, window: 0, alibi: false, positions: false, queryStart: past, extraKeys: 3);
        Check(b, t, h, kv, d, true, padding: true, window: 20, alibi: true, positions: true, queryStart: past, extraKeys: 3);
    }

    // Decoding steps (one query token: the single-query path): head dims through its 32-, 8-column and scalar
    // parts, GQA/MQA groups, more keys than one block of the blocked path, the very first token.
    [Theory]
    [InlineData(2, 4, 4, 64, 150)]
    [InlineData(1, 8, 2, 40, 70)]
    [InlineData(3, 6, 1, 12, 9)]
    [InlineData(1, 2, 2, 3, 0)]
    public void DecodingStep_MatchesReference(int b, int h, int kv, int d, int past)
    {
        Check(b, 1, h, kv, d, true, padding: false, window: 0, alibi: false, positions: false, queryStart: past, extraKeys: 2);
        Check(b, 1, h, kv, d, false, padding: true, window: 0, alibi: false, positions: false, queryStart: past, extraKeys: 2);
        Check(b, 1, h, kv, d, true, padding: true, window: 6, alibi: true, positions: true, queryStart: past, extraKeys: 2);
        Check(b, 1, h, kv, d, true, padding: false, window: 5, alibi: false, positions: false, queryStart: past, extraKeys: 0);
    }

    /// <summary>
    /// A decoding step against the blocked path: the second query of a two-token call at slots (past, past + 1)
    /// sees the same keys as a one-token call at slot past + 1, so its output and log-sum-exp agree to rounding.
    /// </summary>
    [Theory]
    [InlineData(1, 4, 4, 64, 100)]
    [InlineData(2, 8, 2, 24, 65)]
    [InlineData(1, 1, 1, 5, 1)]
    public void DecodingStep_MatchesBlockedPath(int b, int h, int kv, int d, int past)
    {
        int cap = past + 2, hd = h * d;
        var rng = new Random(past + d);
        var q2 = KernelAssert.Random(rng, b * 2 * hd, 2);
        var k = KernelAssert.Random(rng, b * kv * cap * d, 2);
        var v = KernelAssert.Random(rng, b * kv * cap * d);
        var valid = Enumerable.Range(0, b * cap).Select(i => (byte)(i % 7 == 3 ? 0 : 1)).ToArray();
        var slopes = Enumerable.Range(0, h).Select(i => MathF.Pow(2, -(i + 1))).ToArray();
        foreach (bool masks in new[] { false, true })
        {
            var opts = new AttentionOptions { Scale = 1 / MathF.Sqrt(d), Causal = true, KeyValid = masks ? valid : [], AlibiSlopes = masks ? slopes : [], SlidingWindow = masks ? 40 : 0 };
            float[] o2 = new float[q2.Length], lse2 = new float[b * h * 2];
            Attention.Forward(q2, k, v, new AttentionShape(b, 2, h, kv, d, past + 2, cap, past), opts, o2, lse2);
            var q1 = new float[b * hd];
            for (int r = 0; r < b; r++) Array.Copy(q2, (r * 2 + 1) * hd, q1, r * hd, hd);
            float[] o1 = new float[q1.Length], lse1 = new float[b * h];
            Attention.Forward(q1, k, v, new AttentionShape(b, 1, h, kv, d, past + 2, cap, past + 1), opts, o1, lse1);
            for (int r = 0; r < b; r++)
            {
                KernelAssert.Close(o2.AsSpan((r * 2 + 1) * hd, hd), o1.AsSpan(r * hd, hd), 1e-6, 1e-5, $"output, row {r}, masks {masks}");
                for (int hh = 0; hh < h; hh++)
                    KernelAssert.Close([lse2[(r * h + hh) * 2 + 1]], [lse1[r * h + hh]], 1e-6, 1e-6, $"lse, row {r}, head {hh}, masks {masks}");
            }
        }
    }

    [Fact]
    public void FullyMaskedQuery_GivesZerosAndMinusInfinity()
    {
        var shape = new AttentionShape(1, 2, 1, 1, 8, 2, 2, 0);
        var rng = new Random(1);
        var q = KernelAssert.Random(rng, 16);
        var k = KernelAssert.Random(rng, 16);
        var v = KernelAssert.Random(rng, 16);
        var o = new float[16];
        var lse = new float[2];
        var opts = new AttentionOptions { Scale = 1, Causal = true, KeyValid = new byte[] { 0, 1 } };
        Attention.Forward(q, k, v, shape, opts, o, lse);
        Assert.All(o.Take(8), x => Assert.Equal(0f, x));
        Assert.Equal(float.NegativeInfinity, lse[0]);
        // The second query sees only key 1: its output is exactly v[1].
        KernelAssert.Close(v.AsSpan(8, 8), o.AsSpan(8, 8), 1e-6, 1e-6);
    }

    [Fact]
    public void SingleVisibleKey_CopiesItsValue_AndUniformScoresAverage()
    {
        // Causal query 0 sees only key 0; with q = 0 all scores tie and the output is the mean of the visible values.
        var shape = new AttentionShape(1, 3, 1, 1, 4, 3, 3, 0);
        var q = new float[12];
        var k = KernelAssert.Random(new Random(2), 12);
        var v = new float[] { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 };
        var o = new float[12];
        Attention.Forward(q, k, v, shape, new AttentionOptions { Scale = 0.5f, Causal = true }, o);
        KernelAssert.Close(new float[] { 1, 2, 3, 4, 3, 4, 5, 6, 5, 6, 7, 8 }, o, 1e-6, 1e-6);
    }

    private static void Check(int b, int t, int h, int kv, int d, bool causal, bool padding, int window, bool alibi, bool positions, int queryStart, int extraKeys)
    {
        int cap = queryStart + t + extraKeys;
        int keyLength = queryStart + t;
        var rng = new Random(b * 1000 + t * 31 + h * 7 + d + queryStart);
        var q = KernelAssert.Random(rng, b * t * h * d, 2);
        var k = KernelAssert.Random(rng, b * kv * cap * d, 2);
        var v = KernelAssert.Random(rng, b * kv * cap * d);
        var shape = new AttentionShape(b, t, h, kv, d, keyLength, cap, queryStart);
        byte[] valid = [];
        if (padding)
        {
            valid = new byte[b * cap];
            for (int i = 0; i < valid.Length; i++) valid[i] = (byte)(rng.NextDouble() < 0.8 ? 1 : 0);
        }
        int[] pos = [];
        if (positions)
        {
            pos = new int[b * cap];
            for (int r = 0; r < b; r++)
                for (int s = 0, p = 0; s < cap; s++) { pos[r * cap + s] = p; p += rng.Next(0, 3); }
        }
        var slopes = alibi ? Enumerable.Range(0, h).Select(i => MathF.Pow(2, -(i + 1))).ToArray() : [];
        var opts = new AttentionOptions { Scale = 1 / MathF.Sqrt(d), Causal = causal, SlidingWindow = window, KeyValid = valid, Positions = pos, AlibiSlopes = slopes };
        float[] o = new float[q.Length], oRef = new float[q.Length], lse = new float[b * h * t], lseRef = new float[b * h * t];
        Attention.Forward(q, k, v, shape, opts, o, lse);
        Attention.ForwardReference(q, k, v, shape, opts, oRef, lseRef);
        KernelAssert.Close(oRef, o, 2e-6, 2e-5, "output");
        KernelAssert.Close(lseRef, lse, 2e-6, 2e-6, "lse");
    }
}
