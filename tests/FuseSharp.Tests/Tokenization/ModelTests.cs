using FsCheck;
using FsCheck.Fluent;
using FuseSharp.Tokenization;
using FuseSharp.Tokenization.Models;
using FuseSharp.Tokenization.SentencePiece;
using Xunit;

namespace FuseSharp.Tests.Tokenization;

/// <summary>The models on small vocabularies (golden values from Hugging Face's own unit tests) and their fast paths against their reference algorithms.</summary>
public class ModelTests
{
    private static List<(int Id, int Start, int End)> Run(ITokenizerModel m, string word)
    {
        var output = new List<ModelToken>();
        m.Tokenize(word, output);
        return output.Select(t => (t.Id, t.Start, t.End)).ToList();
    }

    private static List<string> Pieces(ITokenizerModel m, string word) => Run(m, word).Select(t => m.IdToToken(t.Id)!).ToList();

    [Fact]
    public void UnigramEncodesAsHuggingFace()
    {
        var model = new UnigramModel([("<unk>", 0.0), ("ab", 0.0), ("cd", -0.1), ("abc", -0.2), ("a", -0.3), ("b", -0.4), ("c", -0.5), ("ABC", -0.5), ("abcdabcd", 20.0), ("q", 20.5), ("r", 20.5), ("qr", -0.5)], 0, false);
        Assert.Equal(["abc"], Pieces(model, "abc"));
        Assert.Equal(["<unk>"], Pieces(model, "AB"));
        Assert.Equal([(0, 0, 2)], Run(model, "AB"));   // unknown characters fuse into one token
        Assert.Equal(["ab", "cd"], Pieces(model, "abcd"));
        Assert.Equal(["abc", "c"], Pieces(model, "abcc"));
        Assert.Equal(["<unk>", "abc", "ab", "a", "ab", "cd", "<unk>"], Pieces(model, "xabcabaabcdd"));
        Assert.Equal([(0, 0, 5)], Run(model, "xyz東京"));
        Assert.Equal(["ab", "ABC", "cd"], Pieces(model, "abABCcd"));
        Assert.Equal(["ab", "abcdabcd", "cd"], Pieces(model, "ababcdabcdcd"));
        Assert.Equal(["ab", "q", "r", "cd"], Pieces(model, "abqrcd"));
    }

    [Fact]
    public void UnigramByteFallback()
    {
        var model = new UnigramModel([("<unk>", 0.0), ("<0xE2>", -0.01), ("<0x85>", -0.02), ("<0xE2>", -0.03), ("<0x90>", -0.04), ("<0x91>", -0.05), ("<0x9B>", -0.06), ("Hello", -0.1), ("how", -0.2), ("are", -0.3), (" ", -0.4)], 0, true);
        Assert.Equal([(7, 0, 5), (3, 5, 6), (2, 5, 6), (4, 5, 6), (8, 6, 9), (10, 9, 10), (9, 10, 13), (3, 13, 15), (2, 13, 15), (5, 13, 15), (3, 13, 15), (2, 13, 15), (5, 13, 15)],
            Run(model, "Hello⅐how are⅑⅑"));
        // One byte without a piece: the whole fused unknown stays <unk>.
        Assert.Equal([(10, 0, 1), (0, 1, 9)], Run(model, " unknown‰"));
    }

    [Fact]
    public void WordPieceAndWordLevel()
    {
        var wp = new WordPieceModel(new Dictionary<string, int> { ["[UNK]"] = 0, ["un"] = 1, ["##aff"] = 2, ["##able"] = 3, ["a"] = 4 }, "[UNK]", "##", 100);
        Assert.Equal(["un", "##aff", "##able"], Pieces(wp, "unaffable"));
        Assert.Equal([(0, 0, 8)], Run(wp, "unknownx"));
        var wl = new WordLevelModel(new Dictionary<string, int> { ["<unk>"] = 0, ["hello"] = 1 }, "<unk>");
        Assert.Equal([(1, 0, 5)], Run(wl, "hello"));
        Assert.Equal([(0, 0, 3)], Run(wl, "bye"));
    }

    [Fact]
    public void BpeOptions()
    {
        var vocab = new Dictionary<string, int> { ["a"] = 0, ["##b"] = 1, ["##c"] = 2, ["ab"] = 3, ["abc"] = 4 };
        var prefixed = new BpeModel(vocab, [("a", "##b"), ("ab", "##c")], new BpeOptions { ContinuingSubwordPrefix = "##" });
        Assert.Equal(["abc"], Pieces(prefixed, "abc"));

        var bytes = new Dictionary<string, int> { ["<unk>"] = 0, ["a"] = 1, ["<0xC3>"] = 2, ["<0xA9>"] = 3 };
        var fallback = new BpeModel(bytes, [], new BpeOptions { UnkToken = "<unk>", ByteFallback = true });
        Assert.Equal([(1, 0, 1), (2, 1, 2), (3, 1, 2), (0, 2, 3)], Run(fallback, "aéb"));

        var fused = new BpeModel(new Dictionary<string, int> { ["<unk>"] = 0, ["a"] = 1 }, [], new BpeOptions { UnkToken = "<unk>", FuseUnk = true });
        Assert.Equal([(0, 0, 2), (1, 2, 3), (0, 3, 4)], Run(fused, "xya😀"[..4]));
        var unfused = new BpeModel(new Dictionary<string, int> { ["<unk>"] = 0, ["a"] = 1 }, [], new BpeOptions { UnkToken = "<unk>" });
        Assert.Equal([(0, 0, 1), (0, 1, 2), (1, 2, 3)], Run(unfused, "xya"));

        // ignore_merges: a word that is a token is taken whole even if the merges would not build it.
        var v = new Dictionary<string, int> { ["a"] = 0, ["b"] = 1, ["ab"] = 2, ["abb"] = 3, ["bb"] = 4 };
        var merges = new List<(string, string)> { ("b", "b"), ("a", "b") };
        Assert.Equal(["a", "bb"], Pieces(new BpeModel(v, merges, new BpeOptions()), "abb"));
        Assert.Equal(["abb"], Pieces(new BpeModel(v, merges, new BpeOptions { IgnoreMerges = true }), "abb"));
    }

    [Fact]
    public void BadMergesAreReported()
    {
        var e = Assert.Throws<TokenizerException>(() => new BpeModel(new Dictionary<string, int> { ["a"] = 0 }, [("a", "z")], new BpeOptions(), k => $"merges.txt: line {k + 2}"));
        Assert.Contains("merges.txt: line 2", e.Message, StringComparison.Ordinal);
        Assert.Contains("'z'", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void BpeLinearMergeEqualsPriorityQueue()
    {
        var gpt2 = (BpeModel)((Tokenizer)TokenizerFixtures.Load("gpt2-hf/tokenizer.json")).Model;
        var alphabet = "aeinorstlhdcumpgbfwyvkĠĊ.,0123456789é".Select(c => c.ToString()).Append("Ã").ToArray();
        var gen = Gen.ListOf(Gen.Elements(alphabet)).Select(p => string.Concat(p)).Where(s => s.Length > 0);
        Prop.ForAll(gen.ToArbitrary(), word =>
        {
            Assert.Equal(gpt2.MergeWord(word, int.MaxValue), gpt2.MergeWord(word, 0));
            return true;
        }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void SentencePieceLinearMergeEqualsAgenda()
    {
        var proto = SentencePieceModelProto.Parse(File.ReadAllBytes(TokenizerFixtures.PathOf("llama2/tokenizer.model")), "llama2");
        var vocab = new SentencePieceVocabulary(proto.Pieces, proto.ByteFallback, "llama2");
        var fast = new SentencePieceBpe(vocab, '\u2581', true, 48);
        var reference = new SentencePieceBpe(vocab, '\u2581', true, 0);
        var alphabet = "▁▁▁aeinorstlhdcumpgbfwyvk.,'0123456789éü中".Select(c => c.ToString()).ToArray();
        var gen = Gen.ListOf(Gen.Elements(alphabet)).Select(p => string.Concat(p));
        Prop.ForAll(gen.ToArbitrary(), text =>
        {
            Assert.Equal(reference.Encode(text), fast.Encode(text));
            return true;
        }).QuickCheckThrowOnFailure();
    }
}
