using FuseSharp.IO;
using FuseSharp.Merging;
using FuseSharp.Merging.Config;
using FuseSharp.Merging.Execution;
using FuseSharp.Merging.Planning;
using FuseSharp.Tensors;
using Xunit;

namespace FuseSharp.Tests.Merging;

/// <summary>Bad input gets one clear error before any work, or a clean failure that leaves no output behind.</summary>
public class BadInputTests
{
    private static string Models(string name, out string baseDir, out string ftDir, Action<Dictionary<string, (float[] Values, long[] Shape)>>? editFt = null, DType ftDType = DType.F32)
    {
        var root = TestModels.TempDir(name);
        var b = TestModels.RandomLlama(1);
        var ft = TestModels.RandomLlama(2, b);
        editFt?.Invoke(ft);
        baseDir = TestModels.WriteModel(Path.Combine(root, "base"), b);
        ftDir = TestModels.WriteModel(Path.Combine(root, "ft"), ft, ftDType);
        return root;
    }

    private static string TiesConfig(string baseDir, string ftDir, string density = "0.5") =>
        $"merge_method: ties\nbase_model: {baseDir}\nmodels:\n  - model: {ftDir}\n    parameters: {{weight: 1, density: {density}}}\n";

    private static void AssertNoOutput(string root, string output)
    {
        Assert.False(Directory.Exists(output), "output folder left behind");
        Assert.Empty(Directory.GetDirectories(root, ".out*"));
        Assert.Empty(Directory.GetFiles(root, "*.tmp-*", SearchOption.AllDirectories));
    }

    [Fact]
    public void MissingModelFolder()
    {
        var root = TestModels.TempDir("missing");
        var config = MergeConfigParser.Parse($"merge_method: linear\nmodels:\n  - model: {root}/nope\n    parameters: {{weight: 1}}\n", Path.Combine(root, "c.yml"));
        var e = Assert.Throws<MergeConfigException>(() => MergePlanner.Plan(config, new MergeOptions()));
        Assert.Contains("not found", e.Message, StringComparison.Ordinal);
        Assert.Equal(3, e.Line);
        var hub = MergeConfigParser.Parse("merge_method: linear\nmodels:\n  - model: no-such-org/no-such-model\n    parameters: {weight: 1}\n");
        Assert.Contains("huggingface-cli download", Assert.Throws<MergeConfigException>(() => MergePlanner.Plan(hub, new MergeOptions())).Hint, StringComparison.Ordinal);
    }

    [Fact]
    public void TensorAbsentInOneModel()
    {
        Models("absent", out var b, out var f, ft => ft.Remove("model.layers.1.mlp.up_proj.weight"));
        var e = Assert.Throws<MergeException>(() => MergePlanner.Plan(MergeConfigParser.Parse(TiesConfig(b, f)), new MergeOptions()));
        Assert.Equal("model.layers.1.mlp.up_proj.weight", e.Tensor);
        Assert.Contains("absent in model", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void MismatchedShapes()
    {
        Models("shapes", out var b, out var f, ft => ft["model.layers.0.mlp.up_proj.weight"] = (new float[20], [5, 4]));
        var e = Assert.Throws<MergeException>(() => MergePlanner.Plan(MergeConfigParser.Parse(TiesConfig(b, f)), new MergeOptions()));
        Assert.Contains("shape mismatch", e.Message, StringComparison.Ordinal);
        Assert.Contains("[5, 4]", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void DTypeMix()
    {
        Models("dtypes", out var b, out var f, ftDType: DType.I32);
        var e = Assert.Throws<MergeException>(() => MergePlanner.Plan(MergeConfigParser.Parse(TiesConfig(b, f)), new MergeOptions()));
        Assert.Contains("dtype mix", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("1.5")]
    [InlineData("0")]
    [InlineData("-0.2")]
    public void DensityOutsideTheUnitInterval(string density)
    {
        Models("density", out var b, out var f);
        var e = Assert.Throws<MergeConfigException>(() => MergePlanner.Plan(MergeConfigParser.Parse(TiesConfig(b, f, density), "c.yml"), new MergeOptions()));
        Assert.Contains("density", e.Message, StringComparison.Ordinal);
        Assert.Contains("(0, 1]", e.Message, StringComparison.Ordinal);
        Assert.Equal(5, e.Line);
    }

    [Fact]
    public void UnknownParameterAndMissingWeight()
    {
        Models("params", out var b, out var f);
        var typo = $"merge_method: ties\nbase_model: {b}\nmodels:\n  - model: {f}\n    parameters: {{weight: 1, desnity: 0.5}}\n";
        Assert.Contains("did you mean 'density'", Assert.Throws<MergeConfigException>(() => MergePlanner.Plan(MergeConfigParser.Parse(typo), new MergeOptions())).Hint, StringComparison.Ordinal);
        var missing = $"merge_method: ties\nbase_model: {b}\nmodels:\n  - model: {f}\n";
        Assert.Contains("missing required parameter 'weight'", Assert.Throws<MergeConfigException>(() => MergePlanner.Plan(MergeConfigParser.Parse(missing), new MergeOptions())).Message, StringComparison.Ordinal);
        var slerpThree = $"merge_method: slerp\nbase_model: {b}\nmodels:\n  - model: {f}\n  - model: {b}\nparameters: {{t: 0.5}}\n";
        _ = MergePlanner.Plan(MergeConfigParser.Parse(slerpThree), new MergeOptions());
    }

    [Fact]
    public void ArchitectureMismatchNeedsAllowCrimes()
    {
        var root = TestModels.TempDir("crimes");
        var bm = TestModels.RandomLlama(1);
        var b = TestModels.WriteModel(Path.Combine(root, "base"), bm);
        var f = TestModels.WriteModel(Path.Combine(root, "ft"), TestModels.RandomLlama(2, bm), editConfig: c =>
        {
            c["architectures"] = new System.Text.Json.Nodes.JsonArray("MistralForCausalLM");
            c["model_type"] = "mistral";
        });
        var config = MergeConfigParser.Parse(TiesConfig(b, f));
        Assert.Contains("--allow-crimes", Assert.Throws<MergeException>(() => MergePlanner.Plan(config, new MergeOptions())).Hint, StringComparison.Ordinal);
        using var plan = MergePlanner.Plan(config, new MergeOptions { AllowCrimes = true });
        Assert.Contains(plan.Warnings, w => w.Contains("--allow-crimes", StringComparison.Ordinal));
    }

    /// <summary>Runs the merge, expecting a <see cref="MergeException"/> about <paramref name="tensor"/> and no output left behind.</summary>
    private static MergeException MergeFails(string root, string yaml, string tensor)
    {
        var output = Path.Combine(root, "out");
        using var plan = MergePlanner.Plan(MergeConfigParser.Parse(yaml), new MergeOptions());
        var e = Assert.Throws<MergeException>(() => MergeExecutor.Run(plan, output));
        Assert.Equal(tensor, e.Tensor);
        AssertNoOutput(root, output);
        return e;
    }

    [Fact]
    public void NaNInAnInput_FailsLoudlyAndLeavesNoOutput()
    {
        var root = Models("nan", out var b, out var f, ft => ft["model.layers.1.self_attn.q_proj.weight"].Values[5] = float.NaN);
        var e = MergeFails(root, TiesConfig(b, f), "model.layers.1.self_attn.q_proj.weight");
        Assert.Contains("NaN", e.Message, StringComparison.Ordinal);
        Assert.Contains("element 5", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void NonFiniteResult_FailsLoudly()
    {
        // Float16 output of values beyond its range: the merge itself is fine, the result is not representable.
        var root = Models("overflow", out var b, out var f, ft => ft["model.norm.weight"].Values[0] = 1e6f);
        var yaml = $"merge_method: task_arithmetic\nbase_model: {b}\nmodels:\n  - model: {f}\n    parameters: {{weight: 1}}\nout_dtype: float16\n";
        var e = MergeFails(root, yaml, "model.norm.weight");
        Assert.Contains("NaN/Inf", e.Message, StringComparison.Ordinal);
        Assert.Contains("bfloat16", e.Hint, StringComparison.Ordinal);
    }

    [Fact]
    public void DiskFullMidWrite_LeavesNoOutput()
    {
        var root = Models("diskfull", out var b, out var f);
        var output = Path.Combine(root, "out");
        using var plan = MergePlanner.Plan(MergeConfigParser.Parse(TiesConfig(b, f)), new MergeOptions());
        var e = Assert.Throws<SafetensorsException>(() => MergeExecutor.Run(plan, output, null, default, sink => new FailingSink(sink, writesBeforeFailure: 5)));
        Assert.Equal(SafetensorsErrorKind.WriteFailed, e.Kind);
        AssertNoOutput(root, output);
    }

    [Fact]
    public void Cancellation_LeavesNoOutput()
    {
        var root = Models("cancel", out var b, out var f);
        var output = Path.Combine(root, "out");
        using var plan = MergePlanner.Plan(MergeConfigParser.Parse(TiesConfig(b, f)), new MergeOptions());
        using var cts = new CancellationTokenSource();
        Assert.ThrowsAny<OperationCanceledException>(() => MergeExecutor.Run(plan, output, null, cts.Token, sink => new CancellingSink(sink, cts, afterWrites: 3)));
        AssertNoOutput(root, output);
    }

    [Fact]
    public void ExistingOutputFolder_IsRefusedBeforeWork_UnlessOverwrite()
    {
        var root = Models("exists", out var b, out var f);
        var output = Path.Combine(root, "out");
        Directory.CreateDirectory(output);
        File.WriteAllText(Path.Combine(output, "keep.txt"), "x");
        using (var plan = MergePlanner.Plan(MergeConfigParser.Parse(TiesConfig(b, f)), new MergeOptions()))
            Assert.Contains("not empty", Assert.Throws<FuseSharpException>(() => MergeExecutor.Run(plan, output)).Message, StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(output, "keep.txt")));
        using (var plan = MergePlanner.Plan(MergeConfigParser.Parse(TiesConfig(b, f)), new MergeOptions { Overwrite = true }))
            MergeExecutor.Run(plan, output);
        Assert.False(File.Exists(Path.Combine(output, "keep.txt")));
        Assert.True(File.Exists(Path.Combine(output, "model.safetensors")));
    }

    private sealed class FailingSink(ITensorSink inner, int writesBeforeFailure) : ITensorSink
    {
        private int _writes;

        public void WriteSingle(string name, ReadOnlySpan<float> values, long elementOffset)
        {
            if (Interlocked.Increment(ref _writes) > writesBeforeFailure)
                throw new SafetensorsException(SafetensorsErrorKind.WriteFailed, "model.safetensors", "write failed (No space left on device)", hint: "check free disk space");
            inner.WriteSingle(name, values, elementOffset);
        }

        public void WriteBytes(string name, ReadOnlySpan<byte> bytes, long byteOffset) => inner.WriteBytes(name, bytes, byteOffset);
    }

    private sealed class CancellingSink(ITensorSink inner, CancellationTokenSource cts, int afterWrites) : ITensorSink
    {
        private int _writes;

        public void WriteSingle(string name, ReadOnlySpan<float> values, long elementOffset)
        {
            inner.WriteSingle(name, values, elementOffset);
            if (Interlocked.Increment(ref _writes) == afterWrites) cts.Cancel();
        }

        public void WriteBytes(string name, ReadOnlySpan<byte> bytes, long byteOffset) => inner.WriteBytes(name, bytes, byteOffset);
    }
}
