using System.Text.Json.Nodes;
using FuseSharp.IO;
using FuseSharp.Models;
using Xunit;

namespace FuseSharp.Tests.Models;

public class BadInputTests
{
    [Fact]
    public void MissingConfigField_NamesTheField()
    {
        using var tmp = new TempDir();
        var dir = ModelFixtures.CopyToTemp("llama-tiny", tmp.Path);
        EditConfig(dir, c => c.Remove("hidden_size"));
        var e = Assert.Throws<ModelConfigException>(() => TransformerModel.Load(dir));
        Assert.Contains("hidden_size", e.Message, StringComparison.Ordinal);
        Assert.Contains("config.json", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void UnknownArchitecture_ListsTheSupportedOnes()
    {
        using var tmp = new TempDir();
        var dir = ModelFixtures.CopyToTemp("llama-tiny", tmp.Path);
        EditConfig(dir, c => { c["architectures"] = new JsonArray("FalconForCausalLM"); c["model_type"] = "falcon"; });
        var e = Assert.Throws<ModelConfigException>(() => TransformerModel.Load(dir));
        Assert.Contains("FalconForCausalLM", e.Message, StringComparison.Ordinal);
        foreach (var a in ArchitectureRegistry.All) Assert.Contains(a.ModelType, e.Hint, StringComparison.Ordinal);
    }

    [Fact]
    public void WrongShape_NamesTensorExpectedAndActual()
    {
        using var tmp = new TempDir();
        var dir = ModelFixtures.CopyToTemp("llama-tiny", tmp.Path);
        EditConfig(dir, c => c["intermediate_size"] = 100);
        var e = Assert.Throws<ModelLoadException>(() => TransformerModel.Load(dir));
        Assert.Contains("model.layers.0.mlp.gate_proj.weight", e.Message, StringComparison.Ordinal);
        Assert.Contains("[128, 64]", e.Message, StringComparison.Ordinal);
        Assert.Contains("[100, 64]", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void MissingTensor_IsNamed()
    {
        using var tmp = new TempDir();
        var dir = ModelFixtures.CopyToTemp("llama-tied-tiny", tmp.Path);
        EditConfig(dir, c => c["tie_word_embeddings"] = false); // now lm_head.weight is required and absent
        var e = Assert.Throws<ModelLoadException>(() => TransformerModel.Load(dir));
        Assert.Contains("lm_head.weight", e.Message, StringComparison.Ordinal);
        Assert.Contains("tie_word_embeddings", e.Hint, StringComparison.Ordinal);
    }

    [Fact]
    public void TokenOutsideTheVocabulary_IsRejected()
    {
        using var model = TransformerModel.Load(ModelFixtures.Folder("llama-tiny"));
        var e = Assert.Throws<ModelInputException>(() => model.Forward(TokenBatch.Single([1, 2, 160]), new LastLogits()));
        Assert.Contains("160", e.Message, StringComparison.Ordinal);
        Assert.Throws<ModelInputException>(() => model.Forward(TokenBatch.Single([-1]), new LastLogits()));
    }

    [Fact]
    public void SequencePastMaxPositions_IsAnError_UnlessAllowedForRope()
    {
        var ids = Enumerable.Range(0, 65).Select(i => i % 100).ToArray(); // max_position_embeddings is 64
        using (var gpt2 = TransformerModel.Load(ModelFixtures.Folder("gpt2-tiny"), new ModelOptions { AllowLongerThanTrained = true }))
            Assert.Throws<ModelInputException>(() => gpt2.Forward(TokenBatch.Single(ids), new LastLogits())); // learned positions end at 64
        using (var llama = TransformerModel.Load(ModelFixtures.Folder("llama-tiny")))
            Assert.Throws<ModelInputException>(() => llama.Forward(TokenBatch.Single(ids), new LastLogits()));
        using var allowed = TransformerModel.Load(ModelFixtures.Folder("llama-tiny"), new ModelOptions { AllowLongerThanTrained = true });
        var last = new LastLogits();
        allowed.Forward(TokenBatch.Single(ids), last);
        Assert.All(last.Values, v => Assert.True(float.IsFinite(v)));
    }

    [Fact]
    public void FullCache_IsAnError()
    {
        using var model = TransformerModel.Load(ModelFixtures.Folder("llama-tiny"));
        using var cache = model.CreateCache(1, 4);
        model.Forward(TokenBatch.Single([1, 2, 3]), null, cache);
        Assert.Throws<ModelInputException>(() => model.Forward(TokenBatch.Single([4, 5]), null, cache));
    }

    private static void EditConfig(string dir, Action<JsonObject> edit)
    {
        var path = Path.Combine(dir, "config.json");
        var c = (JsonObject)JsonNode.Parse(File.ReadAllText(path))!;
        edit(c);
        File.WriteAllText(path, c.ToJsonString());
    }
}
