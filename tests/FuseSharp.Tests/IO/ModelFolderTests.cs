using System.Text.Json.Nodes;
using FuseSharp.IO;
using Xunit;

namespace FuseSharp.Tests.IO;

public class ModelFolderTests
{
    [Fact]
    public void Config_TypedAccess_AcrossFamilyNames()
    {
        using var f = ModelFolder.Open(TestPaths.Fixture("io", "gpt2-tiny"));
        var c = f.Config!;
        Assert.Equal("gpt2", c.ModelType);
        Assert.Equal(c.GetInt("n_embd"), c.HiddenSize);
        Assert.Equal(c.GetInt("n_layer"), c.NumHiddenLayers);
        Assert.NotNull(c.VocabSize);
        Assert.True(f.HasWeights);
        Assert.Equal(f.Weights.Tensors.Count, f.Weights.Tensors.Select(t => t.Name).Distinct().Count());
    }

    [Fact]
    public void Config_SaveKeepsUnknownKeys()
    {
        using var tmp = TestPaths.NewTempDir();
        var path = tmp.File("config.json");
        File.WriteAllText(path, """{"model_type":"llama","hidden_size":8,"my_custom_key":{"nested":[1,2,3]},"rope_scaling":null,"rms_norm_eps":1e-06}""");
        var c = ModelConfig.Load(path);
        c.Raw["torch_dtype"] = "bfloat16";
        c.Save(tmp.File("out.json"));
        var back = ModelConfig.Load(tmp.File("out.json"));
        Assert.Equal("[1,2,3]", back.Raw["my_custom_key"]!["nested"]!.ToJsonString());
        Assert.True(back.Raw.ContainsKey("rope_scaling"));
        Assert.Equal(1e-6, back.GetDouble("rms_norm_eps"));
        Assert.Equal("bfloat16", back.TorchDtype);
        Assert.EndsWith("\n", File.ReadAllText(tmp.File("out.json")), StringComparison.Ordinal);
    }

    [Fact]
    public void Config_ListValuedIds_GiveTheFirst()
    {
        var c = new ModelConfig(JsonNode.Parse("""{"eos_token_id":[128001,128009]}""")!.AsObject());
        Assert.Equal(128001, c.EosTokenId);
    }

    [Fact]
    public void Config_MissingRequiredField_NamesIt()
    {
        var c = new ModelConfig(JsonNode.Parse("""{"model_type":"llama"}""")!.AsObject(), "/m/config.json");
        var e = Assert.Throws<ModelConfigException>(() => c.RequireInt("hidden_size"));
        Assert.Contains("hidden_size", e.Message, StringComparison.Ordinal);
        Assert.Contains("/m/config.json", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Config_InvalidJson_IsAClearError()
    {
        using var tmp = TestPaths.NewTempDir();
        File.WriteAllText(tmp.File("config.json"), "{\"a\": ");
        var e = Assert.Throws<ModelConfigException>(() => ModelFolder.Open(tmp.Path));
        Assert.Contains("not valid JSON", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void MissingFolder_IsAClearError() =>
        Assert.Contains("not found", Assert.Throws<FuseSharpException>(() => ModelFolder.Open("/nonexistent/x")).Message, StringComparison.Ordinal);

    [Fact]
    public void CopyNonWeightFiles_SkipsWeightsAndIndex()
    {
        using var tmp = TestPaths.NewTempDir();
        var donor = tmp.File("donor");
        Directory.CreateDirectory(donor);
        foreach (var n in new[] { "config.json", "tokenizer.json", "tokenizer_config.json", "generation_config.json", "README.md",
                     "model.safetensors", "model-00001-of-00002.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "model.gguf" })
            File.WriteAllText(Path.Combine(donor, n), n);
        var copied = ModelFolder.CopyNonWeightFiles(donor, tmp.File("out"), skip: n => n == "README.md");
        Assert.Equal(["config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json"], copied);
        Assert.Equal(copied, Directory.GetFiles(tmp.File("out")).Select(Path.GetFileName).Order());
    }

    [Fact]
    public void AtomicOutputDirectory_CommitRenamesIntoPlace_DisposeWithoutCommitLeavesNothing()
    {
        using var tmp = TestPaths.NewTempDir();
        var final = tmp.File("out");
        using (var d = AtomicOutputDirectory.Create(final))
        {
            File.WriteAllText(Path.Combine(d.Path, "a.txt"), "x");
            Assert.False(Directory.Exists(final));
            d.Commit();
        }
        Assert.True(File.Exists(Path.Combine(final, "a.txt")));

        var other = tmp.File("abandoned");
        using (var d = AtomicOutputDirectory.Create(other))
            File.WriteAllText(Path.Combine(d.Path, "a.txt"), "x");
        Assert.False(Directory.Exists(other));
        Assert.Equal([final], Directory.GetDirectories(tmp.Path)); // no temp folder left behind
    }

    [Fact]
    public void AtomicOutputDirectory_RefusesANonEmptyTarget_UnlessOverwriting()
    {
        using var tmp = TestPaths.NewTempDir();
        var final = tmp.File("out");
        Directory.CreateDirectory(final);
        File.WriteAllText(Path.Combine(final, "old.txt"), "old");
        Assert.Throws<FuseSharpException>(() => AtomicOutputDirectory.Create(final));
        using (var d = AtomicOutputDirectory.Create(final, overwrite: true))
        {
            File.WriteAllText(Path.Combine(d.Path, "new.txt"), "new");
            d.Commit();
        }
        Assert.Equal(["new.txt"], Directory.GetFiles(final).Select(Path.GetFileName));
    }
}
