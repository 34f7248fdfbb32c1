using FuseSharp.Tokenization.Training;
using Xunit;

namespace FuseSharp.Tests.Tokenization.Training;

/// <summary>The unigram trainer against the references' own unit tests (Hugging Face <c>tokenizers</c> and SentencePiece).</summary>
public class UnigramReferenceTests
{
    internal static int[] Cps(string s) => [.. s.EnumerateRunes().Select(r => r.Value)];

    internal static UnigramTrainer Trainer((string Word, long Count)[] words, int pieceCount, int desired, PieceRules rules) =>
        new([.. words.Select(w => Cps(w.Word))], [.. words.Select(w => w.Count)], new UnigramTrainer.Settings(pieceCount, desired, 1_000_000, 0.75, 2, rules));

    internal static List<(int CodePoint, long Count)> Required((string Word, long Count)[] words)
    {
        var counts = new Dictionary<int, long>();
        foreach (var (w, c) in words)
            foreach (var cp in Cps(w)) counts[cp] = counts.GetValueOrDefault(cp) + c;
        return PieceRules.RequiredCharacters(counts, 1.0);
    }

    // Hugging Face tokenizers, models/unigram/trainer.rs, test_unigram_chars: the seed pieces of two sentences and their
    // log probabilities (the characters by count, then "is " (2 × 3) and "s " (2 × 2), the only repeated maximal substrings).
    [Fact]
    public void HuggingFaceSeedPieces()
    {
        var words = new[] { ("This is a", 1L), ("こんにちは友達", 1L) };
        var trainer = Trainer(words, 100, 110, PieceRules.LengthOnly(16));
        var seeds = trainer.Seeds(Required(words), default);
        var expected = new Dictionary<string, double>
        {
            ["s"] = -2.5649493574615367, ["i"] = -2.5649493574615367, [" "] = -2.5649493574615367,
            ["達"] = -3.258096538021482, ["友"] = -3.258096538021482, ["ん"] = -3.258096538021482, ["は"] = -3.258096538021482,
            ["に"] = -3.258096538021482, ["ち"] = -3.258096538021482, ["こ"] = -3.258096538021482, ["h"] = -3.258096538021482,
            ["a"] = -3.258096538021482, ["T"] = -3.258096538021482, ["is "] = -1.4663370687934272, ["s "] = -1.8718021769015916,
        };
        Assert.Equal(expected.Count, seeds.Count);
        foreach (var (piece, score) in seeds)
        {
            var text = PieceRules.Text(piece);
            Assert.True(expected.TryGetValue(text, out double want), $"unexpected seed '{text}'");
            Assert.Equal(want, score, 12);
        }
        // SentencePiece's order: characters by count then code point, then substrings by score.
        Assert.Equal([" ", "i", "s", "T", "a", "h"], seeds.Take(6).Select(s => PieceRules.Text(s.Piece)));
        Assert.Equal(["is ", "s "], seeds.Skip(13).Select(s => PieceRules.Text(s.Piece)));
    }

    // SentencePiece, unigram_model_trainer_test.cc, BasicTest: TSV input with sentence counts, vocab_size 27 (30 - 3
    // meta pieces), identity normalization, no dummy prefix; the final pieces sorted.
    [Fact]
    public void SentencePieceBasicTest()
    {
        var words = new (string, long)[]
        {
            ("magnanimity", 5), ("Pineapple", 6), ("Overly", 6), ("Available", 3),
            ("i", 1), ("▁have", 1), ("▁an", 1), ("▁apple", 1), ("▁and", 1), ("▁a", 1), ("▁pen", 1),
        };
        var trainer = Trainer(words, 27 - 3, (int)(27 * 1.1), PieceRules.SentencePiece(16, true, true, false));
        var result = trainer.Train(Required(words), FuseSharp.Diagnostics.NullProgress.Instance, default);
        var pieces = result.Pieces.Select(p => PieceRules.Text(p.Piece)).Order(StringComparer.Ordinal);
        Assert.Equal("A Available O Overly P Pineapple a b d e g h i l m magnanimity n p r t v y ▁ ▁an", string.Join(' ', pieces));
    }

    // SentencePiece, unigram_model_trainer_test.cc, PruneUnreachableSentencePiecesTest: "ab" (-4) loses to "a" + "b" (-3)
    // and is never produced; "cd" (-1.5) beats "c" + "d" (-2).
    [Fact]
    public void UnreachablePiecesAreNotKept()
    {
        var model = new UnigramTrainer.Model([(Cps("a"), -1.0), (Cps("b"), -2.0), (Cps("ab"), -4.0), (Cps("c"), -1.0), (Cps("d"), -1.0), (Cps("cd"), -1.5)]);
        var trainer = Trainer([("abcd", 1)], 6, 7, PieceRules.LengthOnly(16));
        var final = trainer.Finalize(model, []);
        Assert.Equal(["a", "c", "d", "cd", "b"], final.Select(p => PieceRules.Text(p.Piece)));
    }

    [Fact]
    public void DigammaMatchesKnownValues()
    {
        // ψ(1) = −γ, ψ(1/2) = −γ − 2 ln 2, ψ(10) = H_9 − γ; SentencePiece's series (shift to x ≥ 7, four terms) is good to about 1e-10.
        const double gamma = 0.57721566490153286;
        Assert.Equal(-gamma, UnigramTrainer.Digamma(1), 1e-9);
        Assert.Equal(-gamma - (2 * Math.Log(2)), UnigramTrainer.Digamma(0.5), 1e-9);
        double h9 = Enumerable.Range(1, 9).Sum(k => 1.0 / k);
        Assert.Equal(h9 - gamma, UnigramTrainer.Digamma(10), 1e-9);
    }
}
