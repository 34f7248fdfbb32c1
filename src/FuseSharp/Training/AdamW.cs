using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using FuseSharp.Tensors;

namespace FuseSharp.Training;

/// <summary>AdamW hyperparameters (names and defaults as the Hugging Face Trainer: betas 0.9/0.999, eps 1e-8).</summary>
/// <param name="Beta1">Decay of the first moment.</param>
/// <param name="Beta2">Decay of the second moment.</param>
/// <param name="Epsilon">Added to the bias-corrected root of the second moment.</param>
/// <param name="WeightDecay">Decoupled decay: every step multiplies a decayed parameter by <c>1 − lr·WeightDecay</c>.</param>
public sealed record AdamWOptions(double Beta1 = 0.9, double Beta2 = 0.999, double Epsilon = 1e-8, double WeightDecay = 0.0)
{
    /// <exception cref="TrainingException">A value outside its range.</exception>
    public void Validate()
    {
        if (!(Beta1 >= 0 && Beta1 < 1) || !(Beta2 >= 0 && Beta2 < 1))
            throw new TrainingException($"Adam betas ({Beta1}, {Beta2}) must lie in [0, 1)", "the usual values are 0.9,0.999 or 0.9,0.95");
        if (!(Epsilon >= 0) || double.IsInfinity(Epsilon)) throw new TrainingException($"Adam epsilon {Epsilon} must be a finite number >= 0");
        if (!(WeightDecay >= 0) || double.IsInfinity(WeightDecay)) throw new TrainingException($"weight decay {WeightDecay} must be a finite number >= 0");
    }
}

/// <summary>
/// Which parameters weight decay applies to. The default follows the Hugging Face Trainer: no decay on biases and
/// normalisation weights. Every architecture FuseSharp trains stores those (and only those) as one-dimensional
/// tensors, so the rule is "decay tensors of rank ≥ 2" (nanoGPT's rule, which equals the Trainer's name-based rule
/// here); <see cref="NoDecayPatterns"/> exempts further tensors by name. <see cref="DecayAll"/> decays every
/// parameter, as a plain <c>torch.optim.AdamW(model.parameters())</c> does.
/// </summary>
/// <param name="DecayAll">Decay every parameter.</param>
/// <param name="NoDecayPatterns">Name substrings exempt from decay (ordinal), in addition to the rank rule.</param>
public sealed record WeightDecayPolicy(bool DecayAll = false, IReadOnlyList<string>? NoDecayPatterns = null)
{
    /// <summary>No decay on biases and norms.</summary>
    public static readonly WeightDecayPolicy Default = new();

    /// <summary>Decay on every parameter.</summary>
    public static readonly WeightDecayPolicy All = new(DecayAll: true);

    /// <summary>True when weight decay applies to the tensor <paramref name="name"/> of shape <paramref name="shape"/>.</summary>
    public bool AppliesTo(string name, Shape shape)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (DecayAll) return true;
        if (shape.Rank < 2) return false;
        return NoDecayPatterns is null || !NoDecayPatterns.Any(p => name.Contains(p, StringComparison.Ordinal));
    }
}

/// <summary>
/// AdamW (Loshchilov and Hutter, https://arxiv.org/abs/1711.05101) exactly as <c>torch.optim.AdamW</c> computes it on
/// CPU (the single-tensor path), in float32 with the step scalars in float64:
/// <code>
/// p ← p · (1 − lr·wd)                         (decayed tensors only)
/// m ← m + (1 − β1)·(g − m)                    (torch's lerp_: one fused multiply-add)
/// v ← v·β2 + ((1 − β2)·g)·g                   (mul_ then addcmul_, two roundings)
/// p ← p + (−lr / (1 − β1^t))·m / (√v / √(1 − β2^t) + eps)
/// </code>
/// The moments live in two arenas laid out like the parameters, so checkpointing them is writing two arenas.
/// The update is element-wise: results do not depend on the thread count.
/// </summary>
public sealed class AdamW : IDisposable
{
    private const int Chunk = 1 << 16;
    private readonly bool[] _decay;

    /// <summary>A fresh optimizer (zero moments, step 0) for <paramref name="parameters"/>.</summary>
    public AdamW(TensorArena parameters, AdamWOptions options, WeightDecayPolicy? policy = null)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Parameters = parameters;
        Options = options;
        Policy = policy ?? WeightDecayPolicy.Default;
        ExpAvg = parameters.CreateLike();
        ExpAvgSq = parameters.CreateLike();
        _decay = parameters.Entries.Select(e => Policy.AppliesTo(e.Name, e.Shape)).ToArray();
    }

    public TensorArena Parameters { get; }

    public AdamWOptions Options { get; }

    public WeightDecayPolicy Policy { get; }

    /// <summary>First moments (torch's <c>exp_avg</c>).</summary>
    public TensorArena ExpAvg { get; }

    /// <summary>Second moments (torch's <c>exp_avg_sq</c>).</summary>
    public TensorArena ExpAvgSq { get; }

    /// <summary>Steps taken so far (torch's <c>state["step"]</c>).</summary>
    public long StepCount { get; set; }

    /// <summary>Whether weight decay applies to parameter <paramref name="index"/>.</summary>
    public bool Decays(int index) => _decay[index];

    /// <summary>Takes one step with learning rate <paramref name="learningRate"/>, reading <paramref name="gradients"/> (same layout).</summary>
    public unsafe void Step(TensorArena gradients, double learningRate)
    {
        ArgumentNullException.ThrowIfNull(gradients);
        Parameters.RequireSameLayout(gradients);
        StepCount++;
        var s = StepScalars.For(Options, StepCount, learningRate);
        // Work items: (entry, chunk) pairs of at most Chunk elements, so one large tensor still spreads over threads.
        var items = new List<(int Entry, long Start, int Length)>();
        for (int i = 0; i < Parameters.Count; i++)
        {
            long n = Parameters.Entries[i].Length;
            for (long start = 0; start < n; start += Chunk) items.Add((i, start, (int)Math.Min(Chunk, n - start)));
        }
        float* p = Parameters.Pointer, g = gradients.Pointer, m = ExpAvg.Pointer, v = ExpAvgSq.Pointer;
        void Run(int k)
        {
            var (entry, start, length) = items[k];
            long o = Parameters.Entries[entry].Offset + start;
            Update(p + o, g + o, m + o, v + o, length, s, _decay[entry] && Options.WeightDecay != 0);
        }
        if (Parallelism.MaxThreads <= 1 || items.Count == 1) { for (int k = 0; k < items.Count; k++) Run(k); }
        else Parallel.For(0, items.Count, Parallelism.Options, Run);
    }

    /// <summary>The per-step scalars, computed in float64 as torch does from Python floats, then rounded to float.</summary>
    internal readonly record struct StepScalars(float DecayFactor, float OneMinusBeta1, float Beta2, float OneMinusBeta2, float BiasCorrection2Sqrt, float Epsilon, float NegStepSize)
    {
        public static StepScalars For(AdamWOptions o, long step, double lr)
        {
            double bc1 = 1 - Math.Pow(o.Beta1, step);
            double bc2 = 1 - Math.Pow(o.Beta2, step);
            return new StepScalars((float)(1 - lr * o.WeightDecay), (float)(1 - o.Beta1), (float)o.Beta2, (float)(1 - o.Beta2),
                (float)Math.Sqrt(bc2), (float)o.Epsilon, (float)(-(lr / bc1)));
        }
    }

    /// <summary>The update of <paramref name="n"/> consecutive elements; the vector and scalar paths round identically.</summary>
    internal static unsafe void Update(float* p, float* g, float* m, float* v, int n, in StepScalars s, bool decay)
    {
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var wd = Vector256.Create(s.DecayFactor);
            var w1 = Vector256.Create(s.OneMinusBeta1);
            var b2 = Vector256.Create(s.Beta2);
            var w2 = Vector256.Create(s.OneMinusBeta2);
            var bc2 = Vector256.Create(s.BiasCorrection2Sqrt);
            var eps = Vector256.Create(s.Epsilon);
            var step = Vector256.Create(s.NegStepSize);
            for (; i <= n - 8; i += 8)
            {
                var pv = Vector256.Load(p + i);
                var gv = Vector256.Load(g + i);
                var mv = Vector256.Load(m + i);
                var vv = Vector256.Load(v + i);
                if (decay) pv *= wd;
                mv = Vector256.FusedMultiplyAdd(w1, gv - mv, mv);
                vv = vv * b2 + w2 * gv * gv;
                var denom = Vector256.Sqrt(vv) / bc2 + eps;
                pv += step * mv / denom;
                Vector256.Store(pv, p + i);
                Vector256.Store(mv, m + i);
                Vector256.Store(vv, v + i);
            }
        }
        for (; i < n; i++) UpdateOne(ref p[i], g[i], ref m[i], ref v[i], s, decay);
    }

    /// <summary>The scalar reference of one element (torch's operation order).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void UpdateOne(ref float p, float g, ref float m, ref float v, in StepScalars s, bool decay)
    {
        if (decay) p *= s.DecayFactor;
        m = MathF.FusedMultiplyAdd(s.OneMinusBeta1, g - m, m);
        v = v * s.Beta2 + s.OneMinusBeta2 * g * g;
        float denom = MathF.Sqrt(v) / s.BiasCorrection2Sqrt + s.Epsilon;
        p += s.NegStepSize * m / denom;
    }

    public void Dispose()
    {
        ExpAvg.Dispose();
        ExpAvgSq.Dispose();
    }
}
