using System.Text.Json;
using FuseSharp.Tokenization;
using FuseSharp.Tokenization.Training;
using Xunit;

namespace FuseSharp.Tests.Tokenization.Training;

/// <summary>
/// BPE training against the references: the cs336 assignment-1 fixture (merges and vocabulary of byte-level BPE on
/// corpus.en), Hugging Face <c>tokenizers</c>' own BpeTrainer unit tests, and SentencePiece's bpe_model_trainer_test.
/// </summary>
public class BpeReferenceTests
{
    internal static string Fx(string name) => TestPaths.Fixture("tokenizer-training", name);

    private static readonly Lazy<TrainedTokenizer> Cs336 = new(() => TokenizerTrainer.Train(
        [new TrainingInput(Fx("corpus.en"))],
        new TokenizerTrainingOptions { Kind = TokenizerKind.ByteLevelBpe, VocabSize = 500, SpecialTokens = ["<|endoftext|>"] }));

    private static byte[] Bytes(string token)
    {
        var list = new List<byte>();
        Assert.True(ByteLevelAlphabet.TryDecode(token, list), $"'{token}' is not in the byte alphabet");
        return [.. list];
    }

    [Fact]
    public void Cs336CorpusGivesTheReferenceMerges()
    {
        var expected = File.ReadAllLines(Fx("train-bpe-reference-merges.txt"))
            .Where(l => l.Length > 0).Select(l => l.TrimEnd().Split(' ')).Select(p => (p[0], p[1])).ToList();
        Assert.Equal(243, expected.Count);
        var actual = Cs336.Value.Merges.Select(m => (m.Left, m.Right)).ToList();
        Assert.Equal(expected, actual);
        // As the reference test compares: the merges as byte strings.
        Assert.Equal(expected.Select(m => Convert.ToHexString(Bytes(m.Item1)) + " " + Convert.ToHexString(Bytes(m.Item2))),
            actual.Select(m => Convert.ToHexString(Bytes(m.Item1)) + " " + Convert.ToHexString(Bytes(m.Item2))));
    }

    [Fact]
    public void Cs336CorpusGivesTheReferenceVocabulary()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Fx("train-bpe-reference-vocab.json")));
        var expected = doc.RootElement.EnumerateObject().ToDictionary(p => p.Value.GetInt32(), p => p.Name);
        var vocab = Cs336.Value.Vocabulary;
        Assert.Equal(500, vocab.Count);
        // The reference test: the same set of ids and the same set of byte strings (the special token is plain ASCII).
        Assert.Equal(expected.Keys.Order(), Enumerable.Range(0, vocab.Count));
        Assert.Equal(expected.Values.Select(t => Convert.ToHexString(Bytes(t))).Order(StringComparer.Ordinal),
            vocab.Select(t => Convert.ToHexString(Bytes(t))).Order(StringComparer.Ordinal));
        // And since the layouts agree, id by id.
        for (int id = 0; id < vocab.Count; id++) Assert.Equal(expected[id], vocab[id]);
    }

    [Fact]
    public void HuggingFaceTieBreakIsADifferentRule()
    {
        // Hugging Face's BpeTrainer prefers the pair with the smallest ids: it agrees with the reference until the first
        // tie it breaks the other way (merge 31: ("Ġ","d") vs ("Ġa","nd"), both occurring equally often).
        var hf = TokenizerTrainer.Train([new TrainingInput(Fx("corpus.en"))],
            new TokenizerTrainingOptions { Kind = TokenizerKind.ByteLevelBpe, VocabSize = 500, TieBreak = BpeTieBreak.LowestIds });
        Assert.Equal(Cs336.Value.Merges.Take(31), hf.Merges.Take(31));
        Assert.Equal(("Ġ", "d"), hf.Merges[31]);
        Assert.Equal(("Ġa", "nd"), Cs336.Value.Merges[31]);
    }

    // Hugging Face tokenizers, models/bpe/trainer.rs, test_train: min_frequency 2, ids compared as the trainer assigns them.
    [Fact]
    public void HuggingFaceTrainerUnitTest()
    {
        var words = new (string, long)[]
        {
            ("roses", 1), ("are", 2), ("red", 1), ("voilets", 1), ("blue", 1), ("BERT", 1), ("is", 2), ("big", 1), ("and", 1), ("so", 1), ("GPT-2", 1),
        };
        var (vocab, merges) = TrainOnWords(words, BpeTieBreak.LowestIds, minFrequency: 2, maxLength: int.MaxValue, target: 30000);
        Assert.Equal(["-", "2", "B", "E", "G", "P", "R", "T", "a", "b", "d", "e", "g", "i", "l", "n", "o", "r", "s", "t", "u", "v", "re", "are", "is"], vocab);
        Assert.Equal([("r", "e"), ("a", "re"), ("i", "s")], merges);
    }

    // Hugging Face tokenizers, models/bpe/trainer.rs, bpe_test_max_token_length_direct_assert (tokens of at most 2 characters).
    [Fact]
    public void HuggingFaceMaxTokenLengthUnitTest()
    {
        var words = new[] { "sin", "Sin", "Lon", "Ano", "짧은한", "긴한글", "短字符", "长字符", "短い文", "長い文", "so", "GP" }.Select(w => (w, 2L)).ToArray();
        var (vocab, _) = TrainOnWords(words, BpeTieBreak.LowestIds, minFrequency: 0, maxLength: 2, target: 30000);
        var expected = new Dictionary<string, int>
        {
            ["短"] = 12, ["n"] = 6, ["i"] = 5, ["s"] = 8, ["字符"] = 23, ["長"] = 14, ["긴"] = 17, ["い文"] = 22, ["L"] = 2, ["in"] = 21, ["o"] = 7,
            ["은한"] = 29, ["S"] = 4, ["P"] = 3, ["so"] = 27, ["符"] = 13, ["文"] = 11, ["字"] = 10, ["짧"] = 19, ["GP"] = 25, ["글"] = 16, ["G"] = 1,
            ["An"] = 24, ["长"] = 15, ["A"] = 0, ["Lo"] = 26, ["긴한"] = 28, ["い"] = 9, ["한"] = 20, ["은"] = 18,
        };
        Assert.Equal(expected.OrderBy(kv => kv.Value).Select(kv => kv.Key), vocab);
    }

    // SentencePiece, bpe_model_trainer_test.cc, BasicTest: vocab_size = size - 3 (the meta pieces), identity
    // normalization, no dummy prefix; the pieces after <unk> <s> </s>, in id order. The last two pieces of the first
    // three cases are pairs whose count had fallen to 0, which SentencePiece keeps adding once the text has none left.
    [Theory]
    [InlineData("abracadabra", "", "ab ra abra ad cad abracad abracadabra ac br a b r c d")]
    [InlineData("pen|pineapple|apple", "", "ap le app apple en in ine pen p e a l n i")]
    [InlineData("hellohe", "", "he ll llo hello hellohe el lo oh hel ohe e h l o")]
    [InlineData("pen|pineapple|apple", "app", "app le en in ine pen pine ne pe e l n p i")]
    public void SentencePieceTrainerUnitTest(string lines, string userSymbols, string expected)
    {
        var specials = new List<string> { "<unk>", "<s>", "</s>" };
        if (userSymbols.Length > 0) specials.Add(userSymbols);
        var options = new TokenizerTrainingOptions
        {
            Kind = TokenizerKind.SentencePieceBpe, VocabSize = 17, SpecialTokens = specials, CharacterCoverage = 1,
        }.Resolve();
        // One word per line (no spaces, no dummy prefix), user-defined symbols cut out as the trainer does with special tokens.
        var counter = new WordCounter(null, null, specials, cutLongWords: true);
        var tally = new WordCounter.Tally();
        foreach (var line in lines.Split('|')) counter.AddWords(line, tally);
        var unique = tally.Counts.Keys.Order(StringComparer.Ordinal).ToArray();
        var trained = TokenizerTrainer.TrainWords(options, unique, [.. unique.Select(w => tally.Counts[w])], null, null, default);
        Assert.Equal(expected, string.Join(' ', trained.Vocabulary.Skip(3)));
    }

    private static (List<string> Vocab, List<(string, string)> Merges) TrainOnWords((string Word, long Count)[] words, BpeTieBreak tieBreak, long minFrequency, int maxLength, int target)
    {
        var alphabet = words.SelectMany(w => w.Word.EnumerateRunes().Select(r => r.ToString())).Distinct().Order(StringComparer.Ordinal).ToList();
        var index = alphabet.Select((s, i) => (s, i)).ToDictionary(x => x.s, x => x.i);
        var seqs = words.Select(w => w.Word.EnumerateRunes().Select(r => index[r.ToString()]).ToArray()).ToArray();
        var merger = new BpeMerger(alphabet, s => System.Text.Encoding.UTF8.GetBytes(s), tieBreak, PieceRules.LengthOnly(maxLength), DuplicateMerge.ReuseToken);
        var result = merger.Train(seqs, [.. words.Select(w => w.Count)], target, minFrequency, zeroCountMerges: false, null, default);
        return (result.Symbols, result.Merges.Select(m => (result.Symbols[m.Left], result.Symbols[m.Right])).ToList());
    }
}
