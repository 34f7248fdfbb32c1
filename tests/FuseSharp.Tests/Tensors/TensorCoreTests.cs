using FuseSharp.Tensors;
using Xunit;

namespace FuseSharp.Tests.Tensors;

public class TensorCoreTests
{
    [Theory]
    [InlineData(DType.F32, "F32", 4)]
    [InlineData(DType.F16, "F16", 2)]
    [InlineData(DType.BF16, "BF16", 2)]
    [InlineData(DType.F64, "F64", 8)]
    [InlineData(DType.I8, "I8", 1)]
    [InlineData(DType.I16, "I16", 2)]
    [InlineData(DType.I32, "I32", 4)]
    [InlineData(DType.I64, "I64", 8)]
    [InlineData(DType.U8, "U8", 1)]
    [InlineData(DType.Bool, "BOOL", 1)]
    [InlineData(DType.F8E4M3, "F8_E4M3", 1)]
    public void DTypes_NameAndSize_MatchSafetensors(DType dtype, string name, int size)
    {
        Assert.Equal(name, dtype.SafetensorsName());
        Assert.Equal(size, dtype.Size());
        Assert.True(DTypes.TryParseSafetensors(name, out var parsed));
        Assert.Equal(dtype, parsed);
    }

    [Theory]
    [InlineData("bfloat16", DType.BF16)]
    [InlineData("torch.float16", DType.F16)]
    [InlineData("float32", DType.F32)]
    [InlineData("fp32", DType.F32)]
    [InlineData("bf16", DType.BF16)]
    public void DTypes_UserNames(string name, DType expected) => Assert.Equal(expected, DTypes.ParseUserName(name));

    [Fact]
    public void Shape_ElementCount_IsChecked()
    {
        Assert.Equal(24, new Shape(2, 3, 4).ElementCount);
        Assert.Equal(1, Shape.Scalar.ElementCount);
        Assert.Equal(0, new Shape(5, 0).ElementCount);
        Assert.Throws<OverflowException>(() => new Shape(1L << 40, 1L << 40).ElementCount);
        Assert.Null(new Shape(1L << 40, 1L << 40).TryElementCount());
        Assert.Equal("[2, 3]", new Shape(2, 3).ToString());
        Assert.Equal(new Shape(2, 3), new Shape(2, 3));
    }

    [Theory]
    [InlineData(DType.F16)]
    [InlineData(DType.BF16)]
    [InlineData(DType.F64)]
    [InlineData(DType.I32)]
    [InlineData(DType.I8)]
    public void Conversion_RoundTripsRepresentableValues(DType dtype)
    {
        float[] values = dtype.IsFloat() ? [0f, 1f, -2f, 3.5f, -100f, 64f] : [0f, 1f, -2f, 3f, -100f, 64f];
        var bytes = new byte[values.Length * dtype.Size()];
        DTypeConversion.FromSingle(values, dtype, bytes);
        var back = new float[values.Length];
        DTypeConversion.ToSingle(dtype, bytes, back);
        Assert.Equal(values, back);
    }

    [Fact]
    public void Conversion_F16_MatchesHalfCast()
    {
        var rng = new Random(7);
        var values = Enumerable.Range(0, 1000).Select(_ => (float)(rng.NextDouble() * 200 - 100)).ToArray();
        var bytes = new byte[values.Length * 2];
        DTypeConversion.FromSingle(values, DType.F16, bytes);
        var back = new float[values.Length];
        DTypeConversion.ToSingle(DType.F16, bytes, back);
        for (int i = 0; i < values.Length; i++) Assert.Equal((float)(Half)values[i], back[i]);
    }

    [Fact]
    public void Float8_E4M3_DecodesKnownValues()
    {
        Assert.Equal(1f, Float8.E4M3ToSingle(0x38));
        Assert.Equal(448f, Float8.E4M3ToSingle(0x7E)); // largest finite
        Assert.True(float.IsNaN(Float8.E4M3ToSingle(0x7F)));
        Assert.Equal(-2f, Float8.E5M2ToSingle(0xC0));
    }

    [Fact]
    public void Tensor_AllocateConvertAndView()
    {
        using var t = Tensor.FromSingle([1f, 2f, 3f, 4f], new Shape(2, 2));
        using var b = t.ConvertTo(DType.BF16);
        Assert.Equal(DType.BF16, b.DType);
        Assert.Equal([1f, 2f, 3f, 4f], b.ToSingleArray());
        Assert.Throws<InvalidOperationException>(() => b.AsSpan<float>());
    }

    [Fact]
    public void CounterRandom_IsAPureFunctionOfKeyAndCounter()
    {
        var a = new CounterRandom(42, "model.layers.0.mlp.up_proj.weight", 1);
        var b = new CounterRandom(42, "model.layers.0.mlp.up_proj.weight", 1);
        var c = new CounterRandom(42, "model.layers.0.mlp.up_proj.weight", 2);
        Assert.Equal(a.NextUInt64(12345), b.NextUInt64(12345));
        Assert.NotEqual(a.NextUInt64(12345), c.NextUInt64(12345));
        // Roughly uniform: mean of 100k draws within 0.5 +- 0.005, every value in [0, 1).
        double sum = 0;
        for (int i = 0; i < 100_000; i++)
        {
            var u = a.NextSingle(i);
            Assert.InRange(u, 0f, 0.99999994f);
            sum += u;
        }
        Assert.InRange(sum / 100_000, 0.495, 0.505);
    }
}
