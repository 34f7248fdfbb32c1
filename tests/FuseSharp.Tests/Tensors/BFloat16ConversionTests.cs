using FuseSharp.Tensors;
using Xunit;

namespace FuseSharp.Tests.Tensors;

public class BFloat16ConversionTests
{
    [Theory]
    [InlineData(1.0f, (ushort)0x3F80)]
    [InlineData(-2.0f, (ushort)0xC000)]
    [InlineData(float.PositiveInfinity, (ushort)0x7F80)]
    [InlineData(float.NegativeInfinity, (ushort)0xFF80)]
    [InlineData(0.0f, (ushort)0x0000)]
    [InlineData(-0.0f, (ushort)0x8000)]
    public void FromSingle_ExactValues(float value, ushort expected) => Assert.Equal(expected, BFloat16Conversion.FromSingle(value));

    [Fact]
    public void FromSingle_RoundsToNearestEven()
    {
        // 0x3F808000 is exactly halfway between 0x3F80 and 0x3F81: ties go to the even one (0x3F80).
        Assert.Equal(0x3F80, BFloat16Conversion.FromSingle(BitConverter.UInt32BitsToSingle(0x3F80_8000)));
        // 0x3F818000 is halfway between 0x3F81 and 0x3F82: ties go to 0x3F82.
        Assert.Equal(0x3F82, BFloat16Conversion.FromSingle(BitConverter.UInt32BitsToSingle(0x3F81_8000)));
        // Just above halfway rounds up.
        Assert.Equal(0x3F81, BFloat16Conversion.FromSingle(BitConverter.UInt32BitsToSingle(0x3F80_8001)));
        // Rounding can carry into the exponent, up to infinity for the largest finite floats.
        Assert.Equal(0x7F80, BFloat16Conversion.FromSingle(float.MaxValue));
    }

    [Fact]
    public void FromSingle_NaNStaysNaN()
    {
        foreach (var bits in new uint[] { 0x7FC0_0000, 0x7F80_0001, 0xFFFF_FFFF, 0x7FFF_FFFF, 0xFF80_0001 })
        {
            var b = BFloat16Conversion.FromSingle(BitConverter.UInt32BitsToSingle(bits));
            Assert.True(float.IsNaN(BFloat16Conversion.ToSingle(b)), $"0x{bits:X8} -> 0x{b:X4}");
        }
    }

    [Fact]
    public void VectorKernels_MatchScalarReference()
    {
        var rng = new Random(20230828);
        var values = new float[1000 + 37];
        for (int i = 0; i < values.Length; i++) values[i] = BitConverter.UInt32BitsToSingle((uint)rng.NextInt64(0, 1L << 32));
        values[5] = float.NaN;
        values[6] = float.PositiveInfinity;
        var fast = new ushort[values.Length];
        BFloat16Conversion.FromSingle(values, fast);
        for (int i = 0; i < values.Length; i++) Assert.Equal(BFloat16Conversion.FromSingle(values[i]), fast[i]);

        var back = new float[values.Length];
        BFloat16Conversion.ToSingle(fast, back);
        for (int i = 0; i < values.Length; i++)
            Assert.Equal(BitConverter.SingleToUInt32Bits(BFloat16Conversion.ToSingle(fast[i])), BitConverter.SingleToUInt32Bits(back[i]));
    }

    [Fact]
    public void ToSingle8_EveryBitPatternAsTheScalarConversion()
    {
        // All 65536 patterns (zeros, subnormals, infinities, NaN payloads), eight per register.
        var bits = new ushort[65536];
        for (int i = 0; i < bits.Length; i++) bits[i] = (ushort)i;
        for (int i = 0; i < bits.Length; i += 8)
        {
            var v = BFloat16Conversion.ToSingle8(ref bits[i]);
            for (int l = 0; l < 8; l++)
                Assert.Equal(BitConverter.SingleToUInt32Bits(BFloat16Conversion.ToSingle(bits[i + l])), BitConverter.SingleToUInt32Bits(v[l]));
        }
    }
}
