using System.Text;

namespace FuseSharp.Tokenization;

/// <summary>
/// GPT-2's reversible byte ↔ character map (<c>bytes_to_unicode</c>): printable Latin-1 bytes map to themselves,
/// the other 68 bytes to U+0100.. in order, so that every byte string is a string of visible characters
/// (space → 'Ġ', newline → 'Ċ').
/// </summary>
public static class ByteLevelAlphabet
{
    private static readonly char[] ByteToChar = BuildByteToChar();
    private static readonly short[] CharToByte = BuildCharToByte();
    private static readonly string[] ByteStrings = [.. ByteToChar.Select(c => c.ToString())];

    private static char[] BuildByteToChar()
    {
        var map = new char[256];
        int n = 0;
        for (int b = 0; b < 256; b++)
        {
            bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            map[b] = printable ? (char)b : (char)(256 + n++);
        }
        return map;
    }

    private static short[] BuildCharToByte()
    {
        var map = new short[0x200];
        Array.Fill(map, (short)-1);
        var forward = BuildByteToChar();
        for (int b = 0; b < 256; b++) map[forward[b]] = (short)b;
        return map;
    }

    /// <summary>The character standing for byte <paramref name="b"/>.</summary>
    public static char Encode(byte b) => ByteToChar[b];

    /// <summary>The byte a character stands for, or -1 when it is not in the alphabet.</summary>
    public static int Decode(char c) => c < CharToByte.Length ? CharToByte[c] : -1;

    /// <summary>The alphabet form of <paramref name="text"/>'s UTF-8 bytes.</summary>
    public static string EncodeString(ReadOnlySpan<char> text)
    {
        var sb = new StringBuilder(text.Length);
        Span<byte> utf8 = stackalloc byte[4];
        for (int i = 0; i < text.Length;)
        {
            char c = text[i];
            if (c < 0x80)
            {
                sb.Append(ByteToChar[c]);
                i++;
                continue;
            }
            int start = i;
            Unicode.UnicodeNormalization.NextCodePoint(text, ref i);
            int n = System.Text.Encoding.UTF8.GetBytes(text[start..i], utf8);
            for (int k = 0; k < n; k++) sb.Append(ByteToChar[utf8[k]]);
        }
        return sb.ToString();
    }

    /// <summary>Rewrites a normalized string into the alphabet, each byte character aligned to the character it came from.</summary>
    public static void EncodeInPlace(NormalizedString text)
    {
        var utf8 = new byte[4];
        text.MapCodePoints(cp =>
        {
            if (cp < 0x80) return ByteToChar[cp] == cp ? null : ByteStrings[cp];
            int n = new Rune(cp).EncodeToUtf8(utf8);
            return n == 1 ? ByteStrings[utf8[0]] : string.Create(n, utf8, static (span, b) =>
            {
                for (int k = 0; k < span.Length; k++) span[k] = ByteToChar[b[k]];
            });
        });
    }

    /// <summary>
    /// Decodes alphabet text to bytes; returns false (and leaves <paramref name="output"/> unchanged) when a character
    /// is not in the alphabet.
    /// </summary>
    public static bool TryDecode(ReadOnlySpan<char> text, List<byte> output)
    {
        foreach (var c in text)
            if (Decode(c) < 0) return false;
        foreach (var c in text) output.Add((byte)Decode(c));
        return true;
    }
}
