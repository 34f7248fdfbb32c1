using FsCheck;
using FsCheck.Fluent;
using FuseSharp.Tokenization;
using FuseSharp.Tokenization.PostProcessors;
using Xunit;

namespace FuseSharp.Tests.Tokenization;

/// <summary>The fused byte-level fast path gives the same ids and offsets as the stage-by-stage pipeline.</summary>
public class FastPathTests
{
    public static TheoryData<string> FastTokenizers() => new()
    {
        "gpt2-hf/tokenizer.json", "gpt-neox-20b/tokenizer.json", "qwen2/vocab.json", "llama3/tokenizer.model",
        "llamacpp-ggml-vocab/ggml-vocab-gpt-2.gguf", "llamacpp-ggml-vocab/ggml-vocab-deepseek-coder.gguf", "llamacpp-ggml-vocab/ggml-vocab-falcon.gguf",
    };

    [Theory]
    [MemberData(nameof(FastTokenizers))]
    public void FastPathEqualsPipeline(string path)
    {
        var tok = Assert.IsType<Tokenizer>(TokenizerFixtures.Load(path));
        Assert.True(tok.HasFastPath);
        foreach (var text in TokenizerFixtures.Cases.Select(c => c.Text).Distinct()) AssertSame(tok, text);
        var gen = Gen.ListOf(Gen.Elements(WordScannerTests.Atoms.Concat(["<|endoftext|>", "<|im_start|>", "<|eot_id|>", "hello", " world", "                "]).ToArray())).Select(p => string.Concat(p));
        Prop.ForAll(gen.ToArbitrary(), text =>
        {
            AssertSame(tok, text);
            return true;
        }).QuickCheckThrowOnFailure();
    }

    private static void AssertSame(Tokenizer tok, string text)
    {
        var fast = tok.Encode(text);
        var general = new EncodingBuilder(tok.IdToToken);
        tok.EncodeGeneral(text, general);
        tok.PostProcessor?.Process(general, false);
        Assert.True(fast.Ids.SequenceEqual(general.Ids), $"{FixtureCaseTests.Show(text)}: ids [{string.Join(",", fast.Ids)}] vs [{string.Join(",", general.Ids)}]");
        Assert.True(fast.Offsets.SequenceEqual(general.Offsets), $"{FixtureCaseTests.Show(text)}: offsets differ");
    }
}
