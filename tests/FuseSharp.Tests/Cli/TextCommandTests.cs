using System.Text.Json.Nodes;
using FuseSharp.Evaluation;
using FuseSharp.IO;
using FuseSharp.Models;
using FuseSharp.Tensors;
using FuseSharp.Tokenization;
using FuseSharp.Tokenization.ChatTemplates;
using Xunit;

namespace FuseSharp.Tests.Cli;

/// <summary>A small random Llama with the Mistral-7B-Instruct-v0.2 tokenizer and chat template, built once per test class.</summary>
public sealed class TextModelFixture : IDisposable
{
    private readonly TempDir _tmp = new();

    public TextModelFixture()
    {
        var tokenizerDir = TestPaths.Fixture("tokenizers", "mistral-7b-instruct-v0.2");
        var config = new JsonObject
        {
            ["hidden_size"] = 16, ["intermediate_size"] = 32, ["num_hidden_layers"] = 1, ["num_attention_heads"] = 2,
            ["num_key_value_heads"] = 1, ["vocab_size"] = 32000, ["max_position_embeddings"] = 256,
            ["bos_token_id"] = 1, ["eos_token_id"] = 2, ["initializer_range"] = 0.5,
        };
        var arch = ArchitectureRegistry.Get("llama");
        var (cfg, spec) = ModelInitializer.PrepareConfig(arch, config, DType.F32);
        Folder = Path.Combine(_tmp.Path, "model");
        ModelInitializer.WriteFolder(Folder, arch, cfg, spec, seed: 11, DType.F32);
        foreach (var f in new[] { "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json" })
            File.Copy(Path.Combine(tokenizerDir, f), Path.Combine(Folder, f));
    }

    public string Folder { get; }

    public string Temp => _tmp.Path;

    public void Dispose() => _tmp.Dispose();
}

public class TextCommandTests(TextModelFixture fixture) : IClassFixture<TextModelFixture>
{
    private readonly ITokenizer _tok = TokenizerLoader.Load(fixture.Folder);

    [Fact]
    public void Forward_Text_IsTokenizedWithSpecialTokens()
    {
        var outPath = Path.Combine(fixture.Temp, "fwd.safetensors");
        var r = CliRunner.Run("forward", "--model", fixture.Folder, "--text", "Hello world", "--out", outPath);
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var f = SafetensorsFile.Open(outPath);
        var ids = new float[f.GetEntry("input_ids").ElementCount];
        f.ReadSingle("input_ids", ids);
        var expected = _tok.Encode("Hello world", addSpecialTokens: true).Ids;
        Assert.Equal(1, expected[0]); // BOS
        Assert.Equal(expected, ids.Select(v => (int)v));
        Assert.Equal(new long[] { expected.Count, 32000 }, f.GetEntry("logits").Shape.ToArray());
    }

    [Fact]
    public void Generate_Prompt_AndChat_MatchTheLibrary()
    {
        using var model = TransformerModel.Load(fixture.Folder);
        var options = new GenerationOptions { MaxNewTokens = 6, EosTokenIds = [2] };

        var plain = CliRunner.Run("generate", "--model", fixture.Folder, "--prompt", "Once upon a time", "--max-new-tokens", "6", "--json");
        Assert.True(plain.ExitCode == 0, plain.Stderr);
        var expected = Generator.Generate(model, _tok.Encode("Once upon a time", true).Ids, options, _tok);
        var o = JsonNode.Parse(plain.Stdout)!;
        Assert.Equal(expected.NewIds, o["ids"]!.AsArray().Select(x => x!.GetValue<int>()));
        Assert.Equal(expected.Text, o["text"]!.GetValue<string>());

        var chat = CliRunner.Run("generate", "--model", fixture.Folder, "--chat", "--prompt", "Hi there", "--max-new-tokens", "6", "--json");
        Assert.True(chat.ExitCode == 0, chat.Stderr);
        var config = TokenizerConfig.Load(fixture.Folder);
        var prompt = ChatTemplate.FromConfig(config).Render(ChatTemplateRequest.ForModel(new JsonArray(new ChatMessage("user", "Hi there").ToJson()), config) with { AddGenerationPrompt = true });
        Assert.Equal("<s>[INST] Hi there [/INST]", prompt);
        var expectedChat = Generator.Generate(model, _tok.Encode(prompt, addSpecialTokens: false).Ids, options, _tok);
        Assert.Equal(expectedChat.NewIds, JsonNode.Parse(chat.Stdout)!["ids"]!.AsArray().Select(x => x!.GetValue<int>()));

        // A scripted conversation: one message per line, two turns, two replies.
        var input = Path.Combine(fixture.Temp, "turns.txt");
        File.WriteAllLines(input, ["Hi there", "And then?"]);
        var repl = CliRunner.Run("generate", "--model", fixture.Folder, "--chat", "--max-new-tokens", "3", "--json", "--turns", input);
        Assert.True(repl.ExitCode == 0, repl.Stderr);
        Assert.Equal(2, repl.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
    }

    [Fact]
    public void Generate_StreamsDecodedText_AndStopsAtAStopString()
    {
        using var model = TransformerModel.Load(fixture.Folder);
        var ids = _tok.Encode("Once upon a time", true).Ids;
        var options = new GenerationOptions { MaxNewTokens = 12, EosTokenIds = [2] };
        var free = Generator.Generate(model, ids, options, _tok);
        // A stop string from the middle of the free text: generation ends with it, shorter.
        var text = free.Text!;
        Assert.True(text.Length >= 8, "the greedy text is too short for this test");
        var stop = text.Substring(text.Length / 2, 3);
        var expected = Generator.Generate(model, ids, options with { StopStrings = [stop] }, _tok);
        Assert.Equal(StopReason.StopString, expected.StopReason);
        Assert.EndsWith(stop, expected.Text!, StringComparison.Ordinal);
        Assert.True(expected.NewIds.Count < free.NewIds.Count);

        // The CLI streams the same decoded text (no --json), then a newline.
        var r = CliRunner.Run("generate", "--model", fixture.Folder, "--prompt", "Once upon a time", "--max-new-tokens", "12", "--stop", stop);
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Equal(expected.Text + Environment.NewLine, r.Stdout);
    }

    [Fact]
    public void EvalPerplexity_OnText_ReportsBitsPerByte()
    {
        var text = "The quick brown fox jumps over the lazy dog. " + string.Concat(Enumerable.Repeat("Once upon a time there was a tiny model. ", 6));
        var data = Path.Combine(fixture.Temp, "corpus.txt");
        File.WriteAllText(data, text);
        var r = CliRunner.Run("eval", "perplexity", "--model", fixture.Folder, "--data", data, "--block-size", "32", "--json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var model = TransformerModel.Load(fixture.Folder);
        var expected = Perplexity.Evaluate(model, _tok, [text], blockSize: 32);
        var o = JsonNode.Parse(r.Stdout)!;
        Assert.Equal(expected.Perplexity, o["perplexity"]!.GetValue<double>(), 6);
        Assert.Equal(expected.BitsPerByte, o["bits_per_byte"]!.GetValue<double>(), 6);
        Assert.Equal(System.Text.Encoding.UTF8.GetByteCount(text), o["bytes"]!.GetValue<long>());
    }

    [Fact]
    public void EvalTasks_ReportsAccuracies()
    {
        var dir = Path.Combine(fixture.Temp, "tasks");
        Directory.CreateDirectory(dir);
        File.Copy(TestPaths.Fixture("eval", "copa_head.jsonl"), Path.Combine(dir, "copa_head.jsonl"), overwrite: true);
        var r = CliRunner.Run("eval", "tasks", "--model", fixture.Folder, "--tasks", "copa_head", "--data-dir", dir, "--limit", "8", "--json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var model = TransformerModel.Load(fixture.Folder);
        var expected = TaskEvaluator.Evaluate(model, _tok, TaskData.Load(Path.Combine(dir, "copa_head.jsonl"), limit: 8));
        var res = JsonNode.Parse(r.Stdout)!["results"]![0]!;
        Assert.Equal(8, res["n"]!.GetValue<int>());
        Assert.Equal(expected.Accuracy, res["acc"]!.GetValue<double>(), 10);
        Assert.Equal(expected.NormalizedAccuracy!.Value, res["acc_norm"]!.GetValue<double>(), 10);

        var missing = CliRunner.Run("eval", "tasks", "--model", fixture.Folder, "--tasks", "nope", "--data-dir", dir);
        CliRunner.AssertCleanFailure(missing, "copa_head");
    }
}
