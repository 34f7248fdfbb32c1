using FuseSharp.Tests.Cli;
using FuseSharp.Tokenization;
using Xunit;

namespace FuseSharp.Tests.Tokenization;

/// <summary>Malformed tokenizer files and inputs fail with one clear message naming the file and place (library and CLI).</summary>
public class BadInputTests
{
    private static TokenizerException Fails(string path) => Assert.Throws<TokenizerException>(() => TokenizerLoader.Load(path));

    [Fact]
    public void MalformedTokenizerJson()
    {
        using var dir = TestPaths.NewTempDir();
        var text = File.ReadAllText(TokenizerFixtures.PathOf("mistral-7b-instruct-v0.2/tokenizer.json"));
        File.WriteAllText(dir.File("tokenizer.json"), text[..(text.Length / 2)]);
        var e = Fails(dir.File("tokenizer.json"));
        Assert.Contains("tokenizer.json", e.Message, StringComparison.Ordinal);
        Assert.Contains("not valid JSON", e.Message, StringComparison.Ordinal);
        Assert.Matches(@"line \d+", e.Message);
    }

    [Fact]
    public void UnknownComponentTypeIsNamedWithItsPlace()
    {
        using var dir = TestPaths.NewTempDir();
        var text = File.ReadAllText(TokenizerFixtures.PathOf("mistral-7b-instruct-v0.2/tokenizer.json"));
        File.WriteAllText(dir.File("tokenizer.json"), text.Replace("\"type\": \"Fuse\"", "\"type\": \"Fusion\"", StringComparison.Ordinal));
        var e = Fails(dir.File("tokenizer.json"));
        Assert.Contains("unknown decoder type 'Fusion'", e.Message, StringComparison.Ordinal);
        Assert.Contains("decoder.decoders[2]", e.Message, StringComparison.Ordinal);
        Assert.Contains("Fuse", e.Hint, StringComparison.Ordinal);
    }

    [Fact]
    public void MergesFileWithABadLine()
    {
        using var dir = TestPaths.NewTempDir();
        File.Copy(TokenizerFixtures.PathOf("gpt2-hf/vocab.json"), dir.File("vocab.json"));
        var lines = File.ReadAllLines(TokenizerFixtures.PathOf("gpt2-hf/merges.txt"));
        lines[4] = "Ġa b c";
        File.WriteAllLines(dir.File("merges.txt"), lines);
        Assert.Contains("merges.txt: line 5", Fails(dir.Path).Message, StringComparison.Ordinal);
        lines[4] = "Ġzzzq zzzq";
        File.WriteAllLines(dir.File("merges.txt"), lines);
        var e = Fails(dir.Path);
        Assert.Contains("merges.txt: line 5", e.Message, StringComparison.Ordinal);
        Assert.Contains("not in the vocabulary", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ModelFileThatIsNotSentencePiece()
    {
        using var dir = TestPaths.NewTempDir();
        var junk = new byte[4096];
        new Random(7).NextBytes(junk);
        junk[0] = 0x0A;
        File.WriteAllBytes(dir.File("tokenizer.model"), junk);
        var e = Fails(dir.File("tokenizer.model"));
        Assert.Contains("not a SentencePiece model", e.Message, StringComparison.Ordinal);
        File.WriteAllBytes(dir.File("tokenizer.model"), [0x0A, 0x05, 0x0A, 0x01]);
        Assert.Contains("not a SentencePiece model", Fails(dir.File("tokenizer.model")).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TiktokenFileWithABadLine()
    {
        using var dir = TestPaths.NewTempDir();
        File.WriteAllLines(dir.File("tokenizer.model"), ["IQ== 0", "Ig== 1", "!!not base64!! 2"]);
        Assert.Contains("line 3", Fails(dir.File("tokenizer.model")).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void InvalidUtf8InAVocabulary()
    {
        using var dir = TestPaths.NewTempDir();
        var bytes = File.ReadAllBytes(TokenizerFixtures.PathOf("gpt2-hf/vocab.json"));
        bytes[200] = 0xFF;
        File.WriteAllBytes(dir.File("vocab.json"), bytes);
        File.Copy(TokenizerFixtures.PathOf("gpt2-hf/merges.txt"), dir.File("merges.txt"));
        var e = Fails(dir.Path);
        Assert.Contains("invalid UTF-8", e.Message, StringComparison.Ordinal);
        Assert.Contains("vocab.json: line 1", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TruncatedGguf()
    {
        using var dir = TestPaths.NewTempDir();
        var bytes = File.ReadAllBytes(TokenizerFixtures.PathOf("llamacpp-ggml-vocab/ggml-vocab-gpt-2.gguf"));
        File.WriteAllBytes(dir.File("t.gguf"), bytes[..(bytes.Length / 3)]);
        Assert.Contains("damaged GGUF header", Fails(dir.File("t.gguf")).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void NothingToLoad()
    {
        using var dir = TestPaths.NewTempDir();
        Assert.Contains("no tokenizer found", Fails(dir.Path).Message, StringComparison.Ordinal);
        Assert.Contains("no such file", Fails(dir.File("missing.json")).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void UnpairedSurrogatesAreRejected()
    {
        var e = Assert.Throws<TokenizerException>(() => TokenizerFixtures.Load("gpt2-hf/tokenizer.json").Encode("ab\uD800c"));
        Assert.Contains("index 2", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void BatchEncodingReportsTheTextsOwnError()
    {
        var e = Assert.Throws<TokenizerException>(() => TokenizerFixtures.Load("gpt2-hf/tokenizer.json").EncodeBatch(["fine", "also fine", "bad\uDC00"]));
        Assert.Contains("unpaired surrogate", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void CliReportsBadTokenizersAndInputs()
    {
        using var dir = TestPaths.NewTempDir();
        File.WriteAllText(dir.File("tokenizer.json"), "{\"model\": {\"type\": \"Magic\"}}");
        CliRunner.AssertCleanFailure(CliRunner.Run("tokenize", "--tokenizer", dir.File("tokenizer.json"), "--text", "hi"), "unknown model type 'Magic'");
        var gpt2 = TokenizerFixtures.PathOf("gpt2-hf/tokenizer.json");
        File.WriteAllBytes(dir.File("in.jsonl"), [.. "{\"text\": \"ok\"}\n{\"text\": \""u8, 0xC3, 0x28, .. "\"}\n"u8]);
        CliRunner.AssertCleanFailure(CliRunner.Run("tokenize", "--tokenizer", gpt2, "--input", dir.File("in.jsonl")), "line 2: invalid UTF-8");
        File.WriteAllText(dir.File("in.jsonl"), "{\"text\": \"ok\"}\n{\"txt\": \"no\"}\n");
        CliRunner.AssertCleanFailure(CliRunner.Run("tokenize", "--tokenizer", gpt2, "--input", dir.File("in.jsonl")), "line 2: expected an object with a string field \"text\"");
        CliRunner.AssertCleanFailure(CliRunner.Run("tokenize", "--tokenizer", gpt2), "exactly one of --text and --input");
    }
}
