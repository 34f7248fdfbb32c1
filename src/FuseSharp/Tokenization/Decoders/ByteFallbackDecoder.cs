namespace FuseSharp.Tokenization.Decoders;

/// <summary>
/// Turns runs of <c>&lt;0xNN&gt;</c> tokens into the text of their bytes; a run that is not valid UTF-8 becomes one
/// U+FFFD per byte (HF <c>ByteFallback</c>).
/// </summary>
public sealed class ByteFallbackDecoder : IDecoder
{
    public List<string> DecodeChain(List<string> tokens)
    {
        var result = new List<string>(tokens.Count);
        var pending = new List<byte>();
        void Flush()
        {
            if (pending.Count == 0) return;
            if (Utf8.TryDecodeStrict(pending, out var text)) result.Add(text);
            else
                for (int k = 0; k < pending.Count; k++) result.Add("\uFFFD");
            pending.Clear();
        }
        foreach (var t in tokens)
        {
            if (TryParseByte(t, out byte b))
            {
                pending.Add(b);
                continue;
            }
            Flush();
            result.Add(t);
        }
        Flush();
        return result;
    }

    /// <summary>True for "&lt;0xNN&gt;" pieces (6 characters, two hex digits).</summary>
    public static bool TryParseByte(string token, out byte value)
    {
        value = 0;
        if (token.Length != 6 || !token.StartsWith("<0x", StringComparison.Ordinal) || token[5] != '>') return false;
        return byte.TryParse(token.AsSpan(3, 2), System.Globalization.NumberStyles.AllowHexSpecifier, System.Globalization.CultureInfo.InvariantCulture, out value);
    }
}
