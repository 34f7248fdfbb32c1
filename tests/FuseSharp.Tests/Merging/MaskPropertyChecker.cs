using System.Text.Json.Nodes;
using FuseSharp.Merging.Config;
using Xunit;

namespace FuseSharp.Tests.Merging;

/// <summary>
/// The black-box check of the fixture README for random-mask methods (DARE, DELLA): per element, find the
/// keep/drop combinations of the models that explain the output under the deterministic formula (with each
/// model's L1 rescale factor fitted per tensor); every element must be explained, and the kept fractions over the
/// identifiable entries must match the densities (DELLA: the rank-based probabilities) statistically.
/// </summary>
internal static class MaskPropertyChecker
{
    public static void Check(string caseDir, JsonObject spec, MergeConfiguration config, Dictionary<string, (float[] Values, long[] Shape)> actual)
    {
        string method = spec["method"]!.GetValue<string>();
        bool consensus = method is "dare_ties" or "della";
        bool della = method.StartsWith("della", StringComparison.Ordinal);
        bool normalize = Global(config, "normalize") is { } nz ? nz.BoolValue : method == "della";
        double lambda = Global(config, "lambda")?.NumberValue ?? 1.0;
        double tolAbs = spec["tolerance_abs"]!.GetValue<double>(), tolRel = spec["tolerance_rel"]!.GetValue<double>();
        var models = config.Models!;
        int m = models.Count;
        var w = models.Select(x => Param(x, "weight")!.Value.NumberValue).ToArray();
        var density = models.Select(x => Param(x, "density")!.Value.NumberValue).ToArray();
        var eps = models.Select(x => Param(x, "epsilon")?.NumberValue ?? 0.15).ToArray();
        var baseModel = TestModels.Read(Path.Combine(caseDir, config.BaseModel!.Text));
        var inputs = models.Select(x => TestModels.Read(Path.Combine(caseDir, x.Model.Text))).ToArray();

        var z = new List<(int Model, double Z)>();
        var pooled = new double[m, 3]; // kept, expected, variance
        var bins = new double[m, 3, 3];
        foreach (var (name, (outValues, shape)) in actual)
        {
            var b = baseModel[name].Values;
            int n = b.Length;
            var delta = new double[m][];
            for (int i = 0; i < m; i++) delta[i] = inputs[i][name].Values.Select((v, e) => (double)v - b[e]).ToArray();
            long cols = shape[^1];
            var p = new double[m][];
            for (int i = 0; i < m; i++) p[i] = della ? DellaProbabilities(delta[i], cols, density[i], eps[i]) : Enumerable.Repeat(density[i], n).ToArray();

            // Fit each model's rescale factor: where model i alone is kept the output is linear in its factor, so every
            // element gives a candidate; the true factor is the value most candidates agree on.
            var unit = Enumerable.Repeat(1.0, m).ToArray();
            var options = new List<double>[m];
            for (int i = 0; i < m; i++)
            {
                var cands = new List<double>();
                for (int e = 0; e < n; e++)
                {
                    if (Math.Abs(delta[i][e]) < 1e-6) continue;
                    double one = Predict(1 << i, e, b, delta, w, unit, lambda, normalize, consensus) - b[e];
                    // A norm-matching factor is >= 1 (the kept L1 norm is at most the full one).
                    if (Math.Abs(one) > 1e-9 && (outValues[e] - b[e]) / one is var cand && cand >= 1 - 1e-6) cands.Add(cand);
                }
                options[i] = Clusters(cands, 4);
            }
            // Small tensors give few candidates: take the combination of candidate factors that explains the most
            // elements, preferring one inside the interval the L1 formula allows for the inferred masks.
            Analysis? chosen = null;
            foreach (var choice in Combinations(options))
            {
                var a = Analyze(choice, n, m, b, delta, w, lambda, normalize, consensus, outValues, tolAbs, tolRel);
                if (chosen is null || (a.Explained, -a.Violations).CompareTo((chosen.Explained, -chosen.Violations)) > 0) chosen = a;
                if (chosen.Explained == n && chosen.InInterval) break;
            }
            // Small tensors may have too few single-model elements for the clusters: also try alternating between
            // inferring the masks and applying the L1 formula, starting from 1/density.
            if (chosen!.Explained < n || !chosen.InInterval)
            {
                var f = density.Select(x => 1 / x).ToArray();
                for (int iter = 0; iter < 8; iter++)
                {
                    var a = Analyze(f, n, m, b, delta, w, lambda, normalize, consensus, outValues, tolAbs, tolRel, nearest: true);
                    if ((a.Explained, -a.Violations).CompareTo((chosen.Explained, -chosen.Violations)) > 0) chosen = a;
                    if (chosen.Explained == n && chosen.InInterval) break;
                    f = a.Factors.Select((v, i) => a.Intervals[i].Hi == double.MaxValue ? a.Intervals[i].Lo : (a.Intervals[i].Lo + a.Intervals[i].Hi) / 2).ToArray();
                }
            }
            // Still unexplained: solve each model's factor from every element and every set of contributing models,
            // with the other factors at their current estimate; the true factor is the value many elements agree on.
            for (int round = 0; round < 4 && (chosen!.Explained < n || !chosen.InInterval); round++)
            {
                var current = chosen!.Factors;
                var solved = new List<double>[m];
                for (int i = 0; i < m; i++)
                {
                    var cands = new List<double>();
                    for (int e = 0; e < n; e++)
                    {
                        if (Math.Abs(delta[i][e]) < 1e-6) continue;
                        for (int set = 1; set < 1 << m; set++)
                        {
                            if ((set >> i & 1) == 0) continue;
                            double divisor = 0, others = 0;
                            bool valid = true;
                            for (int k = 0; k < m && valid; k++)
                            {
                                if ((set >> k & 1) == 0) continue;
                                if (consensus && Math.Sign(w[k] * delta[k][e]) != Math.Sign(w[i] * delta[i][e])) valid = false;
                                divisor += w[k];
                                if (k != i) others += w[k] * current[k] * delta[k][e];
                            }
                            if (!valid) continue;
                            if (!consensus) divisor = w.Sum();
                            double target = (outValues[e] - b[e]) / lambda * (normalize ? divisor : 1);
                            double cand = (target - others) / (w[i] * delta[i][e]);
                            if (cand >= 1 - 1e-6 && double.IsFinite(cand)) cands.Add(cand);
                        }
                    }
                    solved[i] = Clusters(cands, 3);
                    if (!solved[i].Contains(current[i])) solved[i].Add(current[i]);
                }
                foreach (var choice in Combinations(solved))
                {
                    var a = Analyze(choice, n, m, b, delta, w, lambda, normalize, consensus, outValues, tolAbs, tolRel);
                    if ((a.Explained, -a.Violations).CompareTo((chosen.Explained, -chosen.Violations)) > 0) chosen = a;
                    if (chosen.Explained == n && chosen.InInterval) break;
                }
            }
            // Refine: move one factor at a time into its L1 interval (the formula's value for the inferred masks) and re-infer.
            for (int iter = 0; iter < 10 && chosen!.Violations > 0; iter++)
            {
                bool improved = false;
                for (int i = 0; i < m && !improved; i++)
                {
                    var (lo, hi) = chosen.Intervals[i];
                    if (chosen.Factors[i] >= lo * (1 - 1e-4) && chosen.Factors[i] <= hi * (1 + 1e-4)) continue;
                    var refined = (double[])chosen.Factors.Clone();
                    refined[i] = hi == double.MaxValue ? lo : (lo + hi) / 2;
                    var a = Analyze(refined, n, m, b, delta, w, lambda, normalize, consensus, outValues, tolAbs, tolRel);
                    if (a.Explained >= chosen.Explained && a.Violations < chosen.Violations)
                    {
                        chosen = a;
                        improved = true;
                    }
                }
                if (!improved) break;
            }
            var s = chosen!.Factors;
            if (chosen.Explained != n)
                Assert.Fail($"{name}[{chosen.FirstUnexplained}] = {outValues[chosen.FirstUnexplained]} is not explained by any keep/drop combination (fitted factors {string.Join(", ", s)})");
            Assert.True(chosen.InInterval, $"{name}: fitted factors {string.Join(", ", s)} outside the L1 intervals {string.Join(", ", chosen.Intervals.Select(x => $"[{x.Lo}, {x.Hi}]"))}");
            var kept = new double[m];
            var expected = new double[m];
            var variance = new double[m];
            for (int e = 0; e < n; e++)
            {
                for (int i = 0; i < m; i++)
                {
                    if (chosen.Keep[e, i] < 0) continue; // not identifiable
                    double keep = chosen.Keep[e, i];
                    kept[i] += keep;
                    expected[i] += p[i][e];
                    variance[i] += p[i][e] * (1 - p[i][e]);
                    if (della)
                    {
                        int bin = RankBin(delta[i], cols, e);
                        bins[i, bin, 0] += keep;
                        bins[i, bin, 1] += p[i][e];
                        bins[i, bin, 2] += p[i][e] * (1 - p[i][e]);
                    }
                }
            }
            for (int i = 0; i < m; i++)
            {
                if (variance[i] < 1) continue; // too few identifiable entries for a statistic
                z.Add((i, (kept[i] - expected[i]) / Math.Sqrt(variance[i])));
                pooled[i, 0] += kept[i];
                pooled[i, 1] += expected[i];
                pooled[i, 2] += variance[i];
            }
        }
        // (a): per model-tensor within 3 sigma with a few outliers allowed, none beyond 5; pooled within 4.
        int allowed = 2 + z.Count / 50;
        Assert.True(z.Count(x => Math.Abs(x.Z) > 3) <= allowed, $"kept fractions: {z.Count(x => Math.Abs(x.Z) > 3)} of {z.Count} model-tensors beyond 3 sigma");
        Assert.DoesNotContain(z, x => Math.Abs(x.Z) > 5);
        for (int i = 0; i < m; i++)
        {
            double zp = (pooled[i, 0] - pooled[i, 1]) / Math.Sqrt(pooled[i, 2]);
            Assert.True(Math.Abs(zp) <= 4, $"model {i}: pooled kept fraction {pooled[i, 0]} vs expected {pooled[i, 1]} ({zp:F2} sigma)");
            if (della)
                for (int bin = 0; bin < 3; bin++)
                {
                    double zb = (bins[i, bin, 0] - bins[i, bin, 1]) / Math.Sqrt(Math.Max(1e-9, bins[i, bin, 2]));
                    Assert.True(Math.Abs(zb) <= 4, $"model {i} rank bin {bin}: kept {bins[i, bin, 0]} vs expected {bins[i, bin, 1]} ({zb:F2} sigma)");
                }
        }
    }

    private sealed record Analysis(double[] Factors, int Explained, int FirstUnexplained, int Violations, (double Lo, double Hi)[] Intervals, int[,] Keep)
    {
        public bool InInterval => Violations == 0;
    }

    /// <summary>
    /// With factors <paramref name="s"/>: which elements some keep/drop combination explains, each model's mask where
    /// it is identifiable (-1 where not), and whether each factor lies in the L1 interval the inferred masks allow.
    /// </summary>
    private static Analysis Analyze(double[] s, int n, int m, float[] b, double[][] delta, double[] w, double lambda, bool normalize, bool consensus,
        float[] outValues, double tolAbs, double tolRel, bool nearest = false)
    {
        var keep = new int[n, m];
        int explained = 0, firstBad = -1;
        var l1All = new double[m];
        var l1Kept = new double[m];
        var l1Unknown = new double[m];
        for (int e = 0; e < n; e++)
        {
            int agreeAll = (1 << m) - 1, first = -1, closest = 0;
            double closestErr = double.MaxValue;
            for (int c = 0; c < 1 << m; c++)
            {
                double err = Math.Abs(Predict(c, e, b, delta, w, s, lambda, normalize, consensus) - outValues[e]);
                if (err < closestErr)
                {
                    closestErr = err;
                    closest = c;
                }
                if (err > tolAbs + tolRel * Math.Abs(outValues[e])) continue;
                if (first < 0) first = c;
                agreeAll &= ~(c ^ first);
            }
            if (first < 0)
            {
                if (firstBad < 0) firstBad = e;
                if (!nearest)
                {
                    for (int i = 0; i < m; i++) keep[e, i] = -1;
                    continue;
                }
                first = closest; // only to estimate the L1 intervals for the next iteration
            }
            else explained++;
            for (int i = 0; i < m; i++)
            {
                l1All[i] += Math.Abs(delta[i][e]);
                if ((agreeAll >> i & 1) == 0)
                {
                    keep[e, i] = -1;
                    l1Unknown[i] += Math.Abs(delta[i][e]);
                    continue;
                }
                keep[e, i] = first >> i & 1;
                if (keep[e, i] == 1) l1Kept[i] += Math.Abs(delta[i][e]);
            }
        }
        int violations = 0;
        var intervals = new (double, double)[m];
        for (int i = 0; i < m; i++)
        {
            if (l1All[i] < 1e-7 || l1Kept[i] + l1Unknown[i] < 1e-7)
            {
                intervals[i] = (0, double.MaxValue);
                continue;
            }
            double hi = l1Kept[i] < 1e-7 ? double.MaxValue : l1All[i] / l1Kept[i], lo = l1All[i] / (l1Kept[i] + l1Unknown[i]);
            intervals[i] = (lo, hi);
            if (s[i] < lo * (1 - 1e-4) || s[i] > hi * (1 + 1e-4)) violations++;
        }
        return new Analysis(s, explained, firstBad, violations, intervals, keep);
    }

    /// <summary>Medians of the largest clusters of values agreeing within 1e-4 (relative), largest first; [1] when there are none.</summary>
    private static List<double> Clusters(List<double> values, int count)
    {
        if (values.Count == 0) return [1];
        values.Sort();
        var clusters = new List<(int Size, double Median)>();
        for (int a = 0; a < values.Count;)
        {
            int z = a;
            while (z < values.Count && values[z] - values[a] <= 1e-4 * Math.Abs(values[a]) + 1e-9) z++;
            clusters.Add((z - a, values[(a + z) / 2]));
            a = z;
        }
        return clusters.OrderByDescending(c => c.Size).Take(count).Select(c => c.Median).ToList();
    }

    private static IEnumerable<double[]> Combinations(List<double>[] options, int i = 0, double[]? current = null)
    {
        current ??= new double[options.Length];
        if (i == options.Length)
        {
            yield return (double[])current.Clone();
            yield break;
        }
        foreach (var v in options[i])
        {
            current[i] = v;
            foreach (var c in Combinations(options, i + 1, current)) yield return c;
        }
    }

    /// <summary>mergekit's GTA formula for one element under keep mask <paramref name="c"/> (bit i = model i kept).</summary>
    private static double Predict(int c, int e, float[] b, double[][] delta, double[] w, double[] s, double lambda, bool normalize, bool consensus)
    {
        int m = w.Length;
        double sum = 0, mixed = 0, div = 0;
        Span<double> d = stackalloc double[m];
        for (int i = 0; i < m; i++)
        {
            d[i] = (c >> i & 1) == 1 ? w[i] * s[i] * delta[i][e] : 0;
            sum += d[i];
        }
        if (consensus)
        {
            int sign = sum >= 0 ? 1 : -1;
            for (int i = 0; i < m; i++)
                if (Math.Sign(d[i]) == sign)
                {
                    mixed += d[i];
                    div += w[i];
                }
            if (div == 0) div = 1;
        }
        else
        {
            mixed = sum;
            div = w.Sum();
            if (Math.Abs(div) < 1e-8) div = 1;
        }
        if (normalize) mixed /= div;
        return b[e] + lambda * mixed;
    }

    /// <summary>DELLA keep probabilities: per row, p = density − ε + 2ε (rank − 1)/(cols − 1), rank 1-based ascending |Δ|.</summary>
    private static double[] DellaProbabilities(double[] delta, long cols, double density, double eps)
    {
        var p = new double[delta.Length];
        for (long r0 = 0; r0 < delta.Length; r0 += cols)
        {
            var idx = Enumerable.Range((int)r0, (int)cols).OrderBy(e => Math.Abs(delta[e])).ThenBy(e => e).ToArray();
            for (int rank = 0; rank < idx.Length; rank++)
                p[idx[rank]] = density - eps + 2 * eps * rank / Math.Max(1, cols - 1);
        }
        return p;
    }

    private static int RankBin(double[] delta, long cols, int e)
    {
        long r0 = e / cols * cols;
        int rank = 0;
        for (long j = r0; j < r0 + cols; j++)
            if (Math.Abs(delta[j]) < Math.Abs(delta[e]) || (Math.Abs(delta[j]) == Math.Abs(delta[e]) && j < e)) rank++;
        return (int)(3L * rank / cols);
    }

    private static ParameterScalar? Global(MergeConfiguration config, string name) =>
        config.Parameters.TryGet(name, out var s) ? s.Evaluate("", 0) : null;

    private static ParameterScalar? Param(InputModelDefinition m, string name) =>
        m.Parameters.TryGet(name, out var s) ? s.Evaluate("", 0) : null;
}
