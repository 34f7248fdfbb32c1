using FuseSharp.Tensors.Kernels;
using Xunit;

namespace FuseSharp.Tests.Tensors.Kernels;

public class RopeTests
{
    [Theory]
    [InlineData(16, 16, 3)]
    [InlineData(64, 64, 1000)]
    [InlineData(8, 4, 17)]      // partial rotary (GPT-NeoX rotary_pct 0.5)
    [InlineData(96, 64, 5)]
    public void Apply_MatchesReference(int headDim, int rotaryDim, int position)
    {
        var rng = new Random(20230828 + headDim);
        var x = KernelAssert.Random(rng, 4 * headDim);
        var (inv, att) = Rope.Frequencies(new RopeSpec(10000, rotaryDim, 2048), 10);
        float[] cos = new float[rotaryDim / 2], sin = new float[rotaryDim / 2];
        Rope.CosSin(inv, att, position, cos, sin);
        var fast = (float[])x.Clone();
        var reference = (float[])x.Clone();
        Rope.Apply(fast, headDim, rotaryDim, cos, sin);
        Rope.ApplyReference(reference, headDim, rotaryDim, cos, sin);
        KernelAssert.Close(reference, fast, 1e-6, 1e-6);
        for (int h = 0; h < 4; h++)
        {
            for (int i = rotaryDim; i < headDim; i++) Assert.Equal(x[h * headDim + i], fast[h * headDim + i]); // pass-through dims
            for (int i = 0; i < rotaryDim / 2; i++)
            {
                // Each (i, i + rotaryDim/2) pair is rotated: its norm is preserved.
                double before = Math.Pow(x[h * headDim + i], 2) + Math.Pow(x[h * headDim + i + rotaryDim / 2], 2);
                double after = Math.Pow(fast[h * headDim + i], 2) + Math.Pow(fast[h * headDim + i + rotaryDim / 2], 2);
                Assert.Equal(before, after, 5);
            }
        }
    }

    [Fact]
    public void PositionZero_IsTheIdentity()
    {
        var (inv, att) = Rope.Frequencies(new RopeSpec(10000, 8, 64), 1);
        float[] cos = new float[4], sin = new float[4];
        Rope.CosSin(inv, att, 0, cos, sin);
        var x = new float[] { 1, 2, 3, 4, 5, 6, 7, 8 };
        var y = (float[])x.Clone();
        Rope.Apply(y, 8, 8, cos, sin);
        Assert.Equal(x, y);
    }

    [Fact]
    public void Rotation_MatchesTheRotateHalfFormula()
    {
        // One pair, angle = position · θ^0 = position: (x1, x2) → (x1 cos p − x2 sin p, x2 cos p + x1 sin p).
        var (inv, att) = Rope.Frequencies(new RopeSpec(10000, 2, 64), 1);
        Assert.Equal(1f, inv[0]);
        float[] cos = new float[1], sin = new float[1];
        Rope.CosSin(inv, att, 3, cos, sin);
        var y = new float[] { 1f, 2f };
        Rope.Apply(y, 2, 2, cos, sin);
        Assert.Equal(Math.Cos(3) - 2 * Math.Sin(3), y[0], 6);
        Assert.Equal(2 * Math.Cos(3) + Math.Sin(3), y[1], 6);
    }

    [Fact]
    public void DefaultFrequencies_AreThetaPowers()
    {
        var (inv, att) = Rope.Frequencies(new RopeSpec(500000, 128, 8192), 1);
        Assert.Equal(1f, att);
        for (int i = 0; i < 64; i++) Assert.Equal((float)(1 / Math.Pow(500000, 2.0 * i / 128)), inv[i], 1e-7f * inv[i] * 4);
    }

    [Fact]
    public void LinearScaling_DividesEveryFrequency()
    {
        var (plain, _) = Rope.Frequencies(new RopeSpec(10000, 16, 64), 1);
        var (scaled, _) = Rope.Frequencies(new RopeSpec(10000, 16, 64, new RopeScaling(RopeScalingKind.Linear, 4)), 1);
        for (int i = 0; i < 8; i++) Assert.Equal(plain[i] / 4, scaled[i], plain[i] * 1e-6f);
    }

    [Fact]
    public void Llama3Scaling_KeepsHighDividesLowAndSmoothsBetween()
    {
        var spec = new RopeSpec(500000, 128, 131072, new RopeScaling(RopeScalingKind.Llama3, 8) { LowFreqFactor = 1, HighFreqFactor = 4, OriginalMaxPositions = 8192 });
        var (plain, _) = Rope.Frequencies(spec with { Scaling = null }, 1);
        var (scaled, _) = Rope.Frequencies(spec, 1);
        int kept = 0, divided = 0, smoothed = 0;
        for (int i = 0; i < 64; i++)
        {
            double wavelen = 2 * Math.PI / plain[i];
            if (wavelen < 8192 / 4.0) { Assert.Equal(plain[i], scaled[i]); kept++; }
            else if (wavelen > 8192) { Assert.Equal(plain[i] / 8, scaled[i], plain[i] * 1e-6f); divided++; }
            else
            {
                double smooth = (8192 / wavelen - 1) / (4 - 1);
                Assert.Equal((1 - smooth) * plain[i] / 8 + smooth * plain[i], scaled[i], plain[i] * 1e-6);
                smoothed++;
            }
        }
        Assert.True(kept > 0 && divided > 0 && smoothed > 0);
    }

    [Fact]
    public void DynamicScaling_GrowsTheBaseOnlyPastTheTrainedLength()
    {
        var spec = new RopeSpec(10000, 16, 64, new RopeScaling(RopeScalingKind.Dynamic, 2));
        var (plain, _) = Rope.Frequencies(spec with { Scaling = null }, 1);
        var (short_, _) = Rope.Frequencies(spec, 64);
        Assert.Equal(plain, short_);
        var (long_, _) = Rope.Frequencies(spec, 128);
        double theta = 10000 * Math.Pow(2.0 * 128 / 64 - 1, 16 / 14.0);
        for (int i = 0; i < 8; i++) Assert.Equal((float)(1 / Math.Pow(theta, 2.0 * i / 16)), long_[i], long_[i] * 1e-6f);
    }

    [Fact]
    public void YarnScaling_HasTheAttentionFactorAndRampsFromExtrapolationToInterpolation()
    {
        var spec = new RopeSpec(10000, 64, 16384, new RopeScaling(RopeScalingKind.Yarn, 4) { OriginalMaxPositions = 4096 });
        var (plain, _) = Rope.Frequencies(spec with { Scaling = null }, 1);
        var (scaled, att) = Rope.Frequencies(spec, 1);
        Assert.Equal(0.1 * Math.Log(4) + 1, att, 6);
        Assert.Equal(plain[0], scaled[0]);                              // fastest rotation: extrapolated
        Assert.Equal(plain[^1] / 4, scaled[^1], plain[^1] * 1e-6f);     // slowest: interpolated
        for (int i = 1; i < 32; i++) Assert.True(scaled[i] / plain[i] <= scaled[i - 1] / plain[i - 1] + 1e-6);
    }

    [Fact]
    public void LongRope_PicksShortOrLongFactorsByLength()
    {
        var shortF = Enumerable.Range(0, 4).Select(i => 1.0 + i).ToList();
        var longF = Enumerable.Range(0, 4).Select(i => 2.0 + i).ToList();
        var spec = new RopeSpec(10000, 8, 1024, new RopeScaling(RopeScalingKind.LongRope, 1) { OriginalMaxPositions = 256, ShortFactor = shortF, LongFactor = longF });
        var (s, att) = Rope.Frequencies(spec, 100);
        var (l, _) = Rope.Frequencies(spec, 300);
        Assert.Equal(Math.Sqrt(1 + Math.Log(4) / Math.Log(256)), att, 6);
        for (int i = 0; i < 4; i++)
        {
            double base_ = Math.Pow(10000, (float)(2 * i) / 8);
            Assert.Equal((float)(1 / (shortF[i] * base_)), s[i]);
            Assert.Equal((float)(1 / (longF[i] * base_)), l[i]);
        }
    }
}
