using FuseSharp.Merging.Kernels;

namespace FuseSharp.Merging.Methods;

/// <summary>
/// Every merge method by its <c>merge_method</c> name: one line each. The task-arithmetic family is one engine
/// (<see cref="GeneralizedTaskArithmetic"/>) registered with different sparsifiers, consensus and defaults, as in
/// mergekit's registry (spec §1.6 table).
/// </summary>
public static class MergeMethodRegistry
{
    private static readonly IMergeMethod[] All =
    [
        new Linear(),
        new GeneralizedTaskArithmetic("task_arithmetic", "Task Arithmetic", "https://arxiv.org/abs/2212.04089", SparsifyMethod.None, consensus: false, defaultNormalize: false, defaultRescale: false),
        new GeneralizedTaskArithmetic("ties", "TIES", "https://arxiv.org/abs/2306.01708", SparsifyMethod.Magnitude, consensus: true, defaultNormalize: true, defaultRescale: false),
        new GeneralizedTaskArithmetic("dare_linear", "Linear DARE", "https://arxiv.org/abs/2311.03099", SparsifyMethod.Bernoulli, consensus: false, defaultNormalize: false, defaultRescale: true),
        new GeneralizedTaskArithmetic("dare_ties", "DARE TIES", "https://arxiv.org/abs/2311.03099", SparsifyMethod.Bernoulli, consensus: true, defaultNormalize: false, defaultRescale: true),
        new GeneralizedTaskArithmetic("breadcrumbs", "Model Breadcrumbs", "https://arxiv.org/abs/2312.06795", SparsifyMethod.MagnitudeOutliers, consensus: false, defaultNormalize: false, defaultRescale: false),
        new GeneralizedTaskArithmetic("breadcrumbs_ties", "Model Breadcrumbs with TIES", "https://arxiv.org/abs/2312.06795", SparsifyMethod.MagnitudeOutliers, consensus: true, defaultNormalize: false, defaultRescale: false),
        new GeneralizedTaskArithmetic("della", "DELLA", "https://arxiv.org/abs/2406.11617", SparsifyMethod.DellaMagprune, consensus: true, defaultNormalize: true, defaultRescale: true),
        new GeneralizedTaskArithmetic("della_linear", "Linear DELLA", "https://arxiv.org/abs/2406.11617", SparsifyMethod.DellaMagprune, consensus: false, defaultNormalize: false, defaultRescale: true),
        new Slerp(),
        new NuSlerp(),
        new MultiSlerp(),
        new Karcher(),
        new ModelStock(),
        new NearSwap(),
        new ArceeFusion(),
        new Sce(),
        new Varm(),
        new Widen(),
        new LmCocktail(),
        new Passthrough(),
    ];

    private static readonly Dictionary<string, IMergeMethod> ByName = All.ToDictionary(m => m.Name, StringComparer.Ordinal);

    /// <summary>Registered names, in registry order.</summary>
    public static IReadOnlyList<string> Names { get; } = All.Select(m => m.Name).ToList();

    public static IReadOnlyList<IMergeMethod> Methods => All;

    public static bool TryGet(string name, out IMergeMethod method) => ByName.TryGetValue(name, out method!);

    /// <summary>Every parameter name any method accepts (to tell a typo from a parameter another method would use).</summary>
    public static IReadOnlySet<string> AllParameterNames { get; } =
        All.SelectMany(m => m.Parameters.Concat(m.ModelParameters)).Select(p => p.Name).ToHashSet(StringComparer.Ordinal);
}
