using FuseSharp.Merging;
using FuseSharp.Merging.Config;
using FuseSharp.Tensors;
using Xunit;

namespace FuseSharp.Tests.Merging;

/// <summary>mergekit YAML as found in the wild parses unchanged; bad configs fail with the file, line and a hint.</summary>
public class ConfigTests
{
    private static string ConfigDir => Path.Combine(AppContext.BaseDirectory, "Fixtures", "merge-configs");

    private static MergeConfiguration Load(string name) => MergeConfigParser.ParseFile(Path.Combine(ConfigDir, name));

    private static double Eval(ParameterSet set, string name, string tensor, double t) =>
        set.TryGet(name, out var s) && s.Evaluate(tensor, t) is { } v ? v.NumberValue : double.NaN;

    public static TheoryData<string> AllConfigs()
    {
        var d = new TheoryData<string>();
        foreach (var f in Directory.GetFiles(Path.Combine(AppContext.BaseDirectory, "Fixtures", "merge-configs"), "*.yml").Order(StringComparer.Ordinal))
            d.Add(Path.GetFileName(f));
        return d;
    }

    [Theory]
    [MemberData(nameof(AllConfigs))]
    public void RealConfigsParse(string name)
    {
        var c = Load(name);
        Assert.True(FuseSharp.Merging.Methods.MergeMethodRegistry.TryGet(c.MergeMethod, out _), c.MergeMethod);
        Assert.True((c.Models is null) != (c.Slices is null));
        Assert.NotEmpty(c.ReferencedModels());
        Assert.Equal(File.ReadAllText(Path.Combine(ConfigDir, name)), c.SourceText);
    }

    [Fact]
    public void Ties_GradientsAndFilters()
    {
        var c = Load("ties.yml");
        Assert.Equal("ties", c.MergeMethod);
        Assert.Equal("TheBloke/Llama-2-13B-fp16", c.BaseModel!.Text);
        Assert.Equal(DType.F16, c.DType);
        Assert.Equal(3, c.Models!.Count);
        var orca = c.Models[0].Parameters;
        Assert.Equal(1.0, Eval(orca, "density", "x", 0));
        Assert.Equal(0.7, Eval(orca, "density", "x", 0.5), 12);
        Assert.Equal(0.4, Eval(orca, "density", "x", 0.75), 12); // s = 1.5: halfway between 0.7 and 0.1
        var platy = c.Models[1].Parameters;
        Assert.Equal(0.5, Eval(platy, "weight", "x", 0.5), 12);   // s = 1.5 between 0.3 and 0.7
        Assert.Equal(1.0, Eval(platy, "weight", "x", 1), 12);
        var wizard = c.Models[2].Parameters;
        Assert.Equal(0.5, Eval(wizard, "weight", "model.layers.3.mlp.up_proj.weight", 0.3));
        Assert.Equal(0, Eval(wizard, "weight", "model.layers.3.self_attn.q_proj.weight", 0.3));
        Assert.True(c.Parameters.TryGet("int8_mask", out var i8) && i8.Evaluate("", 0)!.Value.BoolValue);
    }

    [Fact]
    public void GradientSlerp_SlicesAndFilteredT()
    {
        var c = Load("gradient-slerp.yml");
        var s = Assert.Single(c.Slices!);
        Assert.Equal(2, s.Sources.Count);
        Assert.Equal((0, 40), (s.Sources[1].LayerStart, s.Sources[1].LayerEnd));
        Assert.Equal(0.5, Eval(c.Parameters, "t", "model.layers.10.self_attn.o_proj.weight", 0.25), 12); // s = 1 → 0.5
        Assert.Equal(0.3, Eval(c.Parameters, "t", "model.layers.20.self_attn.o_proj.weight", 0.5), 12);  // s = 2 → 0.3
        Assert.Equal(0.7, Eval(c.Parameters, "t", "model.layers.20.mlp.down_proj.weight", 0.5), 12);
        Assert.Equal(0.5, Eval(c.Parameters, "t", "model.norm.weight", 0), 12);                           // fallback
    }

    [Fact]
    public void Passthrough_FrankenmergeSlices()
    {
        var c = Load("orcamini-platy-44layer.yml");
        Assert.Equal("passthrough", c.MergeMethod);
        Assert.Equal([24, 20], c.Slices!.Select(s => s.Sources[0].LayerCount));
    }

    [Fact]
    public void TokenizerSettingsAndChatTemplate()
    {
        var c = Load("tokenizer-union.yml");
        var t = c.Tokenizer!;
        Assert.True(t.IsUnion);
        Assert.Equal(64, t.PadToMultipleOf);
        Assert.True(t.Tokens["<|eot_id|>"].Force);
        Assert.IsType<ModelEmbeddingSource>(t.Tokens["<|eot_id|>"].Source);
        Assert.Equal("<|start_header_id|>", Assert.IsType<ModelTokenEmbeddingSource>(t.Tokens["<|start_header_id|>"].Source).Token);
        Assert.IsType<ZeroEmbeddingSource>(t.Tokens["<|reserved_special_token_0|>"].Source);
        Assert.Equal("llama3", c.ChatTemplate);
        Assert.Equal(DType.BF16, c.OutDType);
        var legacy = Load("tokenizer-source-base.yml");
        Assert.True(legacy.Tokenizer!.IsBase);
        Assert.Equal(0.2, Eval(legacy.Slices![0].Sources[2].Parameters, "weight", "model.layers.0.mlp.up_proj.weight", 0), 12);
    }

    [Fact]
    public void DareTies_BaseWithoutParametersAndCommentLines()
    {
        var c = Load("dare-ties.yml");
        Assert.Equal(0, c.Models![0].Parameters.Count);
        Assert.Equal(0.53, Eval(c.Models[1].Parameters, "density", "x", 0));
    }

    [Theory]
    [InlineData("merge_method: linear\nmodels:\n  - model: a\n    paramters: {weight: 1}\n", 4, "unknown key in a 'models' entry 'paramters'", "did you mean 'parameters'")]
    [InlineData("merge_metod: linear\nmodels:\n  - model: a\n", 1, "unknown top-level key 'merge_metod'", "did you mean 'merge_method'")]
    [InlineData("merge_method: linear\nmodels:\n  - model: a\nslices:\n  - sources:\n      - model: a\n        layer_range: [0, 1]\n", 1, "both 'models' and 'slices'", "exactly one")]
    [InlineData("merge_method: linear\n", 1, "neither 'models' nor 'slices'", "exactly one")]
    [InlineData("models:\n  - model: a\n", 1, "missing 'merge_method'", "merge_method: linear")]
    [InlineData("merge_method: ties\nmodels:\n  - model: a\n    parameters:\n      weight: [0.5, {filter: mlp, value: 1}]\n", 5, "mixes values", "gradient")]
    [InlineData("merge_method: slerp\nmodels:\n  - model: a\nchat_template: foo\n", 4, "chat_template 'foo'", "chatml")]
    [InlineData("merge_method: slerp\nmodels:\n  - model: a\nslices:\n", 1, "both", "exactly one")]
    [InlineData("merge_method: linear\nmodels:\n  - model: a\ndtype: float8\n", 4, "unknown dtype 'float8'", "bfloat16")]
    [InlineData("merge_method: passthrough\nslices:\n  - sources:\n      - model: a\n        layer_range: [4, 2]\n", 5, "not a valid range", "end exclusive")]
    [InlineData("merge_method: linear\nmodules:\n  text: {}\nmodels:\n  - model: a\n", 3, "'modules'", "'models' or 'slices'")]
    [InlineData("merge_method: linear\nmodels:\n  - model: a\n  weight: 1\n", 4, "", "")]
    public void BadConfigs_NameTheLineAndSayWhatToDo(string yaml, int line, string problem, string hint)
    {
        var e = Assert.Throws<MergeConfigException>(() => MergeConfigParser.Parse(yaml, "bad.yml"));
        Assert.Equal(line, e.Line);
        Assert.Contains(problem, e.Message, StringComparison.Ordinal);
        Assert.Contains(hint, e.Hint ?? "", StringComparison.Ordinal);
        Assert.StartsWith($"bad.yml:{line}:", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ScalarsAreTypedAsPyYamlDoes()
    {
        var c = MergeConfigParser.Parse("merge_method: ties\nmodels:\n  - model: a\nparameters:\n  normalize: yes\n  lambda: 1e-1\n  x: '0.5'\n  y: .inf\n");
        Assert.True(c.Parameters.TryGet("normalize", out var n) && n.Evaluate("", 0)!.Value.BoolValue);
        Assert.Equal(0.1, Eval(c.Parameters, "lambda", "", 0));
        Assert.True(c.Parameters.TryGet("x", out var x) && x.Evaluate("", 0)!.Value.Kind == ParameterKind.String);
        Assert.Equal(double.PositiveInfinity, Eval(c.Parameters, "y", "", 0));
    }

    [Fact]
    public void GradientEvaluation_FollowsMergekit()
    {
        double[] g = [0, 0.5, 0.3, 0.7, 1];
        Assert.Equal(0, GradientSetting.At(g, 0));
        Assert.Equal(1, GradientSetting.At(g, 1));
        Assert.Equal(0.4, GradientSetting.At(g, 0.375), 12); // s = 1.5
        Assert.Equal(0.42, GradientSetting.At([0.2, 0.6], 0.55), 12);
    }

    [Theory]
    [InlineData("5GB", 5_000_000_000L)]
    [InlineData("5B", 5_000_000_000L)]
    [InlineData("500M", 500_000_000L)]
    [InlineData("2GiB", 2L << 30)]
    [InlineData("123456", 123456L)]
    public void ShardSizes(string text, long bytes) => Assert.Equal(bytes, MergeOptions.ParseSize(text));
}
