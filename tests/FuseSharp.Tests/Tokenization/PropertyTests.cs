using FsCheck;
using FsCheck.Fluent;
using FuseSharp.Tokenization;
using Xunit;

namespace FuseSharp.Tests.Tokenization;

/// <summary>
/// Properties over arbitrary valid Unicode: byte-level BPE round-trips exactly, and every token's offsets slice the
/// original text to the smallest run of whole characters whose UTF-8 contains the token's bytes.
/// </summary>
public class PropertyTests
{
    // Valid Unicode strings: mostly ASCII and common scripts, with any scalar value (astral included, no surrogates).
    private static Arbitrary<string> UnicodeText()
    {
        var common = Gen.Elements(WordScannerTests.Atoms.Concat([" the", "ing", "'s", "\n\n", "    "]).ToArray());
        var scalar = Gen.Choose(0, 0x10FFFF - 0x800).Select(v => v >= 0xD800 ? v + 0x800 : v).Select(char.ConvertFromUtf32);
        var ascii = Gen.Choose(32, 126).Select(c => ((char)c).ToString());
        var part = Gen.Frequency((3, ascii), (3, common), (1, scalar));
        return Gen.ListOf(part).Select(p => string.Concat(p)).ToArbitrary();
    }

    public static TheoryData<string> ByteLevelTokenizers() => new()
    {
        "gpt2-hf/tokenizer.json", "llama3/tokenizer.model", "llamacpp-ggml-vocab/ggml-vocab-gpt-2.gguf", "llamacpp-ggml-vocab/ggml-vocab-deepseek-coder.gguf",
    };

    [Theory]
    [MemberData(nameof(ByteLevelTokenizers))]
    public void DecodeOfEncodeIsIdentity(string path)
    {
        var tok = TokenizerFixtures.Load(path);
        Prop.ForAll(UnicodeText(), s => tok.Decode(tok.Encode(s).Ids) == s).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void SentencePieceWithByteFallbackRoundTrips()
    {
        var tok = TokenizerFixtures.Load("llama2/tokenizer.model");
        Prop.ForAll(UnicodeText(), s => tok.Decode(tok.Encode(s).Ids) == s).QuickCheckThrowOnFailure();
    }

    /// <summary>
    /// Byte-level tokens concatenate to the UTF-8 of the text, so token i stands for a known byte range [p, p + n); its
    /// offsets must be exactly the characters that contain those bytes (whole characters, nothing more).
    /// </summary>
    [Theory]
    [MemberData(nameof(ByteLevelTokenizers))]
    public void OffsetsSliceTheTextTheTokenStandsFor(string path)
    {
        var tok = TokenizerFixtures.Load(path);
        Prop.ForAll(UnicodeText(), s =>
        {
            var e = tok.Encode(s);
            // For every UTF-8 byte of s: the [start, end) UTF-16 range of its character.
            var charOf = new List<(int Start, int End)>();
            for (int i = 0; i < s.Length;)
            {
                int len = char.IsHighSurrogate(s[i]) ? 2 : 1;
                int bytes = System.Text.Encoding.UTF8.GetByteCount(s.AsSpan(i, len));
                for (int k = 0; k < bytes; k++) charOf.Add((i, i + len));
                i += len;
            }
            int p = 0;
            for (int i = 0; i < e.Count; i++)
            {
                int n = TokenBytes(e.Tokens[i]).Length;
                var expected = (charOf[p].Start, charOf[p + n - 1].End);
                Assert.True(expected == e.Offsets[i], $"{FixtureCaseTests.Show(s)}: token {i} {FixtureCaseTests.Show(e.Tokens[i])} has offsets {e.Offsets[i]}, expected {expected}");
                p += n;
            }
            Assert.Equal(charOf.Count, p);
            return true;
        }).QuickCheckThrowOnFailure();
    }

    private static byte[] TokenBytes(string piece)
    {
        var bytes = new List<byte>();
        return ByteLevelAlphabet.TryDecode(piece, bytes) ? [.. bytes] : System.Text.Encoding.UTF8.GetBytes(piece);
    }
}
