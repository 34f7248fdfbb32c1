using FuseSharp.Merging;
using Xunit;
using static FuseSharp.Tests.Merging.MethodHarness;

namespace FuseSharp.Tests.Merging;

/// <summary>Each method against a result known in closed form (identities, hand-worked small cases).</summary>
public class ClosedFormTests
{
    private const float Tol = 1e-5f;

    private static readonly long[] Shape = [6, 8];

    private static void Close(float[] expected, float[] actual, float tol = Tol)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tol * (1 + Math.Abs(expected[i])), $"[{i}] expected {expected[i]}, got {actual[i]}");
    }

    [Fact]
    public void Linear_OfIdenticalModels_IsTheModel()
    {
        var x = Random(48, 1);
        Close(x, Run("linear", null, [x, x, x], Shape, perModel: [new { weight = 0.2 }, new { weight = 0.5 }, new { weight = 1.3 }]));
    }

    [Fact]
    public void Linear_IsTheWeightedMean_OrSumWithoutNormalize()
    {
        float[] a = [1, 2], b = [3, 6];
        Close([2.5f, 5f], Run("linear", null, [a, b], [2], perModel: [new { weight = 1 }, new { weight = 3 }]));
        Close([10f, 20f], Run("linear", null, [a, b], [2], new { normalize = false }, [new { weight = 1 }, new { weight = 3 }]));
    }

    [Fact]
    public void TaskArithmetic_IsBasePlusLambdaWeightedDeltas()
    {
        float[] b = [1, 1, 1], x = [2, 0, 1], y = [1, 3, -1];
        // Δx = [1, -1, 0], Δy = [0, 2, -2]; 0.8 * (0.5 Δx - 0.25 Δy) = [0.4, -0.8, 0.4]
        Close([1.4f, 0.2f, 1.4f], Run("task_arithmetic", b, [x, y], [3], new { lambda = 0.8 }, [new { weight = 0.5 }, new { weight = -0.25 }]));
    }

    [Fact]
    public void Ties_WithDensityOneAndOneModel_IsTaskArithmetic()
    {
        var b = Random(48, 2);
        var x = Add(b, Random(48, 3, 0.1f));
        Close(x, Run("ties", b, [x], Shape, perModel: [new { weight = 1.0 }]));
        Close(Run("task_arithmetic", b, [x], Shape, perModel: [new { weight = 1.0 }]), Run("ties", b, [x], Shape, perModel: [new { weight = 1.0, density = 1.0 }]));
    }

    [Fact]
    public void Ties_TrimsElectsAndAveragesDisjointly()
    {
        float[] b = [0, 0, 0, 0];
        float[] x = [0.5f, -0.1f, 0.3f, 0.2f];   // density 0.5 keeps 0.5 and 0.3
        float[] y = [-0.2f, -0.4f, 0.1f, 0.3f];  // density 0.5 keeps -0.4 and 0.3
        // Weighted deltas (w 1, 1): x̂ = [0.5, 0, 0.3, 0], ŷ = [0, -0.4, 0, 0.3]; sums [0.5, -0.4, 0.3, 0.3]: every entry has one agreeing model.
        Close([0.5f, -0.4f, 0.3f, 0.3f], Run("ties", b, [x, y], [4], perModel: [new { weight = 1, density = 0.5 }, new { weight = 1, density = 0.5 }]));
        // A conflict: both keep element 0 with opposite signs; election by the weighted sum (0.5·2 − 0.6·1 > 0) keeps x's.
        float[] u = [0.5f, 0, 0, 0], v = [-0.6f, 0, 0, 0];
        Close([0.5f, 0, 0, 0], Run("ties", b, [u, v], [4], perModel: [new { weight = 2, density = 0.25 }, new { weight = 1, density = 0.25 }]));
        // Unweighted election (TIES paper / MergeLLM) picks v's sign instead (−0.6 + 0.5 < 0).
        Close([-0.6f, 0, 0, 0], Run("ties", b, [u, v], [4], new { sign_election = "unweighted" }, [new { weight = 2, density = 0.25 }, new { weight = 1, density = 0.25 }]));
    }

    [Fact]
    public void Dare_WithDensityOne_IsTaskArithmetic_AndInverseDensityScalesKeptEntries()
    {
        var b = Random(4096, 4);
        var x = Add(b, Random(4096, 5, 0.1f));
        var ta = Run("task_arithmetic", b, [x], [4096], perModel: [new { weight = 0.7 }]);
        Close(ta, Run("dare_linear", b, [x], [4096], perModel: [new { weight = 0.7, density = 1.0 }]));
        // inverse_density: each element is either the base or base + w Δ / p.
        var dare = Run("dare_linear", b, [x], [4096], new { rescale_mode = "inverse_density" }, [new { weight = 0.7, density = 0.4 }], seed: 9);
        int kept = 0;
        for (int i = 0; i < b.Length; i++)
        {
            float full = b[i] + 0.7f * (x[i] - b[i]) / 0.4f;
            bool isKept = Math.Abs(dare[i] - full) <= 1e-5f, isBase = Math.Abs(dare[i] - b[i]) <= 1e-6f;
            Assert.True(isKept || isBase, $"[{i}] {dare[i]} is neither base {b[i]} nor rescaled {full}");
            if (isKept && !isBase) kept++;
        }
        Assert.InRange(kept / 4096.0, 0.4 - 4 * Math.Sqrt(0.24 / 4096), 0.4 + 4 * Math.Sqrt(0.24 / 4096));
    }

    [Fact]
    public void Breadcrumbs_KeepsTheMiddleBand()
    {
        float[] b = new float[10];
        float[] x = [1, -2, 3, -4, 5, -6, 7, -8, 9, -10];
        // n = 10, density 0.5 → 5 kept, gamma 0.1 → the largest one dropped, so |Δ| ranks 4..8 remain: 5..9.
        Close([0, 0, 0, 0, 5, -6, 7, -8, 9, 0], Run("breadcrumbs", b, [x], [10], perModel: [new { weight = 1, density = 0.5, gamma = 0.1 }]));
        // gamma 0.01 → n_top = int(0.1) = 0: the intended slice keeps the 5 largest; mergekit's slice keeps nothing.
        Close([0, 0, 0, 0, 0, -6, 7, -8, 9, -10], Run("breadcrumbs", b, [x], [10], perModel: [new { weight = 1, density = 0.5, gamma = 0.01 }]));
        Close(new float[10], Run("breadcrumbs", b, [x], [10], new { breadcrumbs_slice = "mergekit" }, [new { weight = 1, density = 0.5, gamma = 0.01 }]));
    }

    [Fact]
    public void Della_WithDensityOne_IsTaskArithmetic()
    {
        var b = Random(48, 6);
        var x = Add(b, Random(48, 7, 0.1f));
        Close(Run("task_arithmetic", b, [x], Shape, perModel: [new { weight = 0.5 }]), Run("della_linear", b, [x], Shape, perModel: [new { weight = 0.5, density = 1.0 }]));
    }

    [Fact]
    public void Della_InverseProbability_DividesEachKeptEntryByItsProbability()
    {
        int cols = 64;
        var b = new float[cols];
        var x = Enumerable.Range(1, cols).Select(i => (float)i).ToArray(); // |Δ| rank of element i is i (0-based)
        var r = Run("della_linear", b, [x], [1, cols], new { rescale_mode = "inverse_prob" }, [new { weight = 1, density = 0.5, epsilon = 0.2 }], seed: 3);
        for (int i = 0; i < cols; i++)
        {
            double p = 0.5 - 0.2 + 0.4 * i / (cols - 1);
            Assert.True(r[i] == 0 || Math.Abs(r[i] - x[i] / p) < 1e-4 * x[i] / p, $"[{i}] {r[i]} is neither 0 nor {x[i] / p}");
        }
    }

    [Fact]
    public void Slerp_EndpointsAndOrthogonalMidpoint()
    {
        var b = Random(48, 8);
        var x = Random(48, 9);
        Close(b, Run("slerp", b, [x], Shape, new { t = 0.0 }));
        Close(x, Run("slerp", b, [x], Shape, new { t = 1.0 }));
        float h = MathF.Sqrt(0.5f);
        Close([h, h], Run("slerp", [1, 0], [[0, 1]], [2], new { t = 0.5 }));
        // Nearly colinear vectors take the lerp.
        Close([1.5f, 3f], Run("slerp", [1, 2], [[2, 4]], [2], new { t = 0.5 }));
    }

    [Fact]
    public void NuSlerp_HalfWayBetweenOrthogonalTaskVectors()
    {
        float h = MathF.Sqrt(0.5f);
        Close([1 + h, 1 + h], Run("nuslerp", [1, 1], [[2, 1], [1, 2]], [2], perModel: [new { weight = 1 }, new { weight = 1 }]));
        // Row-wise (one angle per row): each row slerps on its own.
        Close([h, h, 0, 1], Run("nuslerp", null, [[1, 0, 0, 1], [0, 1, 0, 1]], [2, 2], new { nuslerp_flatten = false }, [new { weight = 1 }, new { weight = 1 }]));
    }

    [Fact]
    public void MultiSlerp_AndKarcher_OfIdenticalModelsAreTheModel_AndOfOrthogonalUnitsTheGeodesicMidpoint()
    {
        var x = Random(48, 10);
        Close(x, Run("multislerp", null, [x, x, x], Shape, perModel: [new { weight = 1 }, new { weight = 2 }, new { weight = 3 }]));
        Close(x, Run("karcher", null, [x, x], Shape));
        float h = MathF.Sqrt(0.5f);
        Close([h, h], Run("multislerp", null, [[1, 0], [0, 1]], [2], perModel: [new { weight = 1 }, new { weight = 1 }]));
        Close([h, h], Run("karcher", null, [[1, 0], [0, 1]], [2]));
    }

    [Fact]
    public void ModelStock_OrthogonalDeltasGiveTheBase_IdenticalDeltasGiveTheMean()
    {
        float[] b = [1, 1, 1, 1];
        Close(b, Run("model_stock", b, [[2, 1, 1, 1], [1, 2, 1, 1]], [4]));
        Close([2, 1, 3, 1], Run("model_stock", b, [[2, 1, 3, 1], [2, 1, 3, 1], [2, 1, 3, 1]], [4]));
    }

    [Fact]
    public void NearSwap_ZeroThresholdKeepsTheBase_LargeThresholdTakesTheModel()
    {
        var b = Random(48, 11);
        var x = Random(48, 12);
        Close(b, Run("nearswap", b, [x], Shape, new { t = 0.0 }));
        Close(x, Run("nearswap", b, [x], Shape, new { t = 100.0 }));
    }

    [Fact]
    public void ArceeFusion_OfTheBaseItselfIsTheBase()
    {
        var b = Random(48, 13);
        Close(b, Run("arcee_fusion", b, [b], Shape));
    }

    [Fact]
    public void Sce_VaRM_Widen_OfOneFineTuneAreThatModel()
    {
        var b = Random(48, 14);
        var x = Add(b, Random(48, 15, 0.1f));
        Close(x, Run("sce", b, [x], Shape));
        Close(x, Run("varm", b, [x], Shape));
        Close(x, Run("widen", b, [x], Shape));
        Close(x, Run("widen", b, [x], [48]));
    }

    [Fact]
    public void Varm_WeightsByMeanSquaredDelta()
    {
        float[] b = [0, 0], x = [1, 1], y = [2, 2];
        // mean Δ²: 1 and 4 → W = 0.2, 0.8 → 0.2·1 + 0.8·2 = 1.8
        Close([1.8f, 1.8f], Run("varm", b, [x, y], [2]));
    }

    [Fact]
    public void LmCocktail_IsTheWeightedSum_AndRequiresWeightsSummingToOne()
    {
        float[] a = [1, 2], c = [3, 4];
        Close([2.5f, 3.5f], Run("lm_cocktail", null, [a, c], [2], perModel: [new { weight = 0.25 }, new { weight = 0.75 }]));
        Assert.Throws<MergeException>(() => Run("lm_cocktail", null, [a, c], [2], perModel: [new { weight = 0.25 }, new { weight = 0.5 }]));
        Assert.Equal([0.5, 0.5], FuseSharp.Merging.Methods.LmCocktail.WeightsFromLosses([2.0, 2.0], 5.0));
        var w = FuseSharp.Merging.Methods.LmCocktail.WeightsFromLosses([1.0, 2.0], 5.0);
        Assert.Equal(1 / (1 + Math.Exp(-0.2)), w[0], 12);
    }

    [Fact]
    public void Passthrough_CopiesAndScales()
    {
        var x = Random(48, 16);
        Close(x, Run("passthrough", null, [x], Shape));
        Close(x.Select(v => 2 * v).ToArray(), Run("passthrough", null, [x], Shape, perModel: [new { scale = 2.0 }]));
    }

    [Fact]
    public void ZeroTaskVectors_GiveTheBase_ForEveryBaseMethod()
    {
        var b = Random(48, 17);
        foreach (var (method, globals, per) in new (string, object?, object?)[]
        {
            ("task_arithmetic", null, new { weight = 1 }), ("ties", null, new { weight = 1, density = 0.5 }), ("dare_ties", null, new { weight = 1, density = 0.5 }),
            ("dare_linear", null, new { weight = 1, density = 0.5 }), ("breadcrumbs", null, new { weight = 1, density = 0.5 }),
            ("breadcrumbs_ties", null, new { weight = 1, density = 0.5 }), ("della", null, new { weight = 1, density = 0.5 }),
            ("della_linear", null, new { weight = 1, density = 0.5 }), ("sce", new { select_topk = 0.5 }, null), ("varm", null, null), ("widen", null, null),
            ("model_stock", null, null), ("nuslerp", null, new { weight = 1 }), ("slerp", new { t = 0.3 }, null), ("nearswap", new { t = 0.1 }, null),
            ("arcee_fusion", null, null),
        })
        {
            int n = method is "slerp" or "nearswap" or "arcee_fusion" ? 1 : 2;
            var inputs = Enumerable.Repeat(b, n).ToArray();
            Close(b, Run(method, b, inputs, Shape, globals, per is null ? null : Enumerable.Repeat(per, n).ToArray()));
        }
    }
}
