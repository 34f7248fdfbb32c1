using System.Runtime.InteropServices;
using FuseSharp.Models;
using FuseSharp.Models.Weights;
using FuseSharp.Tensors;
using FuseSharp.Tensors.Kernels;
using Xunit;

namespace FuseSharp.Tests.Models;

/// <summary>
/// A linear layer of several stored parts (Llama's q, k, v) on a few rows (decoding) takes one matrix-vector dispatch
/// for all parts; its output must be bit for bit what the general path gives: one GEMM per part, then its bias.
/// </summary>
[Collection(ParallelismCollection.Name)]
public unsafe class LinearTests
{
    [Theory]
    [InlineData(DType.F32)]
    [InlineData(DType.BF16)]
    public void FewRows_AllPartsInOneDispatch_EqualOneGemmPerPart(DType dtype)
    {
        var rng = new Random(dtype == DType.F32 ? 1 : 2);
        int inFeatures = 203; // 25 whole 8-steps and a tail of 3
        int[] counts = [96, 7, 1030]; // a row tail in the second part; the third spans several work items
        int outFeatures = counts.Sum();
        var handles = new List<GCHandle>();
        try
        {
            var parts = new List<Linear.Part>();
            int offset = 0;
            foreach (int count in counts)
            {
                var values = Values(rng, count * inFeatures);
                Array bits = dtype == DType.F32 ? values : values.Select(BFloat16Conversion.FromSingle).ToArray();
                var h = GCHandle.Alloc(bits, GCHandleType.Pinned);
                handles.Add(h);
                var view = new WeightView($"part{parts.Count}", dtype, new Shape(count, inFeatures), (byte*)h.AddrOfPinnedObject());
                var bias = default(VectorParam);
                if (parts.Count != 1)
                {
                    var b = GCHandle.Alloc(Values(rng, count), GCHandleType.Pinned);
                    handles.Add(b);
                    bias = new VectorParam((float*)b.AddrOfPinnedObject(), count);
                }
                parts.Add(new Linear.Part(view, WeightLayout.OutIn, offset, count, bias));
                offset += count;
            }
            var linear = new Linear(inFeatures, outFeatures, parts);
            foreach (int rows in new[] { 1, 2, 3, 5, 8 })
            {
                int ldx = inFeatures + 1, ldy = outFeatures + 2;
                var x = Values(rng, rows * ldx);
                var y0 = Values(rng, rows * ldy);
                foreach (bool accumulate in new[] { false, true })
                {
                    var expected = (float[])y0.Clone();
                    fixed (float* py = expected)
                    {
                        foreach (var p in parts)
                        {
                            var c = new Span<float>(py + p.Offset, (rows - 1) * ldy + p.Count);
                            if (dtype == DType.F32) Gemm.MatMul(false, true, rows, p.Count, inFeatures, x, ldx, p.Weight.AsSingles(), inFeatures, c, ldy, accumulate);
                            else Gemm.MatMulBf16(false, true, rows, p.Count, inFeatures, x, ldx, p.Weight.AsBFloat16(), inFeatures, c, ldy, accumulate);
                            for (int r = 0; r < rows; r++)
                                for (int j = 0; j < p.Bias.Length; j++) py[r * ldy + p.Offset + j] += p.Bias.Pointer[j];
                        }
                    }
                    foreach (int threads in new[] { 1, 2, 3 })
                    {
                        var actual = (float[])y0.Clone();
                        int saved = Parallelism.MaxThreads;
                        Parallelism.MaxThreads = threads;
                        try
                        {
                            fixed (float* px = x, py = actual) linear.Forward(px, rows, ldx, py, ldy, accumulate);
                        }
                        finally
                        {
                            Parallelism.MaxThreads = saved;
                        }
                        Assert.True(expected.AsSpan().SequenceEqual(actual), $"{dtype} rows={rows} accumulate={accumulate} threads={threads}");
                    }
                }
            }
        }
        finally
        {
            foreach (var h in handles) h.Free();
        }
    }

    private static float[] Values(Random rng, int count) => Enumerable.Range(0, count).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
}
