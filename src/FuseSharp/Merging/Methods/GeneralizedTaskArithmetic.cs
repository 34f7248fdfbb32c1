using System.Globalization;
using System.Numerics;
using System.Numerics.Tensors;
using FuseSharp.Merging.Kernels;
using FuseSharp.Merging.Planning;

namespace FuseSharp.Merging.Methods;

/// <summary>
/// mergekit's generalized task arithmetic (spec §1.6): <c>θ = θ_b + λ · mix(sparsify(θ_i − θ_b), w_i)</c>, one
/// engine behind task_arithmetic, ties, dare_linear, dare_ties, breadcrumbs, breadcrumbs_ties, della and
/// della_linear, which differ only in the sparsifier, whether TIES sign consensus runs, and the
/// normalize/rescale defaults (registered in <see cref="MergeMethodRegistry"/>).
/// Per tensor: (1) Δ_i = θ_i − θ_b, embeddings cut to the base's shape; (2) Δ_i sparsified (masks built in
/// one or two passes, see <see cref="Sparsify"/>); (3) D_i = w_i Δ̂_i; (4) with consensus, the elected sign
/// s = +1 where Σ D_i ≥ 0 else −1 and model i counts where sign(D_i) = s (zeros never count), mixed =
/// Σ D_i·agree_i, divisor = Σ w_i·agree_i (0 → 1); without, mixed = Σ D_i and divisor = Σ w_i (|·| &lt; 1e-8 → 1);
/// (5) mixed /= divisor if normalize; (6) mixed *= λ; (7) θ_b + mixed. The reference differences (election
/// on weighted vs unweighted deltas, the zero-sum tie rule, the disjoint mean's divisor, DARE/DELLA rescaling,
/// top-k ties, breadcrumbs' n_top = 0 slice) are parameters with mergekit's behaviour as the default.
/// </summary>
public sealed class GeneralizedTaskArithmetic : IMergeMethod
{
    private static readonly string[] RescaleModes = ["l1_norm", "inverse_density", "inverse_prob"];

    public GeneralizedTaskArithmetic(string name, string prettyName, string reference, SparsifyMethod sparsifier, bool consensus,
        bool defaultNormalize, bool defaultRescale)
    {
        Name = name;
        PrettyName = prettyName;
        Reference = reference;
        Sparsifier = sparsifier;
        UsesConsensus = consensus;
        var p = new List<ParameterDef>
        {
            ParameterDef.Bool("normalize", defaultNormalize, "divide the mixed delta by the sum of the (agreeing) weights"),
            ParameterDef.Number("lambda", 1.0, "scale of the merged task vector"),
            ParameterDef.Bool("int8_mask", false, "mergekit memory option; accepted, no effect on the result"),
        };
        if (sparsifier != SparsifyMethod.None)
        {
            p.Add(ParameterDef.Bool("rescale", defaultRescale, "rescale kept values after sparsification"));
            p.Add(ParameterDef.Choice("rescale_mode", "l1_norm", RescaleModes,
                "l1_norm: match the L1 norm (mergekit >= Feb 2025); inverse_density: divide by density (DARE paper, MergeLM); inverse_prob: divide by each element's keep probability (DELLA paper)"));
        }
        if (sparsifier == SparsifyMethod.Magnitude)
            p.Add(ParameterDef.Choice("topk_ties", "exact", ["exact", "keep_all"], "exact: keep exactly int(density*n) (ties by index); keep_all: keep every value equal to the threshold (MergeLLM)"));
        if (sparsifier == SparsifyMethod.MagnitudeOutliers)
            p.Add(ParameterDef.Choice("breadcrumbs_slice", "intended", ["intended", "mergekit"], "intended: keep [n_bot, n-n_top); mergekit: reproduce indices[n_bot:-n_top], empty when n_top = 0"));
        if (consensus)
        {
            p.Add(ParameterDef.Choice("sign_election", "weighted", ["weighted", "unweighted", "count"],
                "weighted: sign of Σ w·Δ (mergekit); unweighted: sign of Σ Δ (TIES paper, MergeLLM); count: majority of signs"));
            p.Add(ParameterDef.Choice("sign_tie", "positive", ["positive", "majority"],
                "sign where the election sum is 0: positive (mergekit) or the tensor's majority sign (MergeLLM)"));
            p.Add(ParameterDef.Choice("disjoint_mean", "weights", ["weights", "count"],
                "divisor of the disjoint mean: sum of agreeing weights (mergekit) or number of agreeing models (MergeLLM)"));
        }
        Parameters = p;
        var mp = new List<ParameterDef> { MethodHelpers.Weight };
        if (sparsifier != SparsifyMethod.None)
            mp.Add(ParameterDef.Number("density", 1.0, "fraction of the task vector kept", MethodHelpers.Density));
        if (sparsifier == SparsifyMethod.MagnitudeOutliers)
            mp.Add(ParameterDef.Number("gamma", 0.01, "fraction of the largest |delta| removed", v => v is >= 0 and < 1 ? null : "must be in [0, 1)"));
        if (sparsifier == SparsifyMethod.DellaMagprune)
            mp.Add(ParameterDef.Number("epsilon", 0.15, "half-width of the keep-probability range around density", ParameterDef.NonNegative));
        ModelParameters = mp;
    }

    public string Name { get; }

    public string PrettyName { get; }

    public string? Reference { get; }

    public SparsifyMethod Sparsifier { get; }

    public bool UsesConsensus { get; }

    public BaseModelPolicy BasePolicy => BaseModelPolicy.Required;

    public EmbeddingShapePolicy EmbeddingPolicy => EmbeddingShapePolicy.CutToBase;

    public IReadOnlyList<ParameterDef> Parameters { get; }

    public IReadOnlyList<ParameterDef> ModelParameters { get; }

    public void Validate(TensorTask task)
    {
        MethodHelpers.RequireCounts(task, Name, needsBase: true, min: 0);
        if (Sparsifier == SparsifyMethod.None) return;
        var mode = task.Parameters.String("rescale_mode");
        MethodHelpers.Require(mode != "inverse_prob" || Sparsifier == SparsifyMethod.DellaMagprune, task,
            "rescale_mode: inverse_prob needs per-element keep probabilities, which only DELLA has", "use l1_norm or inverse_density");
        if (Sparsifier == SparsifyMethod.DellaMagprune)
        {
            foreach (var input in task.Inputs)
            {
                double d = input.Parameters.Number("density"), e = input.Parameters.Number("epsilon");
                if (d >= 1) continue;
                MethodHelpers.Require(d - e > 0 && d + e < 1, task,
                    string.Create(CultureInfo.InvariantCulture, $"{input.ModelName}: DELLA keep probabilities density ± epsilon = [{d - e}, {d + e}] leave (0, 1)"),
                    "choose epsilon < min(density, 1 - density)");
            }
        }
    }

    public long WorkspaceBytes(TensorTask task)
    {
        if (Sparsifier == SparsifyMethod.None) return 0;
        long bits = task.Inputs.Count * (task.Count / 8 + 8);
        long select = Sparsifier is SparsifyMethod.Magnitude or SparsifyMethod.MagnitudeOutliers
            ? (task.Count <= OrderStatistics.DirectThreshold ? task.Count * 4 : task.Count / 8 * 4)
            : 0;
        long perElement = Sparsifier == SparsifyMethod.DellaMagprune && task.Parameters.OptionalString("rescale_mode") == "inverse_prob"
            ? task.Inputs.Count * task.Count * 4
            : 0;
        return bits + select + perElement;
    }

    public void Merge(TensorMergeContext ctx)
    {
        var task = ctx.Task;
        var b = task.Base!;
        int m = task.Inputs.Count;
        if (m == 0)
        {
            MethodHelpers.CopyInput(ctx, b);
            return;
        }
        var p = task.Parameters;
        bool normalize = p.Bool("normalize");
        float lambda = (float)p.Number("lambda");
        var weights = task.Inputs.Select(i => (float)i.Weight).ToArray();

        // 1-2. Masks (nothing to do for plain task arithmetic or density 1).
        var deltas = MethodHelpers.Deltas(task);
        SparseMask[]? masks = null;
        if (Sparsifier != SparsifyMethod.None)
        {
            var settings = task.Inputs.Select(i => Settings(i, p)).ToList();
            if (settings.Any(s => !s.Trivial))
            {
                long rowLength = task.Shape.Rank == 0 ? 1 : task.Shape[task.Shape.Rank - 1];
                masks = Sparsify.Build(ctx.Count, rowLength, settings, deltas, i => ctx.Random(task.Inputs[i]),
                    n => ctx.Allocate(n), ctx.Diagnostics.Guard, ctx.Cancellation,
                    MethodHelpers.BFloat16Magnitudes(task) ?? MethodHelpers.Deltas(task, magnitudes: true));
                ctx.Diagnostics.KeptFractions(masks.Select(x => x.KeptFraction).ToList());
            }
        }

        var election = !UsesConsensus ? ElectionBasis.Weighted : p.String("sign_election") switch
        {
            "unweighted" => ElectionBasis.Unweighted,
            "count" => ElectionBasis.Count,
            _ => ElectionBasis.Weighted,
        };
        bool countDivisor = UsesConsensus && p.String("disjoint_mean") == "count";
        float tieSign = 1f;
        if (UsesConsensus && p.String("sign_tie") == "majority")
            tieSign = MajoritySign(ctx, deltas, masks, weights, election);

        // 3-7. One pass over the chunks: all models fused (delta, mask, weight, consensus or plain sum, λ), then write.
        float sw = weights.Sum();
        float scalarDivisor = Math.Abs(sw) < 1e-8f ? 1f : sw;
        if (!UsesConsensus && normalize && Math.Abs(sw) < 1e-8f) ctx.Diagnostics.Guard("normalize: |Σ weights| < 1e-8, divisor set to 1");
        var flip = weights.Select(w => election == ElectionBasis.Unweighted && w < 0 ? -1f : 1f).ToArray();
        var inputs = task.Inputs;
        var sources = inputs.Select(i => i.Source).ToArray();
        var maskList = masks ?? new SparseMask?[m];
        // Diagnostics (delta norms, sign conflicts) cost as much as the merge itself, so they are measured on every
        // DiagnosticStride-th chunk (all chunks of small tensors) and scaled; the merge itself covers every element.
        int chunks = Chunked.CountOf(ctx.Count);
        int stride = chunks <= 2 * DiagnosticStride ? 1 : DiagnosticStride;
        bool plain = !UsesConsensus && masks is null;
        // Task arithmetic is linear: b + c Σ w_i (x_i - b) = (1 - c Σ w_i) b + Σ c w_i x_i, computed so on the chunks that
        // measure no diagnostics (the same float operations whether read into F32 or decoded from stored BF16 in registers).
        float c = lambda / (normalize ? scalarDivisor : 1f);
        float fb = 1f - c * weights.Sum();
        var f = weights.Select(w => c * w).ToArray();
        var stored = plain && m <= TaskVectorKernels.MaxVectorModels && TaskVectorKernels.CanDecodeBFloat16 ? StoredBFloat16.Of(task) : null;
        var stats = Chunked.Reduce(ctx.Count, m + 2, ctx.Cancellation, (start, length, sc, acc) =>
        {
            bool sampled = start / Chunked.Size % stride == 0;
            var xs = sc.Arrays(m + 1, length);
            var baseBuf = xs[m].AsSpan(0, length);
            // Stored BF16 inputs decoded in registers (bitwise the reads below); a non-finite value sends the chunk through
            // the checked reads, which name it.
            if (plain && !sampled && stored is not null && float.IsFinite(CombineStored(stored, fb, f, start, baseBuf)))
            {
                ctx.Output.Write(start, baseBuf);
                return;
            }
            b.Source.Read(start, baseBuf);
            // Inputs already screened by an earlier pass (the sparsifier's) are decoded from their BF16 bits inside the kernel
            // (whole vectors, AVX2, at most MaxVectorModels; the base is read as usual, so it may be of any dtype).
            Span<nint> raw = stackalloc nint[m <= TaskVectorKernels.MaxVectorModels ? m : 0];
            bool decodeInKernel = !(plain && !sampled) && raw.Length == m && length % 8 == 0 && TaskVectorKernels.CanDecodeBFloat16
                && StoredBFloat16.ScreenedInputs(sources, start, length, raw);
            if (!decodeInKernel)
                for (int i = 0; i < m; i++) inputs[i].Source.Read(start, xs[i].AsSpan(0, length));
            if (plain && !sampled)
            {
                TensorPrimitives.Multiply(baseBuf, fb, baseBuf);
                for (int i = 0; i < m; i++) TensorPrimitives.MultiplyAdd(xs[i].AsSpan(0, length), f[i], baseBuf, baseBuf);
            }
            else
            {
                Span<double> ss = m <= 64 ? stackalloc double[m] : new double[m];
                ss.Clear();
                acc[m] += TaskVectorKernels.MergeChunkWithBFloat16Inputs(xs, decodeInKernel ? raw : default, m, baseBuf, start, maskList, weights, flip, UsesConsensus, election, tieSign, countDivisor,
                    normalize, scalarDivisor, lambda, ss, diagnostics: sampled);
                if (sampled)
                {
                    for (int i = 0; i < m; i++) acc[i] += ss[i];
                    acc[m + 1] += length;
                }
            }
            ctx.Output.Write(start, baseBuf);
        });
        double fraction = stats[m + 1] / ctx.Count;
        ctx.Diagnostics.DeltaNorms(stats.Take(m).Select(v => Math.Sqrt(v / fraction)).ToList());
        if (m > 1) ctx.Diagnostics.SignConflictRate(stats[m] / stats[m + 1]);
        if (stride > 1) ctx.Diagnostics.Set("diagnostics_sampled_fraction", fraction);
    }

    /// <summary><c>destination = fb·θ_b + Σ f_i θ_i</c> of the chunk's stored BF16 bits (<see cref="MethodHelpers.CombineBFloat16"/>); NaN when a value is not finite.</summary>
    private static unsafe float CombineStored(StoredBFloat16 stored, float fb, float[] f, long start, Span<float> destination)
    {
        Span<nint> x = stackalloc nint[stored.Count];
        return MethodHelpers.CombineBFloat16(stored.Bits(start, destination.Length, x), fb, x, f, destination);
    }

    /// <summary>Diagnostics are measured on one chunk in this many (tensors of up to twice as many chunks: every chunk).</summary>
    public const int DiagnosticStride = 8;

    private SparsifySettings Settings(TaskInput input, ParameterValues global) => new(
        Method: Sparsifier,
        Density: input.Parameters.Number("density"),
        Gamma: input.Parameters.OptionalNumber("gamma") ?? 0,
        Epsilon: input.Parameters.OptionalNumber("epsilon") ?? 0,
        Rescale: global.Bool("rescale"),
        RescaleMode: global.String("rescale_mode") switch
        {
            "inverse_density" => RescaleMode.InverseDensity,
            "inverse_prob" => RescaleMode.InverseProbability,
            _ => RescaleMode.L1Norm,
        },
        Ties: global.OptionalString("topk_ties") == "keep_all" ? TopKTies.KeepAll : TopKTies.Exact,
        Slice: global.OptionalString("breadcrumbs_slice") == "mergekit" ? BreadcrumbsSlice.Mergekit : BreadcrumbsSlice.Intended);

    /// <summary>MergeLLM's tie rule: the sign of the sum over the tensor of the elected signs (a pre-pass).</summary>
    private static float MajoritySign(TensorMergeContext ctx, ChunkProducer deltas, SparseMask[]? masks, float[] weights, ElectionBasis election)
    {
        int m = weights.Length;
        var total = Chunked.Reduce(ctx.Count, 1, ctx.Cancellation, (start, length, sc, acc) =>
        {
            deltas(start, length, sc);
            var sum = sc.Get(m + 1, length);
            sum.Clear();
            for (int i = 0; i < m; i++)
            {
                var d = sc.Get(i, length);
                masks?[i].Apply(d, start);
                for (int j = 0; j < length; j++)
                    sum[j] += election switch
                    {
                        ElectionBasis.Unweighted => d[j],
                        ElectionBasis.Count => MathF.Sign(weights[i] * d[j]),
                        _ => weights[i] * d[j],
                    };
            }
            double s = 0;
            foreach (var x in sum) s += Math.Sign(x);
            acc[0] += s;
        });
        return Math.Sign(total[0]);
    }
}
