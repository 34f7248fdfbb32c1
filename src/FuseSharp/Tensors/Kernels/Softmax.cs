using System.Numerics.Tensors;
using System.Runtime.Intrinsics;

namespace FuseSharp.Tensors.Kernels;

/// <summary>
/// Row reductions over logits: log-sum-exp, softmax, log-softmax and the cross-entropy of a target, computed with
/// the max subtracted first (no overflow for any finite input). Sums of exponentials are accumulated per block of
/// 256 values in float and across blocks in double, so vocabularies of 150k entries keep float precision.
/// <para>Cross-entropy backward (for the training engine): <c>d logits = softmax(logits) − onehot(target)</c>,
/// from the saved log-sum-exp: <c>softmax_i = exp(logits_i − lse)</c>.</para>
/// </summary>
public static class Softmax
{
    /// <summary><c>log Σ_i exp(x_i)</c>; −∞ for an empty span or all −∞; NaN if any value is NaN.</summary>
    public static unsafe float LogSumExp(ReadOnlySpan<float> x)
    {
        if (x.IsEmpty) return float.NegativeInfinity;
        float max = TensorPrimitives.Max(x);
        if (float.IsNaN(max)) return float.NaN;
        if (float.IsNegativeInfinity(max)) return float.NegativeInfinity;
        if (float.IsPositiveInfinity(max)) return float.PositiveInfinity;
        fixed (float* p = x) return max + (float)Math.Log(SumExpShifted(p, x.Length, max));
    }

    /// <summary>The float64 scalar reference of <see cref="LogSumExp"/>.</summary>
    public static double LogSumExpReference(ReadOnlySpan<float> x)
    {
        double max = double.NegativeInfinity;
        foreach (var v in x) max = Math.Max(max, v);
        if (double.IsNegativeInfinity(max) || double.IsNaN(max)) return max;
        double s = 0;
        foreach (var v in x) s += Math.Exp(v - max);
        return max + Math.Log(s);
    }

    /// <summary><c>destination[i] = exp(x[i] − lse(x))</c> (may be in place).</summary>
    public static void Forward(ReadOnlySpan<float> x, Span<float> destination)
    {
        if (destination.Length != x.Length) throw new ArgumentException("destination length differs from x", nameof(destination));
        float lse = LogSumExp(x);
        TensorPrimitives.Subtract(x, lse, destination);
        TensorPrimitives.Exp(destination, destination);
    }

    /// <summary><c>destination[i] = x[i] − lse(x)</c> (may be in place).</summary>
    public static void LogSoftmax(ReadOnlySpan<float> x, Span<float> destination)
    {
        if (destination.Length != x.Length) throw new ArgumentException("destination length differs from x", nameof(destination));
        float lse = LogSumExp(x);
        TensorPrimitives.Subtract(x, lse, destination);
    }

    /// <summary>
    /// Cross-entropy of <paramref name="target"/> under <c>softmax(logits)</c>: <c>lse − logits[target]</c>, with the
    /// log-sum-exp returned too (it is what a backward or a log-probability needs).
    /// </summary>
    public static float CrossEntropy(ReadOnlySpan<float> logits, int target, out float logSumExp)
    {
        if ((uint)target >= (uint)logits.Length) throw new ArgumentOutOfRangeException(nameof(target), $"target {target} outside [0, {logits.Length})");
        logSumExp = LogSumExp(logits);
        return logSumExp - logits[target];
    }

    /// <summary>Σ exp(x_i − shift), blocks of 256 summed in float, blocks summed in double.</summary>
    internal static unsafe double SumExpShifted(float* x, int n, float shift)
    {
        double total = 0;
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var vs = Vector256.Create(shift);
            while (i <= n - 8)
            {
                var acc = Vector256<float>.Zero;
                int end = Math.Min(n - 7, i + 256);
                for (; i < end; i += 8) acc += Vector256.Exp(Vector256.Load(x + i) - vs);
                total += Vector256.Sum(acc);
            }
        }
        for (; i < n; i++) total += MathF.Exp(x[i] - shift);
        return total;
    }
}
