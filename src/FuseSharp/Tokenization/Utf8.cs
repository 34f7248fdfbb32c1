using System.Runtime.InteropServices;
using System.Text;

namespace FuseSharp.Tokenization;

/// <summary>UTF-8 decoding as the reference tokenizers do it.</summary>
public static class Utf8
{
    private static readonly UTF8Encoding Strict = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>
    /// Decodes bytes, replacing each maximal invalid subsequence by one U+FFFD (Rust <c>from_utf8_lossy</c>, Python
    /// <c>errors="replace"</c>; .NET follows the same Unicode recommendation).
    /// </summary>
    public static string DecodeLossy(List<byte> bytes) => System.Text.Encoding.UTF8.GetString(CollectionsMarshal.AsSpan(bytes));

    /// <summary>Decodes bytes that must be valid UTF-8.</summary>
    public static bool TryDecodeStrict(List<byte> bytes, out string text)
    {
        try
        {
            text = Strict.GetString(CollectionsMarshal.AsSpan(bytes));
            return true;
        }
        catch (DecoderFallbackException)
        {
            text = "";
            return false;
        }
    }

    /// <summary>Reads a text file that must be valid UTF-8 (a leading BOM is skipped).</summary>
    /// <exception cref="TokenizerException">The file is not valid UTF-8; the message gives the line.</exception>
    public static string ReadFile(string path)
    {
        var bytes = ReadValidated(path);
        return System.Text.Encoding.UTF8.GetString(bytes.Span);
    }

    /// <summary>Reads a file that must be valid UTF-8; returns its bytes without a leading BOM.</summary>
    /// <exception cref="TokenizerException">The file is not valid UTF-8; the message gives the line.</exception>
    public static ReadOnlyMemory<byte> ReadValidated(string path)
    {
        var bytes = File.ReadAllBytes(path);
        int start = bytes.Length >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF ? 3 : 0;
        if (System.Text.Unicode.Utf8.IsValid(bytes.AsSpan(start))) return bytes.AsMemory(start);
        int at = FirstInvalid(bytes, start);
        int line = 1;
        for (int i = 0; i < at && i < bytes.Length; i++)
            if (bytes[i] == '\n') line++;
        throw new TokenizerException($"{path}: line {line}: invalid UTF-8 (byte offset {at})", "tokenizer and input files must be UTF-8 encoded");
    }

    private static int FirstInvalid(byte[] bytes, int start)
    {
        var span = bytes.AsSpan(start);
        System.Text.Unicode.Utf8.ToUtf16(span, new char[span.Length], out int read, out _, replaceInvalidSequences: false);
        return start + read;
    }
}
