using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using FuseSharp.Merging.Kernels;
using FuseSharp.Merging.Planning;
using FuseSharp.Tensors;

namespace FuseSharp.Merging.Methods;

/// <summary>Small pieces the method files share: reading inputs into chunk buffers, checks, common parameter definitions.</summary>
internal static class MethodHelpers
{
    /// <summary>The per-model <c>weight</c> parameter (required).</summary>
    public static readonly ParameterDef Weight = ParameterDef.RequiredNumber("weight", "weight of this model");

    /// <summary>Copies the base (or the only input) unchanged.</summary>
    public static void CopyInput(TensorMergeContext ctx, TaskInput input)
    {
        Chunked.For(ctx.Count, ctx.Cancellation, (_, start, length, sc) =>
        {
            var buf = sc.Get(0, length);
            input.Source.Read(start, buf);
            ctx.Output.Write(start, buf);
        });
    }

    /// <summary>
    /// A producer of task vectors: buffers 0..M-1 get <c>θ_i − θ_base</c> for the inputs (their magnitudes with
    /// <paramref name="magnitudes"/>, in the same pass), buffer M the base values.
    /// </summary>
    public static ChunkProducer Deltas(TensorTask task, bool magnitudes = false)
    {
        var inputs = task.Inputs;
        var b = task.Base ?? throw new InvalidOperationException("task vectors need a base");
        int m = inputs.Count;
        return (start, length, sc) =>
        {
            var baseBuf = sc.Get(m, length);
            b.Source.Read(start, baseBuf);
            for (int i = 0; i < m; i++)
            {
                var d = sc.Get(i, length);
                inputs[i].Source.Read(start, d);
                if (magnitudes) AbsoluteDifference(d, baseBuf, d);
                else TensorPrimitives.Subtract(d, baseBuf, d);
            }
        };
    }

    /// <summary>
    /// Task-vector magnitudes <c>|θ_i − θ_base|</c> (buffers 0..M-1) when the base and every input are stored BF16
    /// tensors read as is: decoded inside <see cref="TaskVectorKernels.AbsoluteDifferenceBFloat16"/> from the mapped bits,
    /// with no F32 staging read and no separate NaN/Inf screen per read (row reads, as DELLA's, are not chunk-aligned,
    /// so the checked path screened every one). A non-finite sum of magnitudes sends the range through the checked
    /// reads, which name the bad element with the same message; a clean whole grid chunk is marked screened, so the
    /// merge pass decodes it in its kernel too. Null for any other inputs (remapped, other dtypes, no AVX2).
    /// </summary>
    public static unsafe ChunkProducer? BFloat16Magnitudes(TensorTask task)
    {
        if (!TaskVectorKernels.CanDecodeBFloat16 || StoredBFloat16.Of(task) is not { } stored) return null;
        var checkedPath = Deltas(task, magnitudes: true);
        int m = stored.Count;
        return (start, length, sc) =>
        {
            ushort* bb = stored.BaseBits(start, length);
            bool finite = true;
            for (int i = 0; i < m; i++)
                finite &= float.IsFinite(TaskVectorKernels.AbsoluteDifferenceBFloat16(stored.InputBits(i, start, length), bb, sc.Get(i, length)));
            if (!finite)
            {
                checkedPath(start, length, sc); // throws for a NaN/Inf input; after a finite overflow, the same values
                return;
            }
            stored.MarkScreened(start, length);
        };
    }

    /// <summary>
    /// <c>destination[j] = b[j]·fb</c> (0 without <paramref name="b"/>), then <c>destination[j] = x_i[j]·f_i + destination[j]</c>
    /// for each input in order, of BF16 bits decoded in registers: the unfused F32 operations of reading into F32 and
    /// <see cref="TensorPrimitives.Multiply(ReadOnlySpan{float}, float, Span{float})"/> /
    /// <see cref="TensorPrimitives.MultiplyAdd(ReadOnlySpan{float}, float, ReadOnlySpan{float}, Span{float})"/>, so bitwise
    /// those. Returns 0 when every decoded value is finite and NaN otherwise (the sum of <c>v − v</c>, exact: no false alarms),
    /// the screen for callers whose bits were not screened. Needs <see cref="TaskVectorKernels.CanDecodeBFloat16"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static unsafe float CombineBFloat16(ushort* b, float fb, ReadOnlySpan<nint> x, ReadOnlySpan<float> f, Span<float> destination)
    {
        int m = x.Length, length = destination.Length, j = 0;
        ref float d = ref MemoryMarshal.GetReference(destination);
        var vfb = Vector256.Create(fb);
        var screen = Vector256<float>.Zero;
        for (; j <= length - 8; j += 8)
        {
            var a = Vector256<float>.Zero;
            if (b is not null)
            {
                var v = BFloat16Conversion.ToSingle8(ref b[j]);
                screen += v - v;
                a = v * vfb;
            }
            for (int i = 0; i < m; i++)
            {
                var v = BFloat16Conversion.ToSingle8(ref ((ushort*)x[i])[j]);
                screen += v - v;
                a = v * Vector256.Create(f[i]) + a;
            }
            a.StoreUnsafe(ref d, (nuint)j);
        }
        float sum = Vector256.Sum(screen);
        for (; j < length; j++)
        {
            float a = 0f;
            if (b is not null)
            {
                float v = BFloat16Conversion.ToSingle(b[j]);
                sum += v - v;
                a = v * fb;
            }
            for (int i = 0; i < m; i++)
            {
                float v = BFloat16Conversion.ToSingle(((ushort*)x[i])[j]);
                sum += v - v;
                a = v * f[i] + a;
            }
            Unsafe.Add(ref d, j) = a;
        }
        return sum;
    }

    /// <summary>Effectively computes <c>destination[i] = |x[i] − y[i]|</c>.</summary>
    public static void AbsoluteDifference(ReadOnlySpan<float> x, ReadOnlySpan<float> y, Span<float> destination)
    {
        int i = 0, w = Vector<float>.Count;
        if (Vector.IsHardwareAccelerated)
            for (; i <= x.Length - w; i += w)
                Vector.Abs(new Vector<float>(x.Slice(i, w)) - new Vector<float>(y.Slice(i, w))).CopyTo(destination.Slice(i, w));
        for (; i < x.Length; i++) destination[i] = MathF.Abs(x[i] - y[i]);
    }

    /// <summary>Throws a <see cref="MergeException"/> for <paramref name="task"/> when <paramref name="condition"/> is false.</summary>
    public static void Require(bool condition, TensorTask task, string problem, string? hint = null)
    {
        if (!condition) throw new MergeException(problem, task.Name, hint);
    }

    /// <summary>Requires a base model and between <paramref name="min"/> and <paramref name="max"/> other models.</summary>
    public static void RequireCounts(TensorTask task, string method, bool needsBase, int min, int max = int.MaxValue)
    {
        if (needsBase && task.Base is null)
            throw new MergeException($"{method} needs a base_model", task.Name, "add 'base_model: <path>' to the config");
        int n = task.Inputs.Count;
        if (n < min || n > max)
        {
            string want = min == max ? $"exactly {min}" : max == int.MaxValue ? $"at least {min}" : $"{min} to {max}";
            string what = needsBase || task.Base is not null ? "models besides the base" : "models";
            throw new MergeException($"{method} needs {want} {what}, got {n}", task.Name,
                n == 0 && task.Base is not null ? "list the models to merge under 'models' (the base model alone merges nothing)" : "check the models listed for this merge method");
        }
    }

    /// <summary>Element-wise <c>destination[i] += weight * x[i]</c>.</summary>
    public static void AddScaled(ReadOnlySpan<float> x, float weight, Span<float> destination) =>
        TensorPrimitives.MultiplyAdd(x, weight, destination, destination);

    /// <summary>Counts elements where <c>max &gt; 0</c> and <c>min &lt; 0</c> (some deltas positive, some negative).</summary>
    public static long CountConflicts(ReadOnlySpan<float> max, ReadOnlySpan<float> min)
    {
        long n = 0;
        int i = 0, w = Vector<float>.Count;
        if (Vector.IsHardwareAccelerated)
        {
            var acc = Vector<int>.Zero;
            for (; i <= max.Length - w; i += w)
                acc -= Vector.GreaterThan(new Vector<float>(max.Slice(i, w)), Vector<float>.Zero) & Vector.LessThan(new Vector<float>(min.Slice(i, w)), Vector<float>.Zero);
            n = Vector.Sum(acc);
        }
        for (; i < max.Length; i++) if (max[i] > 0 && min[i] < 0) n++;
        return n;
    }

    /// <summary>The standard "number in (0, 1]" check for densities.</summary>
    public static string? Density(double v) => ParameterDef.InUnitIntervalOpenClosed(v);
}

/// <summary>Inner products of several vectors streamed chunk by chunk.</summary>
internal static class Gram
{
    /// <summary>
    /// The symmetric matrix <c>G[i, j] = x_i · x_j</c> (FP32 within a chunk, FP64 across chunks) of the m vectors
    /// <paramref name="produce"/> writes into buffers 0..m-1.
    /// </summary>
    public static double[,] Compute(long count, int m, ChunkProducer produce, CancellationToken ct)
    {
        int pairs = m * (m + 1) / 2;
        var sums = Chunked.Reduce(count, pairs, ct, (start, length, sc, acc) =>
        {
            produce(start, length, sc);
            Accumulate(sc.Arrays(m, length), m, length, acc);
        });
        return Square(m, sums);
    }

    /// <summary>
    /// Adds every pairwise dot product <c>x_i · x_j</c> (i ≤ j, row-major upper triangle) of the first
    /// <paramref name="length"/> elements into <paramref name="acc"/>, in one pass with the sums in registers
    /// (F32 per 512 elements, then FP64). Effectively <c>acc[k++] += Dot(x_i, x_j)</c>.
    /// </summary>
    public static void Accumulate(float[][] x, int m, int length, Span<double> acc)
    {
        int pairs = m * (m + 1) / 2;
        int j = 0, w = Vector<float>.Count;
        if (Vector.IsHardwareAccelerated && m <= 4)
        {
            Span<Vector<float>> s = stackalloc Vector<float>[10];
            Span<Vector<float>> v = stackalloc Vector<float>[4];
            s.Clear();
            int block = 0;
            for (; j <= length - w; j += w)
            {
                for (int i = 0; i < m; i++) v[i] = new Vector<float>(x[i], j);
                int k = 0;
                for (int a = 0; a < m; a++)
                    for (int b = a; b < m; b++) s[k++] += v[a] * v[b];
                if (++block == 64)
                {
                    for (int q = 0; q < pairs; q++) acc[q] += Vector.Sum(s[q]);
                    s.Clear();
                    block = 0;
                }
            }
            for (int q = 0; q < pairs; q++) acc[q] += Vector.Sum(s[q]);
            if (j == length) return;
        }
        int p = 0;
        for (int a = 0; a < m; a++)
            for (int b = a; b < m; b++)
                acc[p++] += TensorPrimitives.Dot(x[a].AsSpan(j, length - j), x[b].AsSpan(j, length - j));
    }

    /// <summary>
    /// <see cref="Compute"/> of the base and the inputs themselves (m = inputs + 1, at most 4) when all are stored BF16
    /// tensors and <see cref="TaskVectorKernels.CanDecodeBFloat16"/>: each chunk is decoded in registers by
    /// <see cref="AccumulateBFloat16"/> (no F32 staging, no separate NaN/Inf screen), bitwise the sums of reading it with
    /// <paramref name="checkedRead"/> and <see cref="Accumulate"/>. A non-finite diagonal (a NaN/Inf input, or a finite
    /// overflow of a square) sends the chunk through <paramref name="checkedRead"/>, which names a bad element with the
    /// same message; a clean chunk is marked screened, so <see cref="WriteCombination"/> decodes it in registers too.
    /// </summary>
    public static unsafe double[,] ComputeStoredBFloat16(long count, StoredBFloat16 stored, ChunkProducer checkedRead, CancellationToken ct)
    {
        int m = stored.Count + 1;
        if (m > 4) return Compute(count, m, checkedRead, ct);
        int pairs = m * (m + 1) / 2;
        var sums = Chunked.Reduce(count, pairs, ct, (start, length, sc, acc) =>
        {
            Span<nint> bits = stackalloc nint[m];
            bits[0] = (nint)stored.Bits(start, length, bits[1..]);
            AccumulateBFloat16(bits, length, acc);
            bool finite = true;
            for (int i = 0, d = 0; i < m; d += m - i, i++) finite &= double.IsFinite(acc[d]);
            if (finite)
            {
                stored.MarkScreened(start, length);
                return;
            }
            acc.Clear(); // Reduce zeroes each chunk's partials; the checked pass starts over from the same zeros
            checkedRead(start, length, sc);
            Accumulate(sc.Arrays(m, length), m, length, acc);
        });
        return Square(m, sums);
    }

    private static double[,] Square(int m, double[] sums)
    {
        var g = new double[m, m];
        int p = 0;
        for (int i = 0; i < m; i++)
            for (int j = i; j < m; j++) g[i, j] = g[j, i] = sums[p++];
        return g;
    }

    /// <summary>
    /// <see cref="Accumulate"/> of BF16 vectors (pointers to <paramref name="length"/> bits each, at most 4) decoded in
    /// registers: the same lanes, unfused <c>s += a·b</c>, flushes to FP64 every 64 vectors and tail dot products, so
    /// the sums are bitwise those of decoding to F32 first. Needs <see cref="TaskVectorKernels.CanDecodeBFloat16"/>.
    /// </summary>
    internal static unsafe void AccumulateBFloat16(ReadOnlySpan<nint> x, int length, Span<double> acc)
    {
        int m = x.Length, pairs = m * (m + 1) / 2, j = 0;
        Span<Vector256<float>> s = stackalloc Vector256<float>[10];
        Span<Vector256<float>> v = stackalloc Vector256<float>[4];
        s.Clear();
        int block = 0;
        for (; j <= length - 8; j += 8)
        {
            for (int i = 0; i < m; i++) v[i] = BFloat16Conversion.ToSingle8(ref ((ushort*)x[i])[j]);
            int k = 0;
            for (int a = 0; a < m; a++)
                for (int b = a; b < m; b++) s[k++] += v[a] * v[b];
            if (++block == 64)
            {
                for (int q = 0; q < pairs; q++) acc[q] += Vector.Sum(s[q].AsVector());
                s.Clear();
                block = 0;
            }
        }
        for (int q = 0; q < pairs; q++) acc[q] += Vector.Sum(s[q].AsVector());
        int rest = length - j;
        if (rest == 0) return;
        Span<float> t = stackalloc float[4 * 8];
        for (int i = 0; i < m; i++)
            for (int r = 0; r < rest; r++) t[i * 8 + r] = BFloat16Conversion.ToSingle(((ushort*)x[i])[j + r]);
        int p = 0;
        for (int a = 0; a < m; a++)
            for (int b = a; b < m; b++)
                acc[p++] += TensorPrimitives.Dot(t.Slice(a * 8, rest), t.Slice(b * 8, rest));
    }

    /// <summary><c>cᵀ G c</c>, clamped at 0 (rounding can make it slightly negative).</summary>
    public static double Quadratic(double[,] g, ReadOnlySpan<double> c)
    {
        double s = 0;
        for (int i = 0; i < c.Length; i++)
            for (int j = 0; j < c.Length; j++) s += c[i] * g[i, j] * c[j];
        return Math.Max(0, s);
    }

    /// <summary>Writes <c>offset + Σ f_i x_i</c>: coefficients over the inputs' raw tensors and an optional base coefficient.</summary>
    public static void WriteCombination(TensorMergeContext ctx, IReadOnlyList<TaskInput> inputs, IReadOnlyList<double> coefficients, TaskInput? baseInput, double baseCoefficient)
    {
        var f = coefficients.Select(x => (float)x).ToArray();
        float fb = (float)baseCoefficient;
        var sources = TaskVectorKernels.CanDecodeBFloat16 && inputs.Count <= 4 ? inputs.Select(i => i.Source).ToArray() : null;
        Chunked.For(ctx.Count, ctx.Cancellation, (_, start, length, sc) =>
        {
            var acc = sc.Get(0, length);
            if (sources is not null && ScreenedCombination(sources, f, baseInput, fb, start, acc))
            {
                ctx.Output.Write(start, acc);
                return;
            }
            var x = sc.Get(1, length);
            if (baseInput is not null)
            {
                baseInput.Source.Read(start, acc);
                TensorPrimitives.Multiply(acc, fb, acc);
            }
            else acc.Clear();
            for (int i = 0; i < inputs.Count; i++)
            {
                inputs[i].Source.Read(start, x);
                TensorPrimitives.MultiplyAdd(x, f[i], acc, acc);
            }
            ctx.Output.Write(start, acc);
        });
    }

    /// <summary>
    /// The chunk of <see cref="WriteCombination"/> decoded in registers when every source's chunk is stored BF16 that an
    /// earlier pass screened (<see cref="TensorSource.ScreenedBFloat16"/>); false (nothing written) otherwise.
    /// </summary>
    private static unsafe bool ScreenedCombination(TensorSource[] sources, float[] f, TaskInput? baseInput, float fb, long start, Span<float> acc)
    {
        int length = acc.Length;
        ushort* b = null;
        if (baseInput is not null && (b = baseInput.Source.ScreenedBFloat16(start, length)) is null) return false;
        Span<nint> x = stackalloc nint[sources.Length];
        if (!StoredBFloat16.ScreenedInputs(sources, start, length, x)) return false;
        MethodHelpers.CombineBFloat16(b, fb, x, f, acc);
        return true;
    }
}
