using System.Runtime.Intrinsics;

namespace FuseSharp.Tensors.Kernels;

/// <summary>How RoPE frequencies are stretched for contexts longer than the pretraining length (config.json <c>rope_scaling</c>).</summary>
public enum RopeScalingKind
{
    /// <summary>Plain RoPE.</summary>
    None,

    /// <summary>Position interpolation (Chen et al. 2023, https://arxiv.org/abs/2306.15595): every frequency divided by <c>factor</c>.</summary>
    Linear,

    /// <summary>Dynamic NTK: the base grows with the current sequence length once it passes the trained length.</summary>
    Dynamic,

    /// <summary>Llama 3.1: low frequencies divided by <c>factor</c>, high ones kept, a smooth ramp between.</summary>
    Llama3,

    /// <summary>YaRN (Peng et al. 2023, https://arxiv.org/abs/2309.00071): ramped interpolation plus an attention factor.</summary>
    Yarn,

    /// <summary>LongRoPE (Phi-3 128k): per-frequency factors, short or long list by sequence length, plus an attention factor.</summary>
    LongRope,
}

/// <summary>The <c>rope_scaling</c> parameters (names as transformers' <c>modeling_rope_utils.py</c>).</summary>
public sealed record RopeScaling(RopeScalingKind Kind, double Factor)
{
    /// <summary>Llama 3: wavelengths above <c>original / low</c> are fully interpolated.</summary>
    public double LowFreqFactor { get; init; } = 1;

    /// <summary>Llama 3: wavelengths below <c>original / high</c> are kept.</summary>
    public double HighFreqFactor { get; init; } = 4;

    /// <summary>The pretraining context (Llama 3, YaRN, LongRoPE, dynamic NTK).</summary>
    public int OriginalMaxPositions { get; init; }

    /// <summary>YaRN ramp bounds in rotations (defaults 32 and 1).</summary>
    public double BetaFast { get; init; } = 32;

    public double BetaSlow { get; init; } = 1;

    /// <summary>YaRN: whether the ramp bounds are rounded outwards to whole dimensions (default true).</summary>
    public bool Truncate { get; init; } = true;

    /// <summary>Explicit attention factor (YaRN, LongRoPE); null to derive it.</summary>
    public double? AttentionFactor { get; init; }

    public double? Mscale { get; init; }

    public double? MscaleAllDim { get; init; }

    /// <summary>LongRoPE per-frequency factors (length rotaryDim / 2).</summary>
    public IReadOnlyList<double>? ShortFactor { get; init; }

    public IReadOnlyList<double>? LongFactor { get; init; }
}

/// <summary>Rotary position embedding of one model: base, rotated dimensions per head, scaling.</summary>
/// <param name="Theta">The base (<c>rope_theta</c>).</param>
/// <param name="RotaryDim">Dimensions rotated per head (even; less than head_dim for partial rotary).</param>
/// <param name="MaxPositions">config <c>max_position_embeddings</c> (dynamic NTK and LongRoPE compare against it).</param>
/// <param name="Scaling">The <c>rope_scaling</c> entry, or null.</param>
public sealed record RopeSpec(double Theta, int RotaryDim, int MaxPositions, RopeScaling? Scaling = null)
{
    /// <summary>True when the frequencies depend on the sequence length (dynamic NTK, LongRoPE).</summary>
    public bool DependsOnLength => Scaling?.Kind is RopeScalingKind.Dynamic or RopeScalingKind.LongRope;
}

/// <summary>
/// Rotary position embedding (Su et al. 2021, https://arxiv.org/abs/2104.09864) in the Hugging Face "rotate_half"
/// layout: within the first <c>rotaryDim</c> dimensions of a head, dimension <c>i</c> pairs with
/// <c>i + rotaryDim/2</c> and the pair rotates by <c>position · invFreq[i]</c>. Dimensions past <c>rotaryDim</c>
/// (partial rotary, GPT-NeoX) pass through.
/// <para>Frequencies and angles follow transformers in float32: <c>invFreq</c> is a float, the angle is the float
/// product <c>position · invFreq</c>, and cos/sin of that float are rounded once and multiplied by the attention
/// factor. Models were trained with these roundings; at long positions they differ visibly from float64 angles.</para>
/// <para>Backward is the same rotation with <c>sin</c> negated (the rotation is orthogonal).</para>
/// </summary>
public static class Rope
{
    /// <summary>
    /// Inverse frequencies (length rotaryDim / 2) and attention factor for a forward whose largest position is
    /// <paramref name="sequenceLength"/> − 1 (transformers' <c>ROPE_INIT_FUNCTIONS</c> plus its dynamic updates).
    /// </summary>
    public static (float[] InverseFrequencies, float AttentionFactor) Frequencies(RopeSpec spec, int sequenceLength)
    {
        ArgumentNullException.ThrowIfNull(spec);
        int dim = spec.RotaryDim;
        if (dim <= 0 || dim % 2 != 0) throw new ArgumentException($"rotary dimension {dim} must be positive and even", nameof(spec));
        int half = dim / 2;
        var s = spec.Scaling;
        double theta = spec.Theta;
        int original = s is { OriginalMaxPositions: > 0 } ? s.OriginalMaxPositions : spec.MaxPositions;
        if (s?.Kind == RopeScalingKind.Dynamic)
        {
            // base · ((factor · L / max) − (factor − 1))^(dim / (dim − 2)), only once L passes the trained length.
            double len = Math.Max(sequenceLength, original);
            theta *= Math.Pow(s.Factor * len / original - (s.Factor - 1), dim / (dim - 2.0));
        }
        var inv = new float[half];
        for (int i = 0; i < half; i++) inv[i] = (float)(1.0 / Math.Pow(theta, (float)(2 * i) / dim));
        float attention = 1f;
        switch (s?.Kind)
        {
            case null or RopeScalingKind.None or RopeScalingKind.Dynamic:
                break;
            case RopeScalingKind.Linear:
                for (int i = 0; i < half; i++) inv[i] = (float)(inv[i] / s.Factor);
                break;
            case RopeScalingKind.Llama3:
                Llama3(inv, s, original);
                break;
            case RopeScalingKind.Yarn:
                attention = Yarn(inv, s, theta, dim, original);
                break;
            case RopeScalingKind.LongRope:
                attention = LongRope(inv, s, theta, dim, spec.MaxPositions, sequenceLength);
                break;
        }
        return (inv, attention);
    }

    private static void Llama3(float[] inv, RopeScaling s, int original)
    {
        double lowWavelen = original / s.LowFreqFactor, highWavelen = original / s.HighFreqFactor;
        for (int i = 0; i < inv.Length; i++)
        {
            double f = inv[i], wavelen = 2 * Math.PI / f;
            if (wavelen > lowWavelen) f /= s.Factor;
            else if (wavelen >= highWavelen)
            {
                double smooth = (original / wavelen - s.LowFreqFactor) / (s.HighFreqFactor - s.LowFreqFactor);
                f = (1 - smooth) * f / s.Factor + smooth * f;
            }
            inv[i] = (float)f;
        }
    }

    private static float Yarn(float[] inv, RopeScaling s, double theta, int dim, int original)
    {
        static double Mscale(double scale, double m) => scale <= 1 ? 1.0 : 0.1 * m * Math.Log(scale) + 1.0;
        double attention = s.AttentionFactor
            ?? (s.Mscale is { } m && s.MscaleAllDim is { } mAll && m != 0 && mAll != 0 ? Mscale(s.Factor, m) / Mscale(s.Factor, mAll) : Mscale(s.Factor, 1));
        double CorrectionDim(double rotations) => dim * Math.Log(original / (rotations * 2 * Math.PI)) / (2 * Math.Log(theta));
        double low = CorrectionDim(s.BetaFast), high = CorrectionDim(s.BetaSlow);
        if (s.Truncate) { low = Math.Floor(low); high = Math.Ceiling(high); }
        low = Math.Max(low, 0);
        high = Math.Min(high, dim - 1);
        if (low == high) high += 0.001; // avoids a division by zero in the ramp, as the reference does
        for (int i = 0; i < inv.Length; i++)
        {
            double extrapolation = inv[i], interpolation = extrapolation / s.Factor;
            double ramp = Math.Clamp((i - low) / (high - low), 0, 1);
            double keep = 1 - ramp; // share of the original (extrapolated) frequency
            inv[i] = (float)(interpolation * (1 - keep) + extrapolation * keep);
        }
        return (float)attention;
    }

    private static float LongRope(float[] inv, RopeScaling s, double theta, int dim, int maxPositions, int sequenceLength)
    {
        // Phi-3 stores the pretraining length in original_max_position_embeddings and uses max / original as the factor.
        int original = s.OriginalMaxPositions > 0 ? s.OriginalMaxPositions : maxPositions;
        double factor = s.OriginalMaxPositions > 0 ? (double)maxPositions / s.OriginalMaxPositions : s.Factor;
        double attention = s.AttentionFactor ?? (factor <= 1 ? 1.0 : Math.Sqrt(1 + Math.Log(factor) / Math.Log(original)));
        var ext = sequenceLength > original ? s.LongFactor : s.ShortFactor;
        if (ext is null || ext.Count != inv.Length)
            throw new ArgumentException($"longrope needs short_factor and long_factor with {inv.Length} values each");
        for (int i = 0; i < inv.Length; i++)
            inv[i] = (float)(1.0 / (ext[i] * Math.Pow(theta, (float)(2 * i) / dim)));
        return (float)attention;
    }

    /// <summary>cos and sin (each rotaryDim / 2 values) for one position.</summary>
    public static void CosSin(ReadOnlySpan<float> inverseFrequencies, float attentionFactor, int position, Span<float> cos, Span<float> sin)
    {
        if (cos.Length != inverseFrequencies.Length || sin.Length != inverseFrequencies.Length)
            throw new ArgumentException("cos and sin must have one value per frequency");
        for (int i = 0; i < inverseFrequencies.Length; i++)
        {
            float angle = position * inverseFrequencies[i]; // float32 product, as transformers computes it
            cos[i] = (float)Math.Cos(angle) * attentionFactor;
            sin[i] = (float)Math.Sin(angle) * attentionFactor;
        }
    }

    /// <summary>
    /// Rotates, in place, the first <paramref name="rotaryDim"/> dimensions of every head of one token:
    /// <c>x: (heads, headDim)</c>; <c>out[i] = x[i]·cos[i] − x[i+h]·sin[i]</c>,
    /// <c>out[i+h] = x[i+h]·cos[i] + x[i]·sin[i]</c>, <c>h = rotaryDim/2</c>.
    /// </summary>
    public static unsafe void Apply(Span<float> x, int headDim, int rotaryDim, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin)
    {
        int half = Validate(x, headDim, rotaryDim, cos, sin);
        int heads = x.Length / headDim;
        fixed (float* px = x, pc = cos, ps = sin)
        {
            for (int h = 0; h < heads; h++)
            {
                float* a = px + h * headDim, b = a + half;
                int i = 0;
                if (Vector256.IsHardwareAccelerated)
                {
                    for (; i <= half - 8; i += 8)
                    {
                        var x1 = Vector256.Load(a + i);
                        var x2 = Vector256.Load(b + i);
                        var c = Vector256.Load(pc + i);
                        var s = Vector256.Load(ps + i);
                        Vector256.Store(x1 * c - x2 * s, a + i);
                        Vector256.Store(x2 * c + x1 * s, b + i);
                    }
                }
                for (; i < half; i++)
                {
                    float x1 = a[i], x2 = b[i];
                    a[i] = x1 * cos[i] - x2 * sin[i];
                    b[i] = x2 * cos[i] + x1 * sin[i];
                }
            }
        }
    }

    /// <summary>The scalar reference of <see cref="Apply"/> (float64 arithmetic, rounded once).</summary>
    public static void ApplyReference(Span<float> x, int headDim, int rotaryDim, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin)
    {
        int half = Validate(x, headDim, rotaryDim, cos, sin);
        for (int h = 0; h < x.Length / headDim; h++)
        {
            for (int i = 0; i < half; i++)
            {
                double x1 = x[h * headDim + i], x2 = x[h * headDim + half + i];
                x[h * headDim + i] = (float)(x1 * cos[i] - x2 * sin[i]);
                x[h * headDim + half + i] = (float)(x2 * cos[i] + x1 * sin[i]);
            }
        }
    }

    private static int Validate(Span<float> x, int headDim, int rotaryDim, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin)
    {
        if (headDim <= 0 || x.Length % headDim != 0) throw new ArgumentException($"x has {x.Length} values, not a whole number of heads of {headDim}", nameof(x));
        if (rotaryDim <= 0 || rotaryDim % 2 != 0 || rotaryDim > headDim) throw new ArgumentException($"rotary dimension {rotaryDim} must be even and at most the head dimension {headDim}", nameof(rotaryDim));
        int half = rotaryDim / 2;
        if (cos.Length != half || sin.Length != half) throw new ArgumentException($"cos and sin need {half} values each", nameof(cos));
        return half;
    }
}
