using System.Runtime.Intrinsics;

namespace FuseSharp.Tensors.Kernels;

/// <summary>Element-wise activation functions of transformer MLPs (config <c>hidden_act</c> names in the docs).</summary>
public enum ActivationKind
{
    /// <summary><c>x · sigmoid(x)</c> ("silu", "swish").</summary>
    Silu,

    /// <summary>Exact GELU <c>x · Φ(x) = ½x(1 + erf(x/√2))</c> ("gelu").</summary>
    Gelu,

    /// <summary>Tanh GELU <c>½x(1 + tanh(√(2/π)(x + 0.044715x³)))</c> ("gelu_new", "gelu_pytorch_tanh", "gelu_fast").</summary>
    GeluTanh,

    /// <summary><c>max(x, 0)</c> ("relu").</summary>
    Relu,

    /// <summary><c>x · sigmoid(1.702x)</c> ("quick_gelu").</summary>
    QuickGelu,
}

/// <summary>
/// Activations and gated activations (<c>act(gate) · up</c>: SwiGLU with SiLU, GeGLU with GELU; Shazeer 2020,
/// https://arxiv.org/abs/2002.05202). Vectorised with Vector256; each has a float64 scalar reference.
/// <para>Exact GELU has no erf in .NET: Φ(x) = ½·erfc(−x/√2) with the Chebyshev-fitted erfc of Numerical Recipes
/// (§6.2, fractional error below 1.2e-7 everywhere), so GELU keeps float precision even far in the negative tail.</para>
/// <para>Backward needs the inputs (gate and up): SiLU' = s(1 + x(1 − s)), GELU' = Φ(x) + x·φ(x). The in-place
/// gated form overwrites the gate, so a training forward must keep a copy.</para>
/// </summary>
public static class Activations
{
    private const float InvSqrt2 = 0.70710678118654752f;
    private const float SqrtTwoOverPi = 0.79788456080286536f;

    /// <summary><c>destination[i] = act(x[i])</c>; the spans may be the same.</summary>
    public static unsafe void Apply(ReadOnlySpan<float> x, Span<float> destination, ActivationKind kind)
    {
        if (destination.Length != x.Length) throw new ArgumentException("destination length differs from x", nameof(destination));
        fixed (float* px = x, py = destination) Dispatch(px, null, py, x.Length, kind);
    }

    /// <summary><c>destination[i] = act(gate[i]) · up[i]</c>; destination may be gate or up.</summary>
    public static unsafe void Gated(ReadOnlySpan<float> gate, ReadOnlySpan<float> up, Span<float> destination, ActivationKind kind)
    {
        if (up.Length != gate.Length || destination.Length != gate.Length) throw new ArgumentException("gate, up and destination must have the same length", nameof(up));
        fixed (float* pg = gate, pu = up, py = destination) Dispatch(pg, pu, py, gate.Length, kind);
    }

    /// <summary>The scalar reference of one activation, in float64.</summary>
    public static double Reference(double x, ActivationKind kind) => kind switch
    {
        ActivationKind.Silu => x / (1 + Math.Exp(-x)),
        ActivationKind.Gelu => 0.5 * x * Erfc(-x / Math.Sqrt(2)),
        ActivationKind.GeluTanh => 0.5 * x * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x))),
        ActivationKind.Relu => Math.Max(x, 0),
        ActivationKind.QuickGelu => x / (1 + Math.Exp(-1.702 * x)),
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    /// <summary>
    /// The complementary error function in float64 (reference quality, ~1e-14): the Maclaurin series of erf for
    /// |x| &lt; 2.5 and the continued fraction of erfc beyond, where the series would lose digits.
    /// </summary>
    public static double Erfc(double x)
    {
        if (double.IsNaN(x)) return double.NaN;
        double ax = Math.Abs(x);
        if (ax < 2.5)
        {
            // erf(x) = 2/√π Σ (−1)^n x^(2n+1) / (n! (2n+1))
            double term = ax, sum = ax, x2 = ax * ax;
            for (int n = 1; n < 200 && Math.Abs(term) > 1e-17 * Math.Abs(sum); n++)
            {
                term *= -x2 / n;
                sum += term / (2 * n + 1);
            }
            double erf = 2 / Math.Sqrt(Math.PI) * sum;
            return x >= 0 ? 1 - erf : 1 + erf;
        }
        // erfc(z) = exp(−z²)/√π · 1/(z + 1/2/(z + 1/(z + 3/2/(z + ...)))), evaluated bottom-up.
        double f = ax;
        for (int n = 60; n >= 1; n--) f = ax + n / 2.0 / f;
        double tail = Math.Exp(-ax * ax) / Math.Sqrt(Math.PI) / f;
        return x >= 0 ? tail : 2 - tail;
    }

    private static unsafe void Dispatch(float* x, float* up, float* y, int n, ActivationKind kind)
    {
        switch (kind)
        {
            case ActivationKind.Silu: Run<SiluOp>(x, up, y, n); break;
            case ActivationKind.Gelu: Run<GeluOp>(x, up, y, n); break;
            case ActivationKind.GeluTanh: Run<GeluTanhOp>(x, up, y, n); break;
            case ActivationKind.Relu: Run<ReluOp>(x, up, y, n); break;
            case ActivationKind.QuickGelu: Run<QuickGeluOp>(x, up, y, n); break;
            default: throw new ArgumentOutOfRangeException(nameof(kind));
        }
    }

    /// <summary>The one driver: vector body, scalar tail, optional gating by <paramref name="up"/>.</summary>
    private static unsafe void Run<TOp>(float* x, float* up, float* y, int n) where TOp : struct, IActivationOp
    {
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            for (; i <= n - 8; i += 8)
            {
                var a = TOp.Invoke(Vector256.Load(x + i));
                if (up != null) a *= Vector256.Load(up + i);
                Vector256.Store(a, y + i);
            }
        }
        for (; i < n; i++)
        {
            float a = TOp.Invoke(x[i]);
            y[i] = up != null ? a * up[i] : a;
        }
    }

    /// <summary>An activation at scalar and Vector256 width (the TensorPrimitives operator pattern).</summary>
    private interface IActivationOp
    {
        static abstract float Invoke(float x);

        static abstract Vector256<float> Invoke(Vector256<float> x);
    }

    private readonly struct SiluOp : IActivationOp
    {
        public static float Invoke(float x) => x / (1f + MathF.Exp(-x));

        public static Vector256<float> Invoke(Vector256<float> x) => x / (Vector256<float>.One + Vector256.Exp(-x));
    }

    private readonly struct GeluOp : IActivationOp
    {
        public static float Invoke(float x) => x * 0.5f * ErfcScalar(-x * InvSqrt2);

        public static Vector256<float> Invoke(Vector256<float> x) => x * Vector256.Create(0.5f) * ErfcVector(x * Vector256.Create(-InvSqrt2));
    }

    // ½x(1 + tanh u) = x · sigmoid(2u) = x / (1 + exp(−2u)): the same function without the cancellation of
    // 1 + tanh u in the negative tail, and saturating correctly (exp → ∞ gives −0, exp → 0 gives x).
    private readonly struct GeluTanhOp : IActivationOp
    {
        public static float Invoke(float x) => x / (1f + MathF.Exp(-2f * SqrtTwoOverPi * (x + 0.044715f * x * x * x)));

        public static Vector256<float> Invoke(Vector256<float> x)
        {
            var u = Vector256.Create(SqrtTwoOverPi) * (x + Vector256.Create(0.044715f) * x * x * x);
            return x / (Vector256<float>.One + Vector256.Exp(Vector256.Create(-2f) * u));
        }
    }

    private readonly struct ReluOp : IActivationOp
    {
        public static float Invoke(float x) => MathF.Max(x, 0f);

        public static Vector256<float> Invoke(Vector256<float> x) => Vector256.Max(x, Vector256<float>.Zero);
    }

    private readonly struct QuickGeluOp : IActivationOp
    {
        public static float Invoke(float x) => x / (1f + MathF.Exp(-1.702f * x));

        public static Vector256<float> Invoke(Vector256<float> x) => x / (Vector256<float>.One + Vector256.Exp(x * Vector256.Create(-1.702f)));
    }

    // Numerical Recipes erfcc: t = 1/(1 + z/2), erfc(z) = t·exp(−z² + P(t)) for z ≥ 0, 2 − erfc(−z) below.
    private static float ErfcScalar(float x)
    {
        float z = MathF.Abs(x);
        float t = 1f / (1f + 0.5f * z);
        float p = -1.26551223f + t * (1.00002368f + t * (0.37409196f + t * (0.09678418f + t * (-0.18628806f
            + t * (0.27886807f + t * (-1.13520398f + t * (1.48851587f + t * (-0.82215223f + t * 0.17087277f))))))));
        float r = t * MathF.Exp(-z * z + p);
        return x >= 0 ? r : 2f - r;
    }

    private static Vector256<float> ErfcVector(Vector256<float> x)
    {
        var one = Vector256<float>.One;
        var z = Vector256.Abs(x);
        var t = one / (one + Vector256.Create(0.5f) * z);
        var p = Vector256.Create(0.17087277f);
        p = Vector256.FusedMultiplyAdd(p, t, Vector256.Create(-0.82215223f));
        p = Vector256.FusedMultiplyAdd(p, t, Vector256.Create(1.48851587f));
        p = Vector256.FusedMultiplyAdd(p, t, Vector256.Create(-1.13520398f));
        p = Vector256.FusedMultiplyAdd(p, t, Vector256.Create(0.27886807f));
        p = Vector256.FusedMultiplyAdd(p, t, Vector256.Create(-0.18628806f));
        p = Vector256.FusedMultiplyAdd(p, t, Vector256.Create(0.09678418f));
        p = Vector256.FusedMultiplyAdd(p, t, Vector256.Create(0.37409196f));
        p = Vector256.FusedMultiplyAdd(p, t, Vector256.Create(1.00002368f));
        p = Vector256.FusedMultiplyAdd(p, t, Vector256.Create(-1.26551223f));
        var r = t * Vector256.Exp(p - z * z);
        return Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(x, Vector256<float>.Zero), r, Vector256.Create(2f) - r);
    }
}
