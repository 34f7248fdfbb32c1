using System.Text;
using FuseSharp.Tokenization;
using FuseSharp.Tokenization.Gguf;
using Xunit;

namespace FuseSharp.Tests.Tokenization;

/// <summary>
/// llama.cpp's test-tokenizer-0 vectors (.inp/.out, add_special_tokens = false), with the tokenizer loaded from the
/// matching vocab-only GGUF file and from the Hugging Face files of the same family.
/// </summary>
public class LlamaCppVectorTests
{
    /// <summary>Inputs split exactly like test-tokenizer-0.cpp (a trailing separator makes no extra input) with their expected ids.</summary>
    public static List<(string Text, int[] Ids)> ReadVectors(string name)
    {
        var dir = TokenizerFixtures.PathOf("llamacpp-ggml-vocab");
        var raw = File.ReadAllText(Path.Combine(dir, name + ".inp"), new UTF8Encoding(false));
        var outs = File.ReadAllText(Path.Combine(dir, name + ".out")).Split('\n');
        if (outs.Length > 0 && outs[^1].Length == 0) outs = outs[..^1];
        const string sep = "\n__ggml_vocab_test__\n";
        var inputs = new List<string>();
        for (int pos = 0; pos < raw.Length;)
        {
            int next = raw.IndexOf(sep, pos, StringComparison.Ordinal);
            if (next < 0)
            {
                inputs.Add(raw[pos..]);
                break;
            }
            inputs.Add(raw[pos..next]);
            pos = next + sep.Length;
        }
        Assert.Equal(inputs.Count, outs.Length);
        return inputs.Select((s, i) => (s, outs[i].Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse).ToArray())).ToList();
    }

    [Theory]
    [InlineData("ggml-vocab-gpt-2.gguf")]
    [InlineData("ggml-vocab-llama-spm.gguf")]
    [InlineData("ggml-vocab-mpt.gguf")]
    [InlineData("ggml-vocab-phi-3.gguf")]
    public void VectorsPassFromGguf(string file)
    {
        var tokenizer = TokenizerFixtures.Load(Path.Combine("llamacpp-ggml-vocab", file));
        Check(tokenizer, ReadVectors(file), file);
    }

    [Theory]
    [InlineData("ggml-vocab-gpt-2.gguf", "gpt2-hf/tokenizer.json")]
    [InlineData("ggml-vocab-llama-spm.gguf", "llama2/tokenizer.model")]
    [InlineData("ggml-vocab-mpt.gguf", "gpt-neox-20b/tokenizer.json")]
    [InlineData("ggml-vocab-phi-3.gguf", "phi-3-mini/tokenizer.json")]
    public void VectorsPassFromHuggingFaceFiles(string vectors, string tokenizerPath) =>
        Check(TokenizerFixtures.Load(tokenizerPath), ReadVectors(vectors), tokenizerPath);

    private static void Check(ITokenizer tokenizer, List<(string Text, int[] Ids)> vectors, string what)
    {
        var failures = new StringBuilder();
        foreach (var (text, ids) in vectors)
        {
            var got = tokenizer.Encode(text).Ids;
            if (!got.SequenceEqual(ids)) failures.AppendLine($"{FixtureCaseTests.Show(text)}: [{string.Join(" ", got)}] expected [{string.Join(" ", ids)}]");
        }
        Assert.True(vectors.Count >= 40);
        Assert.True(failures.Length == 0, $"{what}:\n{failures}");
    }

    [Theory]
    [InlineData("ggml-vocab-deepseek-coder.gguf", "deepseek-coder")]
    [InlineData("ggml-vocab-falcon.gguf", "falcon")]
    [InlineData("ggml-vocab-starcoder.gguf", "starcoder")]
    [InlineData("ggml-vocab-refact.gguf", "refact")]
    public void OtherFamiliesLoadAndRoundTrip(string file, string pre)
    {
        var tokenizer = TokenizerFixtures.Load(Path.Combine("llamacpp-ggml-vocab", file));
        Assert.Equal("Ġ", tokenizer.WhitespaceMarker);
        Assert.NotNull(GgufPreTokenizers.Get(pre, file));
        foreach (var (text, _) in ReadVectors("ggml-vocab-gpt-2.gguf"))
        {
            var ids = tokenizer.Encode(text).Ids;
            Assert.Equal(text, tokenizer.Decode(ids));
        }
    }
}
