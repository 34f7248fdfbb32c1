using System.Text.Json.Nodes;
using FuseSharp.IO;
using FuseSharp.Models;
using FuseSharp.Tensors;
using FuseSharp.Tests.Models;
using FuseSharp.Tests.Tensors.Kernels;
using Xunit;

namespace FuseSharp.Tests.Cli;

/// <summary>forward, generate, eval perplexity and init-model through the real CLI.</summary>
public class EngineCommandTests
{
    [Fact]
    public void Forward_WritesLogitsThatMatchTheReference()
    {
        using var tmp = new TempDir();
        var (_, t, ids) = ModelFixtures.InputIds("gpt2-tiny");
        var row = ids.Skip(t).Take(t).ToArray();
        var outPath = Path.Combine(tmp.Path, "out.safetensors");
        var (code, _, err) = CliRunner.Run("forward", "--model", ModelFixtures.Folder("gpt2-tiny"), "--ids", string.Join(",", row), "--out", outPath, "--top-k", "4", "--ce");
        Assert.True(code == 0, err);
        using var f = SafetensorsFile.Open(outPath);
        Assert.Equal(new long[] { t, 128 }, f.GetEntry("logits").Shape.ToArray());
        Assert.Equal(DType.I64, f.GetEntry("input_ids").DType);
        KernelAssert.Close(ModelFixtures.Expected("gpt2-tiny", "logits").AsSpan(t * 128, t * 128), Read(f, "logits"), 1e-4, 1e-4);
        Assert.Equal(new long[] { t, 4 }, f.GetEntry("topk_ids").Shape.ToArray());
        Assert.True(float.IsNaN(Read(f, "ce")[^1]));
    }

    [Fact]
    public void Forward_BatchInput_IsPaddedAndMasked()
    {
        using var tmp = new TempDir();
        var input = Path.Combine(tmp.Path, "in.jsonl");
        File.WriteAllLines(input, ["""{"input_ids": [5, 9, 13, 2]}""", """{"input_ids": [7, 11]}"""]);
        var outPath = Path.Combine(tmp.Path, "out.safetensors");
        var (code, _, err) = CliRunner.Run("forward", "--model", ModelFixtures.Folder("llama-tiny"), "--input", input, "--out", outPath);
        Assert.True(code == 0, err);
        using var f = SafetensorsFile.Open(outPath);
        Assert.Equal(new long[] { 2, 4, 160 }, f.GetEntry("logits").Shape.ToArray());
        Assert.Equal(new long[] { 2, 4 }, f.GetEntry("attention_mask").Shape.ToArray());
        var logits = Read(f, "logits");
        using var model = TransformerModel.Load(ModelFixtures.Folder("llama-tiny"));
        var single = new FullLogits();
        model.Forward(TokenBatch.Single([7, 11]), single);
        KernelAssert.Close(single.Values, logits.AsSpan(4 * 160, 2 * 160), 2e-5, 2e-5);
    }

    [Fact]
    public void Generate_Json_MatchesTheReferenceGreedyIds()
    {
        var gen = ModelFixtures.Generate("phi3-tiny");
        var prompt = string.Join(",", gen["prompt_ids"]!.AsArray().Select(x => x!.GetValue<int>()));
        var (code, stdout, err) = CliRunner.Run("generate", "--model", ModelFixtures.Folder("phi3-tiny"), "--prompt-ids", prompt, "--max-new-tokens", "10", "--temperature", "0", "--json", "--ignore-eos");
        Assert.True(code == 0, err);
        var o = JsonNode.Parse(stdout)!;
        Assert.Equal(gen["new_ids"]!.AsArray().Select(x => x!.GetValue<int>()), o["ids"]!.AsArray().Select(x => x!.GetValue<int>()));
    }

    [Fact]
    public void EvalPerplexity_OnTokenIds()
    {
        using var tmp = new TempDir();
        var data = Path.Combine(tmp.Path, "docs.jsonl");
        var (_, t, ids) = ModelFixtures.InputIds("stories260K");
        File.WriteAllLines(data, [$$"""{"input_ids": [{{string.Join(",", ids.Take(t))}}]}"""]);
        var (code, stdout, err) = CliRunner.Run("eval", "perplexity", "--model", ModelFixtures.Folder("stories260K"), "--data", data, "--block-size", "64", "--json");
        Assert.True(code == 0, err);
        var o = JsonNode.Parse(stdout)!;
        // One window covers the sequence: perplexity = exp(causal-LM loss of row 0).
        using var model = TransformerModel.Load(ModelFixtures.Folder("stories260K"));
        var loss = new NextTokenLoss();
        model.Forward(TokenBatch.Single(ids.Take(t).ToArray()), loss);
        Assert.Equal(Math.Exp(loss.Mean), o["perplexity"]!.GetValue<double>(), 5);
        Assert.Equal(t - 1, o["scored_tokens"]!.GetValue<int>());
    }

    [Fact]
    public void InitModel_WritesALoadableDeterministicModel()
    {
        using var tmp = new TempDir();
        var config = Path.Combine(tmp.Path, "config.json");
        File.WriteAllText(config, """{"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 100, "max_position_embeddings": 32, "pad_token_id": 0}""");
        var a = Path.Combine(tmp.Path, "a");
        var b = Path.Combine(tmp.Path, "b");
        Assert.Equal(0, CliRunner.Run("init-model", "--arch", "llama", "--config", config, "--out", a, "--seed", "3").ExitCode);
        Assert.Equal(0, CliRunner.Run("init-model", "--arch", "llama", "--config", config, "--out", b, "--seed", "3", "--threads", "1").ExitCode);
        Assert.Equal(File.ReadAllBytes(Path.Combine(a, "model.safetensors")), File.ReadAllBytes(Path.Combine(b, "model.safetensors")));
        using var model = TransformerModel.Load(a);
        Assert.Equal("llama", model.Architecture.ModelType);
        using (var w = SafetensorsModel.Open(a))
        {
            var emb = w.ReadSingle("model.embed_tokens.weight");
            Assert.All(emb.Take(32), v => Assert.Equal(0f, v)); // the padding row
            double std = Math.Sqrt(emb.Skip(32).Select(v => (double)v * v).Average());
            Assert.InRange(std, 0.018, 0.022);
            Assert.All(w.ReadSingle("model.norm.weight"), v => Assert.Equal(1f, v));
        }
        var last = new LastLogits();
        model.Forward(TokenBatch.Single([1, 2, 3]), last);
        Assert.All(last.Values, v => Assert.True(float.IsFinite(v)));

        var bad = CliRunner.Run("init-model", "--arch", "falcon", "--config", config, "--out", Path.Combine(tmp.Path, "c"));
        Assert.Equal(1, bad.ExitCode);
        Assert.Contains("gpt_neox", bad.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void BadInput_GivesOneClearMessageAndExitCode1()
    {
        using var tmp = new TempDir();
        var outPath = Path.Combine(tmp.Path, "o.safetensors");
        var vocab = CliRunner.Run("forward", "--model", ModelFixtures.Folder("llama-tiny"), "--ids", "1,2,999", "--out", outPath);
        Assert.Equal(1, vocab.ExitCode);
        Assert.Contains("999", vocab.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", vocab.Stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(outPath));

        var dir = ModelFixtures.CopyToTemp("qwen2-tiny", tmp.Path);
        var cfg = (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "config.json")))!;
        cfg.Remove("num_hidden_layers");
        File.WriteAllText(Path.Combine(dir, "config.json"), cfg.ToJsonString());
        var missing = CliRunner.Run("generate", "--model", dir, "--prompt-ids", "1,2");
        Assert.Equal(1, missing.ExitCode);
        Assert.Contains("num_hidden_layers", missing.Stderr, StringComparison.Ordinal);

        var tooLong = CliRunner.Run("forward", "--model", ModelFixtures.Folder("gpt2-tiny"), "--ids", string.Join(",", Enumerable.Repeat(5, 65)), "--out", outPath);
        Assert.Equal(1, tooLong.ExitCode);
        Assert.Contains("max_position_embeddings", tooLong.Stderr, StringComparison.Ordinal);

        Assert.Equal(1, CliRunner.Run("forward", "--model", Path.Combine(tmp.Path, "nope"), "--ids", "1", "--out", outPath).ExitCode);
    }

    private static float[] Read(SafetensorsFile f, string name)
    {
        var a = new float[f.GetEntry(name).ElementCount];
        f.ReadSingle(name, a);
        return a;
    }
}
