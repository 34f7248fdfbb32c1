using System.Text.Json;
using FuseSharp.Tokenization;
using FuseSharp.Tokenization.Training;
using Xunit;

namespace FuseSharp.Tests.Tokenization.Training;

/// <summary>The files the trainer writes: Hugging Face's byte layout, its section shapes, and loading them back.</summary>
public class TokenizerFileTests
{
    // Files saved by Hugging Face tokenizers (serde_json pretty) and transformers (json.dumps indent=2): parsing and
    // writing them again must give the same bytes.
    [Theory]
    [InlineData("gpt2-hf/tokenizer.json")]
    [InlineData("mistral-7b-instruct-v0.2/tokenizer.json")]
    [InlineData("gpt2-hf/tokenizer_config.json")]
    public void WriterReproducesHuggingFaceFilesByteForByte(string fixture)
    {
        var text = File.ReadAllText(TokenizerFixtures.PathOf(fixture));
        var node = System.Text.Json.Nodes.JsonNode.Parse(text);
        var written = HfJsonWriter.Write(node);
        Assert.Equal(text.TrimEnd('\n'), written);
    }

    [Theory]
    [InlineData(-3.258096538021482, "-3.258096538021482")]
    [InlineData(0.0, "0.0")]
    [InlineData(-10.0, "-10.0")]
    [InlineData(-1.5e-7, "-1.5e-7")]
    [InlineData(2.5e20, "2.5e20")]
    [InlineData(-0.5, "-0.5")]
    public void FloatsAreWrittenAsRyuDoes(double value, string expected) => Assert.Equal(expected, HfJsonWriter.Float(value));

    [Fact]
    public void ByteLevelSectionsAreThoseOfGpt2()
    {
        var trained = TrainingSanityTests.Trained(TokenizerKind.ByteLevelBpe);
        using var ours = JsonDocument.Parse(trained.ToTokenizerJson());
        using var gpt2 = JsonDocument.Parse(File.ReadAllText(TokenizerFixtures.PathOf("gpt2-hf/tokenizer.json")));
        Assert.Equal(gpt2.RootElement.EnumerateObject().Select(p => p.Name), ours.RootElement.EnumerateObject().Select(p => p.Name));
        foreach (var section in new[] { "normalizer", "pre_tokenizer", "post_processor", "decoder" })
            Assert.Equal(gpt2.RootElement.GetProperty(section).GetRawText(), ours.RootElement.GetProperty(section).GetRawText());
        var added = ours.RootElement.GetProperty("added_tokens")[0];
        Assert.Equal(gpt2.RootElement.GetProperty("added_tokens")[0].EnumerateObject().Select(p => p.Name), added.EnumerateObject().Select(p => p.Name));
        var model = ours.RootElement.GetProperty("model");
        Assert.Equal(gpt2.RootElement.GetProperty("model").EnumerateObject().Select(p => p.Name), model.EnumerateObject().Select(p => p.Name));
        Assert.Equal(JsonValueKind.Array, model.GetProperty("merges")[0].ValueKind); // pairs, as tokenizers >= 0.20 writes
    }

    [Fact]
    public void SentencePieceBpeWithByteFallbackHasLlamasModelAndDecoder()
    {
        var trained = TrainingSanityTests.Trained(TokenizerKind.SentencePieceBpe, byteFallback: true);
        using var ours = JsonDocument.Parse(trained.ToTokenizerJson());
        using var mistral = JsonDocument.Parse(File.ReadAllText(TokenizerFixtures.PathOf("mistral-7b-instruct-v0.2/tokenizer.json")));
        Assert.Equal(mistral.RootElement.GetProperty("decoder").GetRawText(), ours.RootElement.GetProperty("decoder").GetRawText());
        var model = ours.RootElement.GetProperty("model");
        var reference = mistral.RootElement.GetProperty("model");
        foreach (var field in new[] { "type", "unk_token", "fuse_unk", "byte_fallback", "continuing_subword_prefix", "end_of_word_suffix" })
            Assert.Equal(reference.GetProperty(field).GetRawText(), model.GetProperty(field).GetRawText());
        var ids = model.GetProperty("vocab").EnumerateObject().Take(3 + 256).Select(p => (p.Name, p.Value.GetInt32()));
        Assert.Equal(reference.GetProperty("vocab").EnumerateObject().Take(3 + 256).Select(p => (p.Name, p.Value.GetInt32())), ids);
        Assert.Equal("""{"type":"Metaspace","replacement":"▁","prepend_scheme":"always","split":true}""",
            System.Text.Json.Nodes.JsonNode.Parse(ours.RootElement.GetProperty("pre_tokenizer").GetRawText())!.ToJsonString(new JsonSerializerOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }));
    }

    [Fact]
    public void UnigramModelSection()
    {
        var trained = TrainingSanityTests.Trained(TokenizerKind.Unigram);
        using var doc = JsonDocument.Parse(trained.ToTokenizerJson());
        var model = doc.RootElement.GetProperty("model");
        Assert.Equal(["type", "unk_id", "vocab", "byte_fallback"], model.EnumerateObject().Select(p => p.Name));
        Assert.Equal("Unigram", model.GetProperty("type").GetString());
        Assert.Equal(0, model.GetProperty("unk_id").GetInt32());
        var vocab = model.GetProperty("vocab").EnumerateArray().ToList();
        Assert.Equal(["<unk>", "<s>", "</s>"], vocab.Take(3).Select(v => v[0].GetString()));
        Assert.All(vocab.Take(3), v => Assert.Equal(0.0, v[1].GetDouble()));
        var scores = vocab.Skip(3).Select(v => v[1].GetDouble()).ToList();
        Assert.All(scores, s => Assert.True(s < 0));
        Assert.Equal(scores.OrderByDescending(s => s), scores); // pieces by score
    }

    [Fact]
    public void ConfigNamesTheSpecialTokensAndLoads()
    {
        var trained = TrainingSanityTests.Trained(TokenizerKind.SentencePieceBpe);
        using var dir = TestPaths.NewTempDir();
        var folder = Path.Combine(dir.Path, "tok");
        trained.Save(folder);
        using var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "tokenizer_config.json")));
        var root = config.RootElement;
        Assert.Equal(root.EnumerateObject().Select(p => p.Name).Order(StringComparer.Ordinal), root.EnumerateObject().Select(p => p.Name));
        Assert.Equal("<s>", root.GetProperty("bos_token").GetString());
        Assert.Equal("</s>", root.GetProperty("eos_token").GetString());
        Assert.Equal("<unk>", root.GetProperty("unk_token").GetString());
        Assert.Equal("PreTrainedTokenizerFast", root.GetProperty("tokenizer_class").GetString());
        Assert.Equal("<s>", root.GetProperty("added_tokens_decoder").GetProperty("1").GetProperty("content").GetString());
        var tok = TokenizerLoader.Load(folder);
        Assert.Equal(1, tok.BosTokenId);
        Assert.Equal(2, tok.EosTokenId);
        Assert.Equal(0, tok.UnkTokenId);
        Assert.Equal(trained.Vocabulary.Count, tok.VocabSize);
        Assert.Equal("\u2581", tok.WhitespaceMarker);
    }

    [Fact]
    public void SaveRefusesToReplaceTokenizerFilesUnlessAsked()
    {
        var trained = TrainingSanityTests.Trained(TokenizerKind.ByteLevelBpe);
        using var dir = TestPaths.NewTempDir();
        File.WriteAllText(dir.File("config.json"), "{}");
        trained.Save(dir.Path); // an existing model folder: the two files are added
        Assert.True(File.Exists(dir.File("tokenizer.json")));
        var e = Assert.Throws<TokenizerTrainingException>(() => trained.Save(dir.Path));
        Assert.Contains("already exists", e.Message, StringComparison.Ordinal);
        trained.Save(dir.Path, overwrite: true);
        Assert.True(File.Exists(dir.File("config.json")));
        Assert.Empty(Directory.GetFiles(dir.Path, "*.tmp-*"));
    }
}
