using FuseSharp.Tensors;

namespace FuseSharp.Fusion.Fuse;

/// <summary>Arithmetic of the fusion weights.</summary>
public enum FusionPrecision
{
    /// <summary>
    /// As the reference trainer (default): rewards <c>1 / exp(ce)</c> in bfloat16 (ce: double → float32 → bf16; exp
    /// and the division in float32, each rounded to bf16), AvgCE softmax and the fused distributions in bf16. Close
    /// CEs tie more often than in float32; ties follow the reference's rules.
    /// </summary>
    Bf16,

    /// <summary>CE rounded to float32, rewards, weights and distributions in float32 without bf16 rounding (fewer artificial ties; not bit-faithful).</summary>
    Fp32,
}

/// <summary>
/// MinCE / AvgCE weights over candidates (spec §6), from one CE per candidate. Candidate 0 is the target's own
/// distribution when <c>withTarget</c> is set, else the first source.
/// </summary>
public static class CandidateSelection
{
    /// <summary>The reward <c>1 / exp(ce)</c> under <paramref name="precision"/> (bf16 values are returned widened to float).</summary>
    public static float Reward(double ce, FusionPrecision precision)
    {
        if (precision == FusionPrecision.Fp32) return 1f / MathF.Exp((float)ce);
        // torch.tensor(ce, dtype=bfloat16): double -> float -> bf16; exp and 1/x computed in float, rounded to bf16.
        float c = Bf16((float)ce);
        float e = Bf16(MathF.Exp(c));
        return Bf16(1f / e);
    }

    /// <summary>
    /// MinCE: the candidate with the highest reward. With the target present the first maximum wins (<c>argmax</c>
    /// over [target, source 0, source 1]: the target wins ties); without it the reference's two-source rule
    /// <c>where(r0 &gt; r1, D0, D1)</c> gives ties to the later source, generalised here to "last maximum wins".
    /// NaN CEs are never chosen while another candidate has a number.
    /// </summary>
    public static int MinCe(ReadOnlySpan<double> ce, bool withTarget, FusionPrecision precision)
    {
        int best = -1;
        float bestReward = float.NegativeInfinity;
        for (int c = 0; c < ce.Length; c++)
        {
            if (double.IsNaN(ce[c])) continue;
            float r = Reward(ce[c], precision);
            if (best < 0 || r > bestReward || (!withTarget && r == bestReward))
            {
                best = c;
                bestReward = r;
            }
        }
        return best < 0 ? 0 : best;
    }

    /// <summary>
    /// AvgCE weights: <c>softmax(rewards)</c>, a softmax over exp(−CE), not over −CE (so the weights stay near uniform).
    /// In bf16 the softmax runs in float over the bf16 rewards and each weight is rounded to bf16 (the weights need not
    /// sum to 1). NaN CEs get weight 0 and are left out of the softmax.
    /// </summary>
    public static float[] AvgCe(ReadOnlySpan<double> ce, FusionPrecision precision)
    {
        var w = new float[ce.Length];
        Span<float> r = stackalloc float[ce.Length];
        for (int c = 0; c < ce.Length; c++) r[c] = double.IsNaN(ce[c]) ? float.NaN : Reward(ce[c], precision);
        Softmax(r, w, precision == FusionPrecision.Bf16);
        return w;
    }

    /// <summary>
    /// torch's softmax on the CPU: float max, <c>exp(x − max)</c> in float, float sum, multiply by the reciprocal; for
    /// a bf16 tensor each result is rounded to bf16. NaN inputs are left out (weight 0).
    /// </summary>
    internal static void Softmax(ReadOnlySpan<float> x, Span<float> destination, bool roundToBf16)
    {
        float max = float.NegativeInfinity;
        for (int i = 0; i < x.Length; i++) if (!float.IsNaN(x[i]) && x[i] > max) max = x[i];
        float sum = 0;
        for (int i = 0; i < x.Length; i++)
        {
            destination[i] = float.IsNaN(x[i]) ? 0f : MathF.Exp(x[i] - max);
            sum += destination[i];
        }
        float inv = 1f / sum;
        for (int i = 0; i < x.Length; i++) destination[i] = roundToBf16 ? Bf16(destination[i] * inv) : destination[i] * inv;
    }

    /// <summary>Rounds a float to the nearest bf16 (ties to even) and widens it back.</summary>
    internal static float Bf16(float x) => BFloat16Conversion.ToSingle(BFloat16Conversion.FromSingle(x));
}
