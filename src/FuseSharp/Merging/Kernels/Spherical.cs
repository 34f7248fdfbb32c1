namespace FuseSharp.Merging.Kernels;

/// <summary>
/// Spherical interpolation coefficients: <c>slerp(t; v0, v1) = c0·v0 + c1·v1</c> from the squared norms and the dot
/// product of v0 and v1 (so the vectors can be reduced in one streaming pass and combined in a second).
/// The two mergekit variants differ in their guards and are kept apart on purpose.
/// </summary>
public static class Spherical
{
    /// <summary>mergekit <c>slerp</c>'s colinearity threshold on the cosine.</summary>
    public const double DotThreshold = 0.9995;

    /// <summary>
    /// mergekit <c>slerp</c> (spec §2.7): each vector is normalised by its Frobenius norm unless that norm is
    /// ≤ 1e-8; if |cos| &gt; 0.9995 the result is the lerp <c>(1−t, t)</c>; otherwise θ0 = acos(cos) and
    /// <c>c0 = sin(θ0 − tθ0)/sin θ0</c>, <c>c1 = sin(tθ0)/sin θ0</c>. The cosine is not clipped (the threshold
    /// keeps acos in range). All-zero tensors give cos = 0, θ0 = π/2 (not a convex combination), as in mergekit.
    /// </summary>
    public static (double C0, double C1, double Cos, bool Lerp) Slerp(double t, double sumSq0, double sumSq1, double dot)
    {
        double n0 = Math.Sqrt(sumSq0), n1 = Math.Sqrt(sumSq1);
        double cos = dot / ((n0 > 1e-8 ? n0 : 1) * (n1 > 1e-8 ? n1 : 1));
        if (Math.Abs(cos) > DotThreshold) return (1 - t, t, cos, true);
        double theta0 = Math.Acos(cos), sin0 = Math.Sin(theta0), thetaT = theta0 * t;
        return (Math.Sin(theta0 - thetaT) / sin0, Math.Sin(thetaT) / sin0, cos, false);
    }

    /// <summary>
    /// mergekit <c>nuslerp</c> (spec §2.8): unit vectors with the norm clamped at 1e-7, the cosine clamped to
    /// [−1, 1], <c>c0 = sin((1−t)θ)/sin θ</c>, <c>c1 = sin(tθ)/sin θ</c>, and the lerp where |sin θ| &lt; 1e-8.
    /// </summary>
    public static (double C0, double C1, double Cos, bool Lerp) NuSlerp(double t, double sumSq0, double sumSq1, double dot)
    {
        double n0 = Math.Max(Math.Sqrt(sumSq0), 1e-7), n1 = Math.Max(Math.Sqrt(sumSq1), 1e-7);
        double cos = Math.Clamp(dot / (n0 * n1), -1, 1);
        double theta = Math.Acos(cos), sin = Math.Sin(theta);
        if (Math.Abs(sin) < 1e-8) return (1 - t, t, cos, true);
        return (Math.Sin((1 - t) * theta) / sin, Math.Sin(t * theta) / sin, cos, false);
    }
}
