using FuseSharp.Tokenization;
using FuseSharp.Tokenization.SentencePiece;
using Xunit;

namespace FuseSharp.Tests.Tokenization;

/// <summary>Format detection, tokenizer_config.json handling, special tokens, vocabularies and whitespace markers.</summary>
public class LoaderTests
{
    [Theory]
    [InlineData("gpt2-hf", typeof(Tokenizer), "Ġ", 50257)]
    [InlineData("qwen2", typeof(Tokenizer), "Ġ", 151646)]
    [InlineData("llama2", typeof(SentencePieceTokenizer), "▁", 32000)]
    [InlineData("llama3", typeof(Tokenizer), "Ġ", 128256)]
    [InlineData("mistral-7b-instruct-v0.2", typeof(Tokenizer), "▁", 32000)]
    [InlineData("mistral-7b-instruct-v0.3", typeof(Tokenizer), "▁", 32768)]
    [InlineData("gpt-neox-20b", typeof(Tokenizer), "Ġ", 50281)]
    [InlineData("sentencepiece-test/test_model.model", typeof(SentencePieceTokenizer), "▁", 1000)]
    [InlineData("llamacpp-ggml-vocab/ggml-vocab-llama-spm.gguf", typeof(SentencePieceTokenizer), "▁", 32000)]
    [InlineData("llamacpp-ggml-vocab/ggml-vocab-mpt.gguf", typeof(Tokenizer), "Ġ", 50432)]
    public void DetectsTheFormat(string path, Type type, string marker, int vocabSize)
    {
        var tok = TokenizerFixtures.LoadConfigured(path);
        Assert.IsType(type, tok);
        Assert.Equal(marker, tok.WhitespaceMarker);
        Assert.Equal(vocabSize, tok.VocabSize);
        Assert.Equal(vocabSize, tok.GetVocab().Count);
        foreach (var (piece, id) in tok.GetVocab().Take(2000))
        {
            Assert.Equal(piece, tok.IdToToken(id));
            Assert.Equal(id, tok.TokenToId(piece));
        }
        Assert.Null(tok.IdToToken(-1));
        Assert.Null(tok.TokenToId("\u0001no such piece\u0002"));
    }

    [Fact]
    public void SpecialTokensComeFromTheConfig()
    {
        var mistral = TokenizerFixtures.LoadConfigured("mistral-7b-instruct-v0.2");
        Assert.Equal((1, 2, 0), (mistral.BosTokenId!.Value, mistral.EosTokenId!.Value, mistral.UnkTokenId!.Value));
        Assert.Null(mistral.PadTokenId);
        var qwen = TokenizerFixtures.LoadConfigured("qwen2");
        Assert.Equal((null, 151645, 151643), (qwen.BosTokenId, qwen.EosTokenId, qwen.PadTokenId));
        var phi3 = TokenizerLoader.Load(TokenizerFixtures.PathOf("phi-3-mini"));
        Assert.Equal(32000, phi3.EosTokenId);
        var llama3 = TokenizerFixtures.LoadConfigured("llama3");
        Assert.Equal((128000, 128001), (llama3.BosTokenId!.Value, llama3.EosTokenId!.Value));
        var gguf = TokenizerFixtures.LoadConfigured("llamacpp-ggml-vocab/ggml-vocab-phi-3.gguf");
        Assert.Equal((1, 32000, 0, 32000), (gguf.BosTokenId!.Value, gguf.EosTokenId!.Value, gguf.UnkTokenId!.Value, gguf.PadTokenId!.Value));
    }

    [Fact]
    public void AddBosAndEosFollowTheConfig()
    {
        using var dir = TestPaths.NewTempDir();
        File.Copy(TokenizerFixtures.PathOf("mistral-7b-instruct-v0.2/tokenizer.json"), dir.File("tokenizer.json"));
        File.WriteAllText(dir.File("tokenizer_config.json"), """{"tokenizer_class": "LlamaTokenizer", "bos_token": "<s>", "eos_token": "</s>", "add_bos_token": false, "add_eos_token": true}""");
        var tok = TokenizerLoader.Load(dir.Path);
        Assert.Equal([22557, 2], tok.Encode("Hello", addSpecialTokens: true).Ids);
        Assert.Equal([22557], tok.Encode("Hello").Ids);
        // Without the config the file's own template applies (BOS only).
        var raw = TokenizerLoader.Load(dir.File("tokenizer.json"), new TokenizerLoadOptions { ApplyTokenizerConfig = false });
        Assert.Equal([1, 22557], raw.Encode("Hello", addSpecialTokens: true).Ids);
        // A .model with the same config: SentencePiece with EOS appended.
        File.Copy(TokenizerFixtures.PathOf("llama2/tokenizer.model"), dir.File("tokenizer.model"));
        var spm = TokenizerLoader.Load(dir.File("tokenizer.model"));
        Assert.Equal([15043, 2], spm.Encode("Hello", addSpecialTokens: true).Ids);
    }

    [Fact]
    public void BatchEncodingEqualsEncoding()
    {
        var tok = TokenizerFixtures.Load("llama2/tokenizer.model");
        var texts = TokenizerFixtures.Cases.Select(c => c.Text).Distinct().ToList();
        var batch = tok.EncodeBatch(texts, addSpecialTokens: true);
        for (int i = 0; i < texts.Count; i++) Assert.Equal(tok.Encode(texts[i], true).Ids, batch[i].Ids);
    }

    [Fact]
    public void DecodeSkipsSpecialTokens()
    {
        var tok = TokenizerFixtures.Load("mistral-7b-instruct-v0.2/tokenizer.json");
        var ids = tok.Encode("<s>Hello</s>", addSpecialTokens: true).Ids;
        Assert.Equal("<s><s> Hello</s>", tok.Decode(ids));
        Assert.Equal("Hello", tok.Decode(ids, skipSpecialTokens: true));
        var spm = TokenizerFixtures.Load("llama2/tokenizer.model");
        Assert.Equal("Hello", spm.Decode([1, 15043, 2, 0], skipSpecialTokens: true));
        Assert.Equal("Hello ⁇ ", spm.Decode([1, 15043, 2, 0]));
    }
}
