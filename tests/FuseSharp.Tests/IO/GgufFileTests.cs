using FuseSharp.IO;
using Xunit;

namespace FuseSharp.Tests.IO;

/// <summary>The GGUF header reader on llama.cpp's vocab-only files and on damaged or hostile headers.</summary>
public class GgufFileTests
{
    private static string Vocab(string name) => TestPaths.Fixture("tokenizers", "llamacpp-ggml-vocab", name);

    [Fact]
    public void ReadsMetadata()
    {
        var f = GgufFile.Read(Vocab("ggml-vocab-llama-spm.gguf"));
        Assert.Equal(3u, f.Version);
        Assert.Empty(f.Tensors);
        Assert.Equal("llama", f.GetString("general.architecture"));
        Assert.Equal("llama", f.GetString("tokenizer.ggml.model"));
        Assert.Equal(32000, f.GetArray<string>("tokenizer.ggml.tokens")!.Length);
        Assert.Equal("<s>", f.GetArray<string>("tokenizer.ggml.tokens")![1]);
        Assert.Equal(32000, f.GetArray<float>("tokenizer.ggml.scores")!.Length);
        Assert.Equal(1, f.GetInteger("tokenizer.ggml.bos_token_id"));
        Assert.True(f.GetBool("tokenizer.ggml.add_bos_token"));
        Assert.Null(f.Get("no.such.key"));
        Assert.Throws<GgufException>(() => f.GetString("llama.block_count"));
    }

    [Fact]
    public void RejectsBadFiles()
    {
        using var dir = TestPaths.NewTempDir();
        File.WriteAllText(dir.File("a.gguf"), "not a gguf file at all");
        Assert.Contains("not a GGUF file", Assert.Throws<GgufException>(() => GgufFile.Read(dir.File("a.gguf"))).Message, StringComparison.Ordinal);

        // Version 9.
        File.WriteAllBytes(dir.File("b.gguf"), [.. "GGUF"u8, 9, 0, 0, 0]);
        Assert.Contains("version 9", Assert.Throws<GgufException>(() => GgufFile.Read(dir.File("b.gguf"))).Message, StringComparison.Ordinal);

        // A key count far beyond the file size must fail before allocating anything.
        var hostile = new List<byte>();
        hostile.AddRange("GGUF"u8.ToArray());
        hostile.AddRange(BitConverter.GetBytes(3u));
        hostile.AddRange(BitConverter.GetBytes(0UL));
        hostile.AddRange(BitConverter.GetBytes(ulong.MaxValue / 2));
        File.WriteAllBytes(dir.File("c.gguf"), [.. hostile]);
        Assert.Contains("exceed the file size", Assert.Throws<GgufException>(() => GgufFile.Read(dir.File("c.gguf"))).Message, StringComparison.Ordinal);

        // An array claiming 2^40 strings.
        var arr = new List<byte>();
        arr.AddRange("GGUF"u8.ToArray());
        arr.AddRange(BitConverter.GetBytes(3u));
        arr.AddRange(BitConverter.GetBytes(0UL));
        arr.AddRange(BitConverter.GetBytes(1UL));
        arr.AddRange(BitConverter.GetBytes(1UL));
        arr.Add((byte)'k');
        arr.AddRange(BitConverter.GetBytes((uint)GgufValueType.Array));
        arr.AddRange(BitConverter.GetBytes((uint)GgufValueType.String));
        arr.AddRange(BitConverter.GetBytes(1UL << 40));
        File.WriteAllBytes(dir.File("d.gguf"), [.. arr]);
        Assert.Contains("runs past the end", Assert.Throws<GgufException>(() => GgufFile.Read(dir.File("d.gguf"))).Message, StringComparison.Ordinal);
    }
}
