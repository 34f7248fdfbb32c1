using System.Text.Json;
using FuseSharp.Tokenization;
using FuseSharp.Tokenization.Decoders;
using FuseSharp.Tokenization.Normalizers;
using FuseSharp.Tokenization.PostProcessors;
using FuseSharp.Tokenization.PreTokenizers;
using Xunit;

namespace FuseSharp.Tests.Tokenization;

/// <summary>
/// Normalizers, pre-tokenizers, decoders and post-processors built from their tokenizer.json objects, checked against
/// the examples of Hugging Face tokenizers' own documentation and unit tests.
/// </summary>
public class PipelineComponentTests
{
    private static JsonSection Json(string json) => new(JsonDocument.Parse(json).RootElement, "test.json", "component");

    private static List<(string Piece, (int, int) Offsets)> PreTokenize(string json, string text)
    {
        var pts = new PreTokenizedString(text);
        PreTokenizerFactory.Create(Json(json)).PreTokenize(pts);
        return pts.Pieces.Select(p => (p.Normalized.Normalized, p.Normalized.OriginalOffsets)).ToList();
    }

    private static List<string> Pieces(string json, string text) => PreTokenize(json, text).Select(p => p.Piece).ToList();

    [Fact]
    public void Whitespace() => Assert.Equal(["How", "are", "you", "doing", "?"], Pieces("""{"type":"Whitespace"}""", "How are you doing?"));

    [Fact]
    public void WhitespaceSplit() => Assert.Equal(["Hey", "man!"], Pieces("""{"type":"WhitespaceSplit"}""", "Hey man!"));

    [Fact]
    public void Digits()
    {
        Assert.Equal(["Hey ", "1", "2", "3", " friend!"], Pieces("""{"type":"Digits","individual_digits":true}""", "Hey 123 friend!"));
        Assert.Equal(["Hey ", "123", " friend!"], Pieces("""{"type":"Digits","individual_digits":false}""", "Hey 123 friend!"));
    }

    [Fact]
    public void PunctuationAndBert()
    {
        Assert.Equal(["Hey friend", "!", "     How are you", "?", "!", "?"], Pieces("""{"type":"Punctuation"}""", "Hey friend!     How are you?!?"));
        Assert.Equal(["Hey", "friend", "!", "How", "are", "you", "?", "!", "?"], Pieces("""{"type":"BertPreTokenizer"}""", "Hey friend!     How are you?!?"));
    }

    [Theory]
    [InlineData("removed", new[] { "the", "final", "countdown" })]
    [InlineData("isolated", new[] { "the", "-", "final", "-", "-", "countdown" })]
    [InlineData("merged_with_previous", new[] { "the-", "final-", "-", "countdown" })]
    [InlineData("merged_with_next", new[] { "the", "-final", "-", "-countdown" })]
    [InlineData("contiguous", new[] { "the", "-", "final", "--", "countdown" })]
    public void SplitBehaviours(string behavior, string[] expected) =>
        Assert.Equal(expected, Pieces($$"""{"type":"Split","pattern":{"String":"-"},"behavior":"{{behavior}}","invert":false}""", "the-final--countdown"));

    [Fact]
    public void SplitRegexInverted() =>
        Assert.Equal(["Hey", "friend"], Pieces("""{"type":"Split","pattern":{"Regex":"\\s+"},"behavior":"removed","invert":false}""", "Hey  friend"));

    [Fact]
    public void MetaspaceKeepsOffsets()
    {
        var p = PreTokenize("""{"type":"Metaspace","replacement":"▁","prepend_scheme":"always","split":true}""", "Hey   friend!");
        Assert.Equal([("▁Hey", (0, 3)), ("▁", (3, 4)), ("▁", (4, 5)), ("▁friend!", (5, 13))], p);
    }

    [Fact]
    public void MetaspaceFirstOnlyPrependsAtTheStart()
    {
        // Pieces after an added token do not start the text: no '▁' is prepended there.
        var pts = new PreTokenizedString("Hey <s>how");
        pts.Split(n => n.Split(SplitPattern.Literal("<s>"), SplitBehavior.Isolated));
        PreTokenizerFactory.Create(Json("""{"type":"Metaspace","replacement":"▁","prepend_scheme":"first","split":false}""")).PreTokenize(pts);
        Assert.Equal(["▁Hey▁", "<s>", "how"], pts.Pieces.Select(x => x.Normalized.Normalized));
    }

    [Fact]
    public void ByteLevelWithGpt2Regex() => Assert.Equal(
        ["Hello", "Ġmy", "Ġfriend", ",", "Ġhow", "Ġis", "Ġyour", "Ġday", "Ġgoing", "?"],
        Pieces("""{"type":"ByteLevel","add_prefix_space":false,"use_regex":true}""", "Hello my friend, how is your day going?"));

    [Fact]
    public void ByteLevelPrefixSpaceAndMultibyteOffsets()
    {
        var p = PreTokenize("""{"type":"ByteLevel","add_prefix_space":true,"use_regex":true}""", "é!");
        Assert.Equal([("ĠÃ©", (0, 1)), ("!", (1, 2))], p);
    }

    [Fact]
    public void Normalizers()
    {
        string Norm(string json, string text)
        {
            var n = new NormalizedString(text);
            NormalizerFactory.Create(Json(json)).Normalize(n);
            return n.Normalized;
        }
        Assert.Equal("▁hello", Norm("""{"type":"Sequence","normalizers":[{"type":"Prepend","prepend":"▁"},{"type":"Lowercase"}]}""", "HELLO"));
        Assert.Equal("", Norm("""{"type":"Prepend","prepend":"▁"}""", ""));
        Assert.Equal("a▁b▁▁c", Norm("""{"type":"Replace","pattern":{"String":" "},"content":"▁"}""", "a b  c"));
        Assert.Equal("a_b_c", Norm("""{"type":"Replace","pattern":{"Regex":"\\s+"},"content":"_"}""", "a \t b\nc"));
        Assert.Equal("hi", Norm("""{"type":"Strip","strip_left":true,"strip_right":true}""", " \u3000hi\t"));
        Assert.Equal("cafe", Norm("""{"type":"Sequence","normalizers":[{"type":"NFD"},{"type":"StripAccents"}]}""", "café"));
        Assert.Equal(" 中  文  helloworld", Norm("""{"type":"BertNormalizer","clean_text":true,"handle_chinese_chars":true,"strip_accents":null,"lowercase":true}""", "中文 HÉLLO\u200Bworld"));
        Assert.Equal("a b", Norm("""{"type":"Nmt"}""", "a\u0001\tb"));
    }

    private static string Decode(string json, params string[] tokens) => DecoderFactory.Create(Json(json)).Decode([.. tokens]);

    [Fact]
    public void ByteFallbackDecoder()
    {
        var d = new ByteFallbackDecoder();
        Assert.Equal(["a"], d.DecodeChain(["<0x61>"]));
        Assert.Equal(["\uFFFD"], d.DecodeChain(["<0xE5>"]));
        Assert.Equal(["\uFFFD", "\uFFFD"], d.DecodeChain(["<0xE5>", "<0x8f>"]));
        Assert.Equal(["叫"], d.DecodeChain(["<0xE5>", "<0x8f>", "<0xab>"]));
        Assert.Equal(["叫", "a"], d.DecodeChain(["<0xE5>", "<0x8f>", "<0xab>", "a"]));
        Assert.Equal(["\uFFFD", "\uFFFD", "a"], d.DecodeChain(["<0xE5>", "<0x8f>", "a"]));
    }

    [Fact]
    public void OtherDecoders()
    {
        Assert.Equal("Heyfriend!  ", Decode("""{"type":"Strip","content":" ","start":1,"stop":0}""", "Hey", " friend!", "   "));
        Assert.Equal("##uelo Araújo Noguera", Decode("""{"type":"WordPiece","prefix":"##","cleanup":true}""", "##uelo", "Ara", "##új", "##o", "No", "##guera"));
        Assert.Equal("Hey friend!", Decode("""{"type":"Metaspace","replacement":"▁","prepend_scheme":"always"}""", "▁Hey", "▁friend!"));
        Assert.Equal(" Hey friend!", Decode("""{"type":"Metaspace","replacement":"▁","prepend_scheme":"never"}""", "▁Hey", "▁friend!"));
        Assert.Equal("hello", Decode("""{"type":"CTC","pad_token":"<pad>","word_delimiter_token":"|","cleanup":true}""", "<pad>", "<pad>", "h", "e", "e", "l", "l", "<pad>", "l", "o", "o", "o", "<pad>"));
        Assert.Equal("My name", Decode("""{"type":"BPEDecoder","suffix":"</w>"}""", "My</w>", "na", "me</w>"));
        Assert.Equal(" Hey friend!", Decode("""{"type":"Sequence","decoders":[{"type":"Replace","pattern":{"String":"▁"},"content":" "},{"type":"Fuse"}]}""", "▁Hey", "▁friend!"));
        Assert.Equal("Hello world😀", Decode("""{"type":"ByteLevel"}""", "Hello", "Ġworld", "ðŁĺ", "Ģ"));
        Assert.Equal("\uFFFD", Decode("""{"type":"ByteLevel"}""", "ðŁĺ"));
    }

    private static EncodingBuilder Builder(params (int Id, int S, int E)[] tokens)
    {
        var b = new EncodingBuilder(id => id switch { 5 => "Ġhello", 6 => "Ġ", _ => "x" });
        foreach (var (id, s, e) in tokens) b.Add(id, (s, e), false);
        return b;
    }

    [Fact]
    public void TemplateAndBertProcessing()
    {
        var t = PostProcessorFactory.Create(Json("""
            {"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"[CLS]","type_id":0}},{"Sequence":{"id":"A","type_id":0}},{"SpecialToken":{"id":"[SEP]","type_id":0}}],
             "pair":[],"special_tokens":{"[CLS]":{"id":"[CLS]","ids":[101],"tokens":["[CLS]"]},"[SEP]":{"id":"[SEP]","ids":[102],"tokens":["[SEP]"]}}}
            """));
        var b = Builder((7, 0, 2), (8, 3, 5));
        t.Process(b, addSpecialTokens: true);
        Assert.Equal([101, 7, 8, 102], b.Ids);
        Assert.Equal([(0, 0), (0, 2), (3, 5), (0, 0)], b.Offsets);
        var plain = Builder((7, 0, 2));
        t.Process(plain, addSpecialTokens: false);
        Assert.Equal([7], plain.Ids);
        var bert = PostProcessorFactory.Create(Json("""{"type":"BertProcessing","sep":["[SEP]",102],"cls":["[CLS]",101]}"""));
        var bb = Builder((7, 0, 2));
        bert.Process(bb, true);
        Assert.Equal([101, 7, 102], bb.Ids);
    }

    [Fact]
    public void RobertaTrimsOffsetsAndWraps()
    {
        var r = PostProcessorFactory.Create(Json("""{"type":"RobertaProcessing","sep":["</s>",2],"cls":["<s>",0],"trim_offsets":true,"add_prefix_space":false}"""));
        var b = Builder((5, 0, 6), (6, 6, 7));
        r.Process(b, true);
        Assert.Equal([0, 5, 6, 2], b.Ids);
        Assert.Equal([(0, 0), (1, 6), (7, 7), (0, 0)], b.Offsets);
    }

    [Fact]
    public void UnknownComponentTypesAreNamed()
    {
        Assert.Contains("'Foo'", Assert.Throws<TokenizerException>(() => NormalizerFactory.Create(Json("""{"type":"Foo"}"""))).Message, StringComparison.Ordinal);
        Assert.Contains("'Bar'", Assert.Throws<TokenizerException>(() => PreTokenizerFactory.Create(Json("""{"type":"Bar"}"""))).Message, StringComparison.Ordinal);
        Assert.Contains("'Baz'", Assert.Throws<TokenizerException>(() => DecoderFactory.Create(Json("""{"type":"Baz"}"""))).Message, StringComparison.Ordinal);
        Assert.Contains("'Qux'", Assert.Throws<TokenizerException>(() => PostProcessorFactory.Create(Json("""{"type":"Qux"}"""))).Message, StringComparison.Ordinal);
        Assert.Contains("test.json: component", Assert.Throws<TokenizerException>(() => NormalizerFactory.Create(Json("""{"type":"Foo"}"""))).Message, StringComparison.Ordinal);
    }
}
