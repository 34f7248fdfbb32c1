
using FuseSharp.Tokenization;
using FuseSharp.Tokenization.Gguf;
using Xunit;

namespace FuseSharp.Tests.Tokenization;

/// <summary>Tokenizers from small GGUF headers written here (bert vocabularies, errors); the real files are covered by LlamaCppVectorTests.</summary>
public class GgufTokenizerTests
{
    // A vocab-only GGUF v3 with the given metadata (strings, string arrays, int arrays, u32 and bools).
    private static byte[] Gguf(params (string Key, object Value)[] kv)
    {
        var b = new List<byte>();
        void U32(uint v) => b.AddRange(BitConverter.GetBytes(v));
        void U64(ulong v) => b.AddRange(BitConverter.GetBytes(v));
        void Str(string s)
        {
            var bytes = System.Text.Encoding.UTF8.GetBytes(s);
            U64((ulong)bytes.Length);
            b.AddRange(bytes);
        }
        b.AddRange("GGUF"u8.ToArray());
        U32(3);
        U64(0);
        U64((ulong)kv.Length);
        foreach (var (key, value) in kv)
        {
            Str(key);
            switch (value)
            {
                case string s: U32(8); Str(s); break;
                case bool v: U32(7); b.Add(v ? (byte)1 : (byte)0); break;
                case uint v: U32(4); U32(v); break;
                case string[] arr: U32(9); U32(8); U64((ulong)arr.Length); foreach (var s in arr) Str(s); break;
                case int[] arr: U32(9); U32(5); U64((ulong)arr.Length); foreach (var v in arr) U32((uint)v); break;
                default: throw new ArgumentException(value.GetType().Name);
            }
        }
        return [.. b];
    }

    private static ITokenizer Load(byte[] file)
    {
        using var dir = TestPaths.NewTempDir();
        File.WriteAllBytes(dir.File("v.gguf"), file);
        return TokenizerLoader.Load(dir.File("v.gguf"));
    }

    [Fact]
    public void BertVocabularyAsLlamaCppRunsIt()
    {
        // GGUF conversion writes word-initial BERT entries with '▁' (punctuation too) and drops the "##" of the others.
        string[] tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "▁hello", "▁world", "▁,", "▁!", "▁wor", "ld", "▁", "▁café"];
        var tok = Load(Gguf(("tokenizer.ggml.model", "bert"), ("tokenizer.ggml.tokens", tokens), ("tokenizer.ggml.token_type", new[] { 3, 2, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1 }),
            ("tokenizer.ggml.unknown_token_id", 1u), ("tokenizer.ggml.cls_token_id", 2u), ("tokenizer.ggml.seperator_token_id", 3u), ("tokenizer.ggml.padding_token_id", 0u)));
        Assert.IsType<LlamaCppWordPieceTokenizer>(tok);
        var e = tok.Encode("Hello, WORLD! xyz", addSpecialTokens: true);
        Assert.Equal([2, 4, 6, 5, 7, 1, 3], e.Ids);
        Assert.Equal([(0, 0), (0, 5), (5, 6), (7, 12), (12, 13), (14, 17), (0, 0)], e.Offsets);
        Assert.Equal("hello , world ! ", tok.Decode([4, 6, 5, 7, 10]));
        // NFD keeps the combining mark: "café" decomposes and no longer matches the precomposed entry.
        Assert.Equal([1], tok.Encode("café").Ids);
    }

    [Fact]
    public void UnknownPreTokenizerAndModelAreNamed()
    {
        var e = Assert.Throws<TokenizerException>(() => Load(Gguf(("tokenizer.ggml.model", "gpt2"), ("tokenizer.ggml.pre", "mystery"),
            ("tokenizer.ggml.tokens", new[] { "a" }), ("tokenizer.ggml.merges", Array.Empty<string>()))));
        Assert.Contains("tokenizer.ggml.pre = 'mystery'", e.Message, StringComparison.Ordinal);
        Assert.Contains("llama-bpe", e.Hint, StringComparison.Ordinal);
        Assert.Contains("'t5' is not supported", Assert.Throws<TokenizerException>(() => Load(Gguf(("tokenizer.ggml.model", "t5"), ("tokenizer.ggml.tokens", new[] { "a" })))).Message, StringComparison.Ordinal);
        Assert.Contains("tokenizer.ggml.model is missing", Assert.Throws<TokenizerException>(() => Load(Gguf(("general.name", "x")))).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void KnownPreTokenizerFamiliesCompile()
    {
        foreach (var name in GgufPreTokenizers.Names)
            foreach (var regex in GgufPreTokenizers.Get(name, "test").Regexes)
                Assert.NotNull(FuseSharp.Tokenization.PreTokenizers.FastSplitPatterns.ForRegex(regex));
    }
}
