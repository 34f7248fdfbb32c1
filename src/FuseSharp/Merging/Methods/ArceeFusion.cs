using FuseSharp.Merging.Kernels;
using FuseSharp.Merging.Planning;

namespace FuseSharp.Merging.Methods;

/// <summary>
/// Arcee Fusion (mergekit <c>arcee_fusion</c>, spec §2.16): importance <c>|θ_1 − θ_b| · KL_row</c> with
/// <c>KL_row = Σ p log(p/q)</c>, p = softmax(θ_1 row) + 1e-8, q = softmax(θ_b row) + 1e-8 over the last dimension;
/// the threshold is median + 1.5·IQR of the importances (quantiles at index <c>floor(q(n−1))</c> of the sorted
/// values, from at most 10⁶ uniformly sampled elements, with replacement); elements at or above it take the
/// fine-tune's value, the rest keep the base. The sample is drawn from the counter-based stream.
/// </summary>
public sealed class ArceeFusion : IMergeMethod
{
    private const int SampleSize = 1_000_000;

    public string Name => "arcee_fusion";

    public string PrettyName => "Arcee Fusion";

    public string? Reference => "https://arcee.ai";

    public BaseModelPolicy BasePolicy => BaseModelPolicy.Required;

    public EmbeddingShapePolicy EmbeddingPolicy => EmbeddingShapePolicy.CommonSubmatrix;

    public IReadOnlyList<ParameterDef> Parameters { get; } = [];

    public IReadOnlyList<ParameterDef> ModelParameters { get; } = [];

    public void Validate(TensorTask task) => MethodHelpers.RequireCounts(task, Name, needsBase: true, min: 1, max: 1);

    public long WorkspaceBytes(TensorTask task) => Math.Min(task.Count, SampleSize) * 12L + task.Count / Math.Max(1, task.Shape.Rank == 0 ? 1 : task.Shape[task.Shape.Rank - 1]) * 8;

    public void Merge(TensorMergeContext ctx)
    {
        var task = ctx.Task;
        var b = task.Base!;
        var other = task.Inputs[0];
        long n = ctx.Count;
        long last = task.Shape.Rank == 0 ? 1 : task.Shape[task.Shape.Rank - 1];
        long rows = n / last;

        // Per row: KL(softmax(θ_1) + 1e-8 || softmax(θ_b) + 1e-8).
        var kl = new double[rows];
        Chunked.ForRows(rows, last, ctx.Cancellation, (r0, count, sc) =>
        {
            for (long r = r0; r < r0 + count; r++) kl[r] = RowKl(other.Source, b.Source, r * last, last, sc);
        });

        // Importance sample, sorted; quantiles by index floor(q (n-1)).
        float[] sample;
        if (n <= SampleSize)
        {
            sample = new float[n];
            Chunked.For(n, ctx.Cancellation, (_, start, length, sc) =>
            {
                var x1 = sc.Get(0, length);
                var x0 = sc.Get(1, length);
                other.Source.Read(start, x1);
                b.Source.Read(start, x0);
                for (int j = 0; j < length; j++) sample[start + j] = (float)(Math.Abs(x1[j] - x0[j]) * kl[(start + j) / last]);
            });
        }
        else
        {
            var rng = ctx.Random(other);
            var positions = new long[SampleSize];
            for (int i = 0; i < SampleSize; i++) positions[i] = (long)(rng.NextUInt64(i) % (ulong)n);
            Array.Sort(positions);
            sample = new float[SampleSize];
            Chunked.ForEach((SampleSize + 4095) / 4096, ctx.Cancellation, block =>
            {
                for (int i = block * 4096; i < Math.Min(SampleSize, (block + 1) * 4096); i++)
                {
                    long e = positions[i];
                    sample[i] = (float)(Math.Abs(other.Source.ReadAt(e) - b.Source.ReadAt(e)) * kl[e / last]);
                }
            });
        }
        Array.Sort(sample);
        float Q(double q) => sample[(long)(q * (sample.Length - 1))];
        float threshold = Q(0.5) + 1.5f * (Q(0.75) - Q(0.25));
        ctx.Diagnostics.Set("threshold", threshold);

        var kept = Chunked.Reduce(n, 1, ctx.Cancellation, (start, length, sc, acc) =>
        {
            var x1 = sc.Get(0, length);
            var x0 = sc.Get(1, length);
            other.Source.Read(start, x1);
            b.Source.Read(start, x0);
            long k = 0;
            for (int j = 0; j < length; j++)
            {
                float imp = (float)(Math.Abs(x1[j] - x0[j]) * kl[(start + j) / last]);
                if (imp >= threshold)
                {
                    x0[j] = x1[j];
                    k++;
                }
            }
            acc[0] += k;
            ctx.Output.Write(start, x0);
        });
        ctx.Diagnostics.KeptFractions([kept[0] / n]);
    }

    /// <summary>KL divergence of two rows' softmaxes, each plus 1e-8 (mergekit's formula), in FP64: three passes over the row.</summary>
    private static double RowKl(TensorSource p, TensorSource q, long start, long length, ChunkScratch sc)
    {
        double maxP = double.NegativeInfinity, maxQ = double.NegativeInfinity, sumP = 0, sumQ = 0, kl = 0;
        for (int pass = 0; pass < 3; pass++)
        {
            foreach (var (s, len, _) in new Segments(start, length))
            {
                var a = sc.Get(0, len);
                var b = sc.Get(1, len);
                p.Read(s, a);
                q.Read(s, b);
                for (int j = 0; j < len; j++)
                {
                    switch (pass)
                    {
                        case 0:
                            maxP = Math.Max(maxP, a[j]);
                            maxQ = Math.Max(maxQ, b[j]);
                            break;
                        case 1:
                            sumP += Math.Exp(a[j] - maxP);
                            sumQ += Math.Exp(b[j] - maxQ);
                            break;
                        default:
                            double pp = Math.Exp(a[j] - maxP) / sumP + 1e-8, qq = Math.Exp(b[j] - maxQ) / sumQ + 1e-8;
                            kl += pp * Math.Log(pp / qq);
                            break;
                    }
                }
            }
        }
        return kl;
    }
}
