using System.Text.Json;
using FuseSharp.Tests.Cli;
using FuseSharp.Tokenization;
using FuseSharp.Tokenization.Training;
using Xunit;

namespace FuseSharp.Tests.Tokenization.Training;

/// <summary><c>fusesharp tokenizer train</c>, and bad input: every failure is one clear message, never a stack trace.</summary>
public class TrainCommandTests
{
    private static string Corpus => BpeReferenceTests.Fx("corpus.en");

    // The three tokenizers of the fusion experiment, one command each; the folders load and round-trip.
    [Theory]
    [InlineData("byte-bpe", "2000", "")]
    [InlineData("sp-bpe", "1500", "--byte-fallback")]
    [InlineData("unigram", "1000", "--byte-fallback")]
    public void TrainsEachKindAndTheFolderTokenizes(string kind, string vocab, string extra)
    {
        using var dir = TestPaths.NewTempDir();
        var output = Path.Combine(dir.Path, kind);
        var args = new List<string> { "tokenizer", "train", Corpus, "--kind", kind, "--vocab-size", vocab, "--out", output, "--json" };
        if (extra.Length > 0) args.Add(extra);
        var r = CliRunner.Run([.. args]);
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var summary = JsonDocument.Parse(r.Stdout);
        Assert.Equal(int.Parse(vocab, System.Globalization.CultureInfo.InvariantCulture), summary.RootElement.GetProperty("vocab_size").GetInt32());
        Assert.True(File.Exists(Path.Combine(output, "tokenizer.json")));
        Assert.True(File.Exists(Path.Combine(output, "tokenizer_config.json")));
        var text = File.ReadAllText(BpeReferenceTests.Fx("address.txt"));
        var tok = TokenizerLoader.Load(output);
        Assert.Equal(text, tok.Decode(tok.Encode(text).Ids));
        var t = CliRunner.Run("tokenize", "--tokenizer", output, "--text", "Four score and seven years ago", "--json");
        Assert.Equal(0, t.ExitCode);
        using var enc = JsonDocument.Parse(t.Stdout);
        Assert.Equal("Four score and seven years ago", enc.RootElement.GetProperty("decoded").GetString());
    }

    [Fact]
    public void JsonlInputsAndSeveralFilesAreOneCorpus()
    {
        using var dir = TestPaths.NewTempDir();
        var lines = File.ReadAllLines(Corpus);
        var half = lines.Length / 2;
        File.WriteAllLines(dir.File("a.jsonl"), lines.Take(half).Select(l => JsonSerializer.Serialize(new { text = l + "\n", id = 1 })));
        File.WriteAllText(dir.File("b.txt"), string.Join("\n", lines.Skip(half)) + "\n");
        var r = CliRunner.Run("tokenizer", "train", dir.File("a.jsonl"), dir.File("b.txt"), "--kind", "byte-bpe", "--vocab-size", "600", "--out", dir.File("tok"));
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("600 tokens", r.Stdout, StringComparison.Ordinal);
        // The same documents given in memory give the same tokenizer.
        var docs = lines.Take(half).Select(l => l + "\n").Append(string.Join("\n", lines.Skip(half)) + "\n");
        var direct = TokenizerTrainer.Train(docs, new TokenizerTrainingOptions { Kind = TokenizerKind.ByteLevelBpe, VocabSize = 600 });
        Assert.Equal(direct.ToTokenizerJson(), File.ReadAllText(Path.Combine(dir.File("tok"), "tokenizer.json")));
    }

    [Fact]
    public void SpecialTokensAndRolesFromTheCommandLine()
    {
        using var dir = TestPaths.NewTempDir();
        var r = CliRunner.Run("tokenizer", "train", BpeReferenceTests.Fx("tinystories_sample.txt"), "--kind", "sp-bpe", "--vocab-size", "300",
            "--special-tokens", "<pad>,<|endoftext|>", "--eos-token", "<|endoftext|>", "--pad-token", "<pad>", "--specials-at", "end", "--out", dir.File("tok"));
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir.File("tok"), "tokenizer_config.json")));
        Assert.Equal("<|endoftext|>", config.RootElement.GetProperty("eos_token").GetString());
        Assert.Equal("<pad>", config.RootElement.GetProperty("pad_token").GetString());
        var tok = TokenizerLoader.Load(dir.File("tok"));
        Assert.Equal(299, tok.EosTokenId);
        Assert.Equal(298, tok.PadTokenId);
        Assert.Equal(297, tok.UnkTokenId); // the unknown token is added first among the specials: <unk> <pad> <|endoftext|>
    }

    [Theory]
    [InlineData("byte-bpe", "100", "smaller than the 256-byte alphabet")]
    [InlineData("sp-bpe", "40", "too small")]
    [InlineData("unigram", "40", "too small")]
    [InlineData("byte-bpe", "0", "must be positive")]
    [InlineData("wordpiece", "1000", "--kind must be one of")]
    public void BadOptionsFailCleanly(string kind, string vocab, string message)
    {
        using var dir = TestPaths.NewTempDir();
        var r = CliRunner.Run("tokenizer", "train", Corpus, "--kind", kind, "--vocab-size", vocab, "--out", dir.File("tok"));
        CliRunner.AssertCleanFailure(r, message);
        Assert.False(Directory.Exists(dir.File("tok")));
    }

    [Fact]
    public void UnreadableInputsFailCleanly()
    {
        using var dir = TestPaths.NewTempDir();
        void Fails(string message, params string[] inputs)
        {
            var r = CliRunner.Run(["tokenizer", "train", .. inputs, "--kind", "byte-bpe", "--vocab-size", "300", "--out", dir.File("tok")]);
            CliRunner.AssertCleanFailure(r, message);
            Assert.False(Directory.Exists(dir.File("tok")));
        }
        Fails("no such file", dir.File("missing.txt"));
        Fails("is a folder", dir.Path);
        File.WriteAllBytes(dir.File("latin1.txt"), [.. "caf\u00e9\nline two\n"u8.ToArray().Take(3), 0xE9, 0x0A, (byte)'x']);
        Fails("latin1.txt: line 1: invalid UTF-8 (byte offset 3)", dir.File("latin1.txt"));
        File.WriteAllText(dir.File("empty.txt"), "");
        Fails("the training text is empty", dir.File("empty.txt"));
        File.WriteAllText(dir.File("specials.txt"), "<|endoftext|><|endoftext|>");
        Fails("the training text is empty", dir.File("specials.txt"));
        File.WriteAllText(dir.File("bad.jsonl"), "{\"text\": \"fine\"}\n{\"text\": oops}\n");
        Fails("bad.jsonl: line 2: not valid JSON", dir.File("bad.jsonl"));
        File.WriteAllText(dir.File("field.jsonl"), "{\"content\": \"x\"}\n");
        Fails("field.jsonl: line 1: no \"text\" field", dir.File("field.jsonl"));
        File.WriteAllText(dir.File("number.jsonl"), "{\"text\": 3}\n");
        Fails("number.jsonl: line 1: \"text\" is not a string", dir.File("number.jsonl"));
    }

    [Fact]
    public void AnExistingTokenizerIsNotReplacedWithoutOverwrite()
    {
        using var dir = TestPaths.NewTempDir();
        var args = new[] { "tokenizer", "train", BpeReferenceTests.Fx("tinystories_sample.txt"), "--kind", "byte-bpe", "--vocab-size", "300", "--out", dir.Path };
        File.WriteAllText(dir.File("tokenizer.json"), "{}");
        CliRunner.AssertCleanFailure(CliRunner.Run(args), "already exists");
        Assert.Equal("{}", File.ReadAllText(dir.File("tokenizer.json")));
        var r = CliRunner.Run([.. args, "--overwrite"]);
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Equal(300, TokenizerLoader.Load(dir.Path).VocabSize);
    }

    [Fact]
    public void LibraryOptionsAreCheckedBeforeAnyText()
    {
        TokenizerTrainingException Bad(TokenizerTrainingOptions o) => Assert.Throws<TokenizerTrainingException>(() => TokenizerTrainer.Train(["text"], o));
        Assert.Contains("character coverage", Bad(new() { Kind = TokenizerKind.Unigram, VocabSize = 100, CharacterCoverage = 1.5 }).Message, StringComparison.Ordinal);
        Assert.Contains("tie-break", Bad(new() { Kind = TokenizerKind.Unigram, VocabSize = 100, TieBreak = BpeTieBreak.LowestIds }).Message, StringComparison.Ordinal);
        Assert.Contains("byte fallback", Bad(new() { Kind = TokenizerKind.ByteLevelBpe, VocabSize = 300, ByteFallback = true }).Message, StringComparison.Ordinal);
        Assert.Contains("listed twice", Bad(new() { Kind = TokenizerKind.ByteLevelBpe, VocabSize = 300, SpecialTokens = ["<a>", "<a>"] }).Message, StringComparison.Ordinal);
        Assert.Contains("byte alphabet", Bad(new() { Kind = TokenizerKind.ByteLevelBpe, VocabSize = 300, SpecialTokens = ["!"] }).Message, StringComparison.Ordinal);
        Assert.Contains("no BOS token", Bad(new() { Kind = TokenizerKind.ByteLevelBpe, VocabSize = 300, SpecialTokens = [], AddBosToken = true }).Message, StringComparison.Ordinal);
        var e = Assert.Throws<TokenizerTrainingException>(() => TokenizerTrainer.Train(Array.Empty<TrainingInput>(), new TokenizerTrainingOptions { Kind = TokenizerKind.ByteLevelBpe, VocabSize = 300 }));
        Assert.Contains("no training input", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void JsonlLineEndingsBomBlankLinesAndAnUnterminatedLastLine()
    {
        using var dir = TestPaths.NewTempDir();
        File.WriteAllBytes(dir.File("x.jsonl"), [.. "\uFEFF{\"body\": \"one two\"}\r\n\r\n  \n{\"body\": \"three \\u00e9\"}"u8.ToArray()]);
        File.WriteAllText(dir.File("y.txt"), "one two\nthree \u00e9");
        var options = new TokenizerTrainingOptions { Kind = TokenizerKind.ByteLevelBpe, VocabSize = 270 };
        var fromJsonl = TokenizerTrainer.Train([new TrainingInput(dir.File("x.jsonl"), TextField: "body")], options);
        var fromTexts = TokenizerTrainer.Train(["one two", "three \u00e9"], options);
        Assert.Equal(fromTexts.ToTokenizerJson(), fromJsonl.ToTokenizerJson());
        Assert.Equal(4, fromJsonl.Stats.Words); // "one", " two", "three", " é"
        // A .txt read as JSON lines fails on its first line.
        var e = Assert.Throws<TokenizerTrainingException>(() => TokenizerTrainer.Train([new TrainingInput(dir.File("y.txt"), TrainingInputFormat.Jsonl)], options));
        Assert.Contains("y.txt: line 1: not valid JSON", e.Message, StringComparison.Ordinal);
    }
}
