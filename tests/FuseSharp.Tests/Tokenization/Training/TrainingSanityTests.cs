using System.Collections.Concurrent;
using FuseSharp.Tensors;
using FuseSharp.Tokenization;
using FuseSharp.Tokenization.Normalizers;
using FuseSharp.Tokenization.PreTokenizers;
using FuseSharp.Tokenization.Training;
using Xunit;
using Xunit.Abstractions;

namespace FuseSharp.Tests.Tokenization.Training;

/// <summary>
/// Properties of trained tokenizers: the vocabulary size is reached, every training character is covered (or byte
/// fallback / the unknown token takes it), held-out text round-trips through the project's loader, the unigram EM
/// objective falls, and results are deterministic.
/// </summary>
[Collection(ParallelismCollection.Name)]
public class TrainingSanityTests(ITestOutputHelper output)
{
    private static readonly ConcurrentDictionary<(TokenizerKind, bool), Lazy<TrainedTokenizer>> Cache = new();

    internal static int VocabSizeOf(TokenizerKind kind) => kind switch
    {
        TokenizerKind.ByteLevelBpe => 700,
        TokenizerKind.SentencePieceBpe => 600,
        _ => 500,
    };

    /// <summary>A tokenizer of each kind trained on corpus.en (cached: training is shared by the tests of this area).</summary>
    internal static TrainedTokenizer Trained(TokenizerKind kind, bool byteFallback = false) => Cache.GetOrAdd((kind, byteFallback), k => new(() =>
        TokenizerTrainer.Train([new TrainingInput(BpeReferenceTests.Fx("corpus.en"))],
            new TokenizerTrainingOptions { Kind = k.Item1, VocabSize = VocabSizeOf(k.Item1) + (k.Item2 ? 256 : 0), ByteFallback = k.Item2 }))).Value;

    private static readonly string[] HeldOut =
    [
        File.ReadAllText(BpeReferenceTests.Fx("address.txt")),
        "Hello, World! It's 3.14 — naïve café.\nNew line\ttab  two spaces   three.\r\nWindows line end",
        "日本語のテキスト、絵文字😀👍🏽 and a family 👨‍👩‍👧 in text.",
        "def f(x):\n    return x ** 2  # comment\n\n\nclass A: pass",
        "ÅΩK ﬁ ｆｕｌｌ ① \u200B zero width, \uFEFF BOM, Ä (NFC) vs A\u0308 (NFD)",
    ];

    [Theory]
    [InlineData(TokenizerKind.ByteLevelBpe, false)]
    [InlineData(TokenizerKind.SentencePieceBpe, true)]
    [InlineData(TokenizerKind.Unigram, true)]
    public void HeldOutTextRoundTripsThroughTheSavedFiles(TokenizerKind kind, bool byteFallback)
    {
        var trained = Trained(kind, byteFallback);
        using var dir = TestPaths.NewTempDir();
        var folder = Path.Combine(dir.Path, "tok");
        trained.Save(folder);
        var tok = TokenizerLoader.Load(folder);
        foreach (var text in HeldOut)
        {
            var enc = tok.Encode(text);
            Assert.DoesNotContain(tok.UnkTokenId ?? -1, enc.Ids);
            Assert.Equal(text, tok.Decode(enc.Ids));
            Assert.Equal(enc.Ids, trained.Build().Encode(text).Ids);
        }
        var sample = tok.Encode(HeldOut[0]);
        output.WriteLine($"{kind}: {HeldOut[0].Length} chars -> {sample.Count} tokens: {string.Join(' ', sample.Tokens.Take(24))}");
    }

    [Theory]
    [InlineData(TokenizerKind.SentencePieceBpe)]
    [InlineData(TokenizerKind.Unigram)]
    public void WithoutByteFallbackUnseenCharactersAreUnknown(TokenizerKind kind)
    {
        var tok = Trained(kind).Build();
        var text = File.ReadAllText(BpeReferenceTests.Fx("address.txt"));
        var enc = tok.Encode(text);
        Assert.Contains(0, enc.Ids); // '—' never occurs in corpus.en
        Assert.Equal(text.Replace("—", "<unk>", StringComparison.Ordinal), tok.Decode(enc.Ids)); // the rest round-trips
    }

    [Theory]
    [InlineData(TokenizerKind.ByteLevelBpe, false)]
    [InlineData(TokenizerKind.SentencePieceBpe, false)]
    [InlineData(TokenizerKind.SentencePieceBpe, true)]
    [InlineData(TokenizerKind.Unigram, false)]
    [InlineData(TokenizerKind.Unigram, true)]
    public void VocabularySizeIsReached(TokenizerKind kind, bool byteFallback)
    {
        var trained = Trained(kind, byteFallback);
        int expected = VocabSizeOf(kind) + (byteFallback ? 256 : 0);
        Assert.Equal(expected, trained.Vocabulary.Count);
        Assert.Equal(expected, trained.Build().VocabSize);
        Assert.Null(trained.Stats.Notice);
        Assert.Equal(trained.Vocabulary.Count, trained.Vocabulary.Distinct(StringComparer.Ordinal).Count());
        if (kind != TokenizerKind.Unigram) Assert.Equal(trained.Stats.LearnedTokens, trained.Merges.Count);
    }

    [Theory]
    [InlineData(TokenizerKind.SentencePieceBpe)]
    [InlineData(TokenizerKind.Unigram)]
    public void EveryTrainingCharacterIsCoveredOrFallsBackToBytes(TokenizerKind kind)
    {
        var text = File.ReadAllText(BpeReferenceTests.Fx("corpus.en"));
        var chars = text.EnumerateRunes().Where(r => r.Value != ' ').Select(r => r.ToString()).Distinct().ToList();
        // Full coverage: every character is a token of its own.
        var full = TokenizerTrainer.Train([text], new TokenizerTrainingOptions { Kind = kind, VocabSize = 400, CharacterCoverage = 1 });
        Assert.All(chars, c => Assert.NotNull(full.IdOf(c)));
        // SentencePiece's default coverage drops the rarest characters; byte fallback still encodes all text without <unk>.
        var fallback = Trained(kind, byteFallback: true);
        var missing = chars.Where(c => fallback.IdOf(c) is null).ToList();
        Assert.NotEmpty(missing);
        output.WriteLine($"{kind}: {missing.Count} of {chars.Count} characters left to byte fallback: {string.Join(' ', missing)}");
        var tok = fallback.Build();
        var enc = tok.Encode(text);
        Assert.DoesNotContain(0, enc.Ids);
        Assert.Equal(text, tok.Decode(enc.Ids));
    }

    [Fact]
    public void UnigramEmObjectiveFalls()
    {
        var steps = Trained(TokenizerKind.Unigram).Stats.EmSteps;
        foreach (var s in steps) output.WriteLine($"round {s.Round} iteration {s.SubIteration}: {s.Pieces} pieces, objective {s.Objective:F4}");
        Assert.True(steps.Count >= 4);
        // Within a round the EM never makes the likelihood worse; pruning (between rounds) may.
        foreach (var round in steps.GroupBy(s => s.Round))
        {
            var objectives = round.Select(s => s.Objective).ToList();
            for (int i = 1; i < objectives.Count; i++) Assert.True(objectives[i] <= objectives[i - 1] + 1e-9, $"round {round.Key}: {objectives[i - 1]} -> {objectives[i]}");
        }
        Assert.True(steps[1].Objective < steps[0].Objective);
    }

    [Fact]
    public void ResultsDoNotDependOnTheThreadCount()
    {
        var text = File.ReadAllText(BpeReferenceTests.Fx("corpus.en"));
        var docs = text.Split("\n\n");
        int saved = Parallelism.MaxThreads;
        try
        {
            foreach (var kind in new[] { TokenizerKind.ByteLevelBpe, TokenizerKind.SentencePieceBpe, TokenizerKind.Unigram })
            {
                var options = new TokenizerTrainingOptions { Kind = kind, VocabSize = 400 };
                Parallelism.MaxThreads = 1;
                var one = TokenizerTrainer.Train(docs, options).ToTokenizerJson();
                Parallelism.MaxThreads = 4;
                var four = TokenizerTrainer.Train(docs, options).ToTokenizerJson();
                Assert.Equal(one, four);
            }
        }
        finally
        {
            Parallelism.MaxThreads = saved;
        }
    }

    [Theory]
    [InlineData(TokenizerKind.ByteLevelBpe)]
    [InlineData(TokenizerKind.SentencePieceBpe)]
    public void CuttingLongDocumentsDoesNotChangeTheWords(TokenizerKind kind)
    {
        var options = new TokenizerTrainingOptions { Kind = kind, VocabSize = 1000, SpecialTokens = ["<|endoftext|>", "a b"] }.Resolve();
        var inputs = new[] { new TrainingInput(BpeReferenceTests.Fx("corpus.en")), new TrainingInput(BpeReferenceTests.Fx("tinystories_sample.txt")) };
        Dictionary<string, long> Count(int unit)
        {
            var layout = TokenizerTrainer.Layout(options, null);
            var pre = PreTokenizerFactory.Create(new JsonSection(System.Text.Json.JsonDocument.Parse(layout["pre_tokenizer"]!.ToJsonString()).RootElement, "", ""));
            var counter = new WordCounter(null, pre, options.ResolvedSpecialTokens, cutLongWords: false);
            var corpus = new TrainingCorpus(inputs, options.ResolvedSpecialTokens, unit);
            return counter.Count(corpus.Batches(_ => { }, default), null, default);
        }
        var whole = Count(1 << 20);
        var cut = Count(97);
        Assert.Equal(whole.OrderBy(kv => kv.Key, StringComparer.Ordinal), cut.OrderBy(kv => kv.Key, StringComparer.Ordinal));
    }

    // The counter's direct paths for the two pre-tokenizers the trainer writes equal the general pipeline (forced here
    // by an NFC normalizer, the identity on this text).
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void FastCountingEqualsThePipeline(bool byteLevel)
    {
        var specials = new[] { "<|endoftext|>" };
        IPreTokenizer pre = byteLevel ? new ByteLevelPreTokenizer(false, true) : new MetaspacePreTokenizer("\u2581", PrependScheme.Always, true);
        var fast = new WordCounter(null, pre, specials, false);
        var general = new WordCounter(new UnicodeNormalizer(FuseSharp.Tokenization.Unicode.UnicodeForm.Nfc), pre, specials, false);
        var texts = new[] { "corpus.en", "tinystories_sample.txt", "wagahaiwa_nekodearu.ja.head.txt" }.Select(f => File.ReadAllText(BpeReferenceTests.Fx(f)))
            .Append("  a\u2581b  c <|endoftext|> d\u2581 \u2581\u2581x<|endoftext|> \n\t e  ").Append("\u2581").Append(" ");
        foreach (var raw in texts)
        {
            var text = FuseSharp.Tokenization.Unicode.UnicodeNormalization.Normalize(raw, FuseSharp.Tokenization.Unicode.UnicodeForm.Nfc);
            var a = new WordCounter.Tally();
            var b = new WordCounter.Tally();
            fast.AddWords(text, a);
            general.AddWords(text, b);
            Assert.NotEmpty(a.Counts);
            Assert.Equal(b.Counts.OrderBy(kv => kv.Key, StringComparer.Ordinal), a.Counts.OrderBy(kv => kv.Key, StringComparer.Ordinal));
        }
    }

    [Fact]
    public void SpecialTokensAreCutOutAndEncodeAsOneToken()
    {
        var trained = TokenizerTrainer.Train([new TrainingInput(BpeReferenceTests.Fx("tinystories_sample.txt"))],
            new TokenizerTrainingOptions { Kind = TokenizerKind.ByteLevelBpe, VocabSize = 400, SpecialTokensPlacement = SpecialTokensPlacement.End });
        Assert.Equal(399, trained.IdOf("<|endoftext|>"));
        Assert.DoesNotContain(trained.Vocabulary.Take(399), t => t.Contains("<|", StringComparison.Ordinal) || t.Contains("|>", StringComparison.Ordinal));
        var tok = trained.Build();
        var enc = tok.Encode("One day.<|endoftext|>Once");
        Assert.Contains(399, enc.Ids);
        Assert.Equal("One day.<|endoftext|>Once", tok.Decode(enc.Ids));
    }

    [Fact]
    public void BosAndEosAreAddedWhenAsked()
    {
        var trained = TokenizerTrainer.Train([File.ReadAllText(BpeReferenceTests.Fx("tinystories_sample.txt"))],
            new TokenizerTrainingOptions { Kind = TokenizerKind.Unigram, VocabSize = 400, AddBosToken = true, AddEosToken = true, ByteFallback = true });
        using var dir = TestPaths.NewTempDir();
        trained.Save(dir.Path);
        var tok = TokenizerLoader.Load(dir.Path);
        var plain = tok.Encode("Ben saw a vase.");
        var wrapped = tok.Encode("Ben saw a vase.", addSpecialTokens: true);
        Assert.Equal([1, .. plain.Ids, 2], wrapped.Ids);
        Assert.Equal("Ben saw a vase.", tok.Decode(wrapped.Ids, skipSpecialTokens: true));
    }

    [Fact]
    public void JapaneseTextWithoutSpacesTrainsAndRoundTrips()
    {
        var text = File.ReadAllText(BpeReferenceTests.Fx("wagahaiwa_nekodearu.ja.head.txt"));
        foreach (var kind in new[] { TokenizerKind.SentencePieceBpe, TokenizerKind.Unigram })
        {
            var trained = TokenizerTrainer.Train([text], new TokenizerTrainingOptions { Kind = kind, VocabSize = 1200, ByteFallback = true });
            Assert.Equal(1200, trained.Vocabulary.Count);
            var tok = trained.Build();
            var sentence = "吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。🐈";
            var enc = tok.Encode(sentence);
            Assert.Equal(sentence, tok.Decode(enc.Ids));
            Assert.True(enc.Count < sentence.Length, $"{kind}: {enc.Count} tokens for {sentence.Length} characters");
            output.WriteLine($"{kind}: {string.Join(' ', enc.Tokens)}");
        }
    }
}
