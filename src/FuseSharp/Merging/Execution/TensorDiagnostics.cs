namespace FuseSharp.Merging.Execution;

/// <summary>
/// What a method reports about one tensor (spec §7.3, the merge report): per-model delta norms, kept fractions
/// and effective weights, the sign-conflict rate, method scalars (model stock's t, SLERP's angle), and every
/// guarded division that fired. Methods fill it from the orchestrating thread after their reductions.
/// </summary>
public sealed class TensorDiagnostics
{
    private readonly object _lock = new();
    private readonly Dictionary<string, double[]> _perModel = new(StringComparer.Ordinal);
    private readonly Dictionary<string, double> _scalars = new(StringComparer.Ordinal);
    private readonly List<string> _guards = [];

    public TensorDiagnostics(IReadOnlyList<string> modelNames) => ModelNames = modelNames;

    /// <summary>Names of the models the per-model arrays refer to (non-base inputs, in order).</summary>
    public IReadOnlyList<string> ModelNames { get; }

    public IReadOnlyDictionary<string, double[]> PerModel => _perModel;

    public IReadOnlyDictionary<string, double> Scalars => _scalars;

    public IReadOnlyList<string> Guards => _guards;

    /// <summary>‖θ_i − θ_base‖₂ per input.</summary>
    public void DeltaNorms(IReadOnlyList<double> values) => SetPerModel("delta_norm", values);

    /// <summary>Fraction of each input's delta kept by sparsification.</summary>
    public void KeptFractions(IReadOnlyList<double> values) => SetPerModel("kept_fraction", values);

    /// <summary>The weight each input effectively received (SCE, VaRM, WIDEN mean column weight, model-stock t / N, ...).</summary>
    public void EffectiveWeights(IReadOnlyList<double> values) => SetPerModel("effective_weight", values);

    public void SetPerModel(string key, IReadOnlyList<double> values)
    {
        lock (_lock) _perModel[key] = values.ToArray();
    }

    /// <summary>Fraction of elements where the non-zero deltas do not all share one sign.</summary>
    public void SignConflictRate(double value) => Set("sign_conflict_rate", value);

    public void Set(string key, double value)
    {
        lock (_lock) _scalars[key] = value;
    }

    /// <summary>Records that a guard against a division by (near) zero or an invalid value fired, and what was done.</summary>
    public void Guard(string what)
    {
        lock (_lock)
            if (!_guards.Contains(what)) _guards.Add(what);
    }
}
