using System.Text.Json.Nodes;
using FuseSharp.Tokenization;
using FuseSharp.Tokenization.Normalizers;
using FuseSharp.Tokenization.SentencePiece;
using Xunit;

namespace FuseSharp.Tests.Tokenization;

/// <summary>
/// A tokenizer.json built the way transformers converts a SentencePiece unigram model (Precompiled normalizer,
/// Metaspace, Unigram) agrees with the C++ semantics of the .model on plain sentences (the two are known to differ on
/// newlines, tabs and some equal-score ties, see the fixture README).
/// </summary>
public class UnigramPipelineTests
{
    [Fact]
    public void ConvertedUnigramAgreesWithSentencePieceOnPlainText()
    {
        var path = TokenizerFixtures.PathOf("sentencepiece-test/test_model.model");
        var proto = SentencePieceModelProto.Parse(File.ReadAllBytes(path), path);
        var vocab = new JsonArray(proto.Pieces.Select(p => (JsonNode)new JsonArray(p.Piece, p.Score)).ToArray());
        var json = new JsonObject
        {
            ["normalizer"] = new JsonObject { ["type"] = "Precompiled", ["precompiled_charsmap"] = Convert.ToBase64String(proto.Normalizer.PrecompiledCharsMap) },
            ["pre_tokenizer"] = new JsonObject { ["type"] = "Metaspace", ["replacement"] = "▁", ["prepend_scheme"] = "always", ["split"] = true },
            ["model"] = new JsonObject { ["type"] = "Unigram", ["unk_id"] = proto.Pieces.FindIndex(p => p.Type == PieceType.Unknown), ["vocab"] = vocab },
            ["decoder"] = new JsonObject { ["type"] = "Metaspace", ["replacement"] = "▁", ["prepend_scheme"] = "always" },
        };
        using var dir = TestPaths.NewTempDir();
        File.WriteAllText(dir.File("tokenizer.json"), json.ToJsonString());
        var hf = TokenizerLoader.Load(dir.File("tokenizer.json"));
        var spm = TokenizerFixtures.Load("sentencepiece-test/test_model.model");
        foreach (var text in new[] { "Hello world", "I saw a girl with a telescope.", "The quick brown fox jumps over the lazy dog.", "ＦＵＬＬ ﬁne ①" })
        {
            Assert.Equal(spm.Encode(text).Ids, hf.Encode(text).Ids);
            Assert.Equal(spm.Decode(spm.Encode(text).Ids), hf.Decode(hf.Encode(text).Ids));
        }
    }

    [Fact]
    public void PrecompiledRulesNormalizeCompatibilityCharacters()
    {
        var proto = SentencePieceModelProto.Parse(File.ReadAllBytes(TokenizerFixtures.PathOf("sentencepiece-test/test_model.model")), "test_model");
        var n = new NormalizedString("ＡＢＣ①ﬁ");
        new PrecompiledNormalizer(new PrecompiledCharsMap(proto.Normalizer.PrecompiledCharsMap)).Normalize(n);
        Assert.Equal("ABC1fi", n.Normalized);
        Assert.Equal((4, 5), n.ToOriginal(4, 6));
    }
}
