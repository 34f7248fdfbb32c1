using System.Text.Json;
using FuseSharp.Tests.Cli;
using Xunit;

namespace FuseSharp.Tests.Tokenization;

/// <summary><c>fusesharp tokenize</c> as DESIGN.md specifies it.</summary>
public class TokenizeCommandTests
{
    [Fact]
    public void TextWithJsonPrintsIdsTokensCodePointOffsetsAndDecoded()
    {
        var r = CliRunner.Run("tokenize", "--tokenizer", TokenizerFixtures.PathOf("mistral-7b-instruct-v0.2"), "--text", "Hi 😀 there", "--add-special-tokens", "--json");
        Assert.Equal(0, r.ExitCode);
        using var doc = JsonDocument.Parse(r.Stdout);
        var root = doc.RootElement;
        var ids = root.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        Assert.Equal(1, ids[0]);
        Assert.Equal(ids.Length, root.GetProperty("tokens").GetArrayLength());
        var offsets = root.GetProperty("offsets").EnumerateArray().Select(o => (o[0].GetInt32(), o[1].GetInt32())).ToList();
        Assert.Equal((0, 0), offsets[0]);
        Assert.Equal(10, offsets[^1].Item2);   // code points: "Hi 😀 there" has 10 (UTF-16: 11)
        Assert.Equal("<s> Hi 😀 there", root.GetProperty("decoded").GetString());
        Assert.Contains("😀", r.Stdout, StringComparison.Ordinal); // written as UTF-8, not \u escapes
    }

    [Fact]
    public void InputFileGivesOneJsonLinePerText()
    {
        using var dir = TestPaths.NewTempDir();
        File.WriteAllText(dir.File("in.jsonl"), "{\"text\": \"Hello world\"}\n\n{\"text\": \"<|endoftext|>x\", \"id\": 7}\n");
        var r = CliRunner.Run("tokenize", "--tokenizer", TokenizerFixtures.PathOf("gpt2-hf/tokenizer.json"), "--input", dir.File("in.jsonl"));
        Assert.Equal(0, r.ExitCode);
        var lines = r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        using var a = JsonDocument.Parse(lines[0]);
        Assert.Equal([15496, 995], a.RootElement.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Equal(["Hello", "Ġworld"], a.RootElement.GetProperty("tokens").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal("[[0,5],[5,11]]", a.RootElement.GetProperty("offsets").GetRawText());
        using var b = JsonDocument.Parse(lines[1]);
        Assert.Equal([50256, 87], b.RootElement.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Equal("<|endoftext|>x", b.RootElement.GetProperty("decoded").GetString());
    }

    [Fact]
    public void HumanViewListsTokens()
    {
        var r = CliRunner.Run("tokenize", "--tokenizer", TokenizerFixtures.PathOf("llama2/tokenizer.model"), "--text", "Hello world");
        Assert.Equal(0, r.ExitCode);
        Assert.Contains("15043", r.Stdout, StringComparison.Ordinal);
        Assert.Contains("\"▁Hello\"", r.Stdout, StringComparison.Ordinal);
        Assert.Contains("decoded: \"Hello world\"", r.Stdout, StringComparison.Ordinal);
    }
}
