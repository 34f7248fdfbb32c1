using System.Runtime.CompilerServices;
using FuseSharp.Tensors.Kernels;

namespace FuseSharp.Training.Kernels;

/// <summary>
/// Backward of the activations and of the gated MLP product <c>y = act(gate) · up</c> (SwiGLU with SiLU, GeGLU with
/// GELU; Shazeer 2020, https://arxiv.org/abs/2002.05202). Derivatives, evaluated in float64 per element:
/// <code>
/// SiLU'      = s·(1 + x·(1 − s)),  s = σ(x)
/// GELU'      = Φ(x) + x·φ(x)
/// GELU-tanh' = ½(1 + t) + ½x·(1 − t²)·√(2/π)·(1 + 3·0.044715·x²),  t = tanh(√(2/π)(x + 0.044715x³))
/// ReLU'      = [x &gt; 0]   (0 at x = 0, as PyTorch)
/// QuickGELU' = s + 1.702·x·s·(1 − s),  s = σ(1.702x)
/// </code>
/// act itself is the engine's float64 <see cref="Activations.Reference"/> (one definition of each activation).
/// The forward must keep its inputs (the gated forward usually overwrites the gate in place).
/// </summary>
public static class ActivationBackward
{
    private const double SqrtTwoOverPi = 0.79788456080286535588;
    private const double InvSqrt2 = 0.70710678118654752440;
    private const double InvSqrt2Pi = 0.39894228040143267794;

    /// <summary><c>dx = dy · act'(x)</c>; <paramref name="inputGradient"/> may be <paramref name="outputGradient"/>.</summary>
    public static void Backward(ReadOnlySpan<float> x, ReadOnlySpan<float> outputGradient, Span<float> inputGradient, ActivationKind kind)
    {
        if (outputGradient.Length != x.Length || inputGradient.Length != x.Length) throw new ArgumentException("x, outputGradient and inputGradient must have the same length", nameof(outputGradient));
        for (int i = 0; i < x.Length; i++) inputGradient[i] = (float)(outputGradient[i] * Derivative(x[i], kind));
    }

    /// <summary>
    /// Backward of <c>y = act(gate) · up</c>: <c>dgate = dy · up · act'(gate)</c>, <c>dup = dy · act(gate)</c>.
    /// The gradients may overwrite <paramref name="gate"/> and <paramref name="up"/> (each element is read before it is written).
    /// </summary>
    public static void GatedBackward(ReadOnlySpan<float> gate, ReadOnlySpan<float> up, ReadOnlySpan<float> outputGradient, Span<float> gateGradient, Span<float> upGradient, ActivationKind kind)
    {
        int n = gate.Length;
        if (up.Length != n || outputGradient.Length != n || gateGradient.Length != n || upGradient.Length != n)
            throw new ArgumentException("gate, up, outputGradient and both gradients must have the same length", nameof(up));
        for (int i = 0; i < n; i++)
        {
            double g = gate[i], u = up[i], dy = outputGradient[i];
            double a = Activations.Reference(g, kind), da = Derivative(g, kind);
            gateGradient[i] = (float)(dy * u * da);
            upGradient[i] = (float)(dy * a);
        }
    }

    /// <summary>
    /// Backward of <c>clamp(x, −limit, limit)</c> (MPT's <c>clip_qkv</c>): the gradient passes where
    /// <c>−limit ≤ x ≤ limit</c> (bounds included, as <c>torch.clamp</c>) and is 0 where the value was clipped.
    /// </summary>
    public static void ClampBackward(ReadOnlySpan<float> x, float limit, ReadOnlySpan<float> outputGradient, Span<float> inputGradient)
    {
        if (outputGradient.Length != x.Length || inputGradient.Length != x.Length) throw new ArgumentException("x, outputGradient and inputGradient must have the same length", nameof(outputGradient));
        for (int i = 0; i < x.Length; i++) inputGradient[i] = x[i] >= -limit && x[i] <= limit ? outputGradient[i] : 0f;
    }

    /// <summary>act'(x) in float64.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static double Derivative(double x, ActivationKind kind)
    {
        switch (kind)
        {
            case ActivationKind.Silu:
            {
                double s = Sigmoid(x);
                return s * (1 + x * (1 - s));
            }
            case ActivationKind.Gelu:
                return 0.5 * Activations.Erfc(-x * InvSqrt2) + x * InvSqrt2Pi * Math.Exp(-0.5 * x * x);
            case ActivationKind.GeluTanh:
            {
                double t = Math.Tanh(SqrtTwoOverPi * (x + 0.044715 * x * x * x));
                return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * SqrtTwoOverPi * (1 + 3 * 0.044715 * x * x);
            }
            case ActivationKind.Relu:
                return x > 0 ? 1 : 0;
            case ActivationKind.QuickGelu:
            {
                double s = Sigmoid(1.702 * x);
                return s + 1.702 * x * s * (1 - s);
            }
            default:
                throw new ArgumentOutOfRangeException(nameof(kind));
        }
    }

    private static double Sigmoid(double x) => 1 / (1 + Math.Exp(-x));
}
