using System.Text.Json;
using Xunit;

namespace FuseSharp.Tests.Cli;

public class InspectCommandTests
{
    [Fact]
    public void HumanView_GroupsLayers_AndSummarises()
    {
        var r = CliRunner.Run("inspect", TestPaths.Fixture("io", "merge-bf16_base"));
        Assert.Equal(0, r.ExitCode);
        Assert.Contains("LlamaForCausalLM", r.Stdout, StringComparison.Ordinal);
        Assert.Contains("BF16", r.Stdout, StringComparison.Ordinal);
        Assert.Contains("model.layers.{0..3}.self_attn.q_proj.weight", r.Stdout, StringComparison.Ordinal);
        Assert.Contains("x4", r.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void Json_ListsEveryTensor_WithCountsMatchingTheFile()
    {
        var r = CliRunner.Run("inspect", TestPaths.Fixture("io", "merge-ft_wide"), "--json");
        Assert.Equal(0, r.ExitCode);
        using var doc = JsonDocument.Parse(r.Stdout);
        var root = doc.RootElement;
        var tensors = root.GetProperty("tensors").EnumerateArray().ToList();
        Assert.Equal(21, tensors.Count);
        var embed = tensors.Single(t => t.GetProperty("name").GetString() == "model.embed_tokens.weight");
        Assert.Equal([72L, 32L], embed.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()));
        Assert.Equal(tensors.Sum(t => t.GetProperty("shape").EnumerateArray().Aggregate(1L, (a, e) => a * e.GetInt64())), root.GetProperty("parameters").GetInt64());
        Assert.Equal(tensors.Sum(t => t.GetProperty("bytes").GetInt64()), root.GetProperty("total_bytes").GetInt64());
        Assert.Equal("llama", root.GetProperty("model_type").GetString());
    }

    [Fact]
    public void SingleFile_IsInspected()
    {
        var r = CliRunner.Run("inspect", TestPaths.Fixture("io", "gpt2-tiny", "expected.safetensors"), "--json");
        Assert.Equal(0, r.ExitCode);
        using var doc = JsonDocument.Parse(r.Stdout);
        Assert.Contains(doc.RootElement.GetProperty("tensors").EnumerateArray(), t => t.GetProperty("name").GetString() == "logits");
    }

    [Fact]
    public void MissingPath_FailsCleanly() =>
        CliRunner.AssertCleanFailure(CliRunner.Run("inspect", "/nonexistent/model"), "no such file or folder");

    [Fact]
    public void CorruptFile_FailsCleanly()
    {
        using var tmp = TestPaths.NewTempDir();
        var path = tmp.File("model.safetensors");
        File.WriteAllBytes(path, [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F, (byte)'{']);
        var r = CliRunner.Run("inspect", tmp.Path);
        CliRunner.AssertCleanFailure(r, "exceeds the cap");
        Assert.Contains(path, r.Stderr, StringComparison.Ordinal);
        Assert.Equal(2, r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length); // the message and its hint
    }

    [Fact]
    public void EscapingIndex_FailsCleanly()
    {
        using var tmp = TestPaths.NewTempDir();
        File.WriteAllText(tmp.File("model.safetensors.index.json"), """{"weight_map":{"a":"../../etc/passwd"}}""");
        CliRunner.AssertCleanFailure(CliRunner.Run("inspect", tmp.Path), "outside the model folder");
    }
}
