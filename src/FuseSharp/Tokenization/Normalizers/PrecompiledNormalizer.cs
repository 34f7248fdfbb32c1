using System.Globalization;
using FuseSharp.Tokenization.SentencePiece;

namespace FuseSharp.Tokenization.Normalizers;

/// <summary>
/// SentencePiece's compiled normalization rules inside a tokenizer.json (HF <c>Precompiled</c>), applied the way HF
/// does it: per extended grapheme cluster, a cluster shorter than 6 UTF-8 bytes is replaced by the first rule that
/// matches a prefix of it; otherwise each character is replaced by its own first matching rule.
/// </summary>
public sealed class PrecompiledNormalizer(PrecompiledCharsMap map) : INormalizer
{
    public static INormalizer FromJson(JsonSection j)
    {
        var b64 = j.GetStringOrNull("precompiled_charsmap");
        if (string.IsNullOrEmpty(b64)) return new SequenceNormalizer([]); // HF treats an empty map as the identity
        try
        {
            return new PrecompiledNormalizer(new PrecompiledCharsMap(Convert.FromBase64String(b64)));
        }
        catch (FormatException)
        {
            throw j.Error("precompiled_charsmap is not base64");
        }
        catch (TokenizerException e)
        {
            throw j.Error(e.Message);
        }
    }

    public void Normalize(NormalizedString text)
    {
        var s = text.Normalized;
        if (s.Length == 0) return;
        NormalizedString.Builder? b = null;
        int pos = 0;
        while (pos < s.Length)
        {
            int len = StringInfo.GetNextTextElementLength(s, pos);
            var cluster = s.AsSpan(pos, len);
            string? whole = System.Text.Encoding.UTF8.GetByteCount(cluster) < 6 ? Transform(cluster) : null;
            if (whole is not null)
            {
                b ??= Start(text, pos);
                var (os, oe) = text.ToOriginal(pos, pos + len);
                b.Append(whole, os, oe);
            }
            else
            {
                for (int i = pos; i < pos + len;)
                {
                    int start = i;
                    Unicode.UnicodeNormalization.NextCodePoint(s, ref i);
                    var repl = Transform(s.AsSpan(start, i - start));
                    if (repl is null)
                    {
                        if (b is not null) text.CopyTo(b, start, i);
                        continue;
                    }
                    b ??= Start(text, start);
                    var (os, oe) = text.ToOriginal(start, i);
                    b.Append(repl, os, oe);
                }
            }
            pos += len;
        }
        if (b is not null) text.Commit(b);
    }

    private static NormalizedString.Builder Start(NormalizedString text, int upTo)
    {
        var b = text.NewBuilder();
        text.CopyTo(b, 0, upTo);
        return b;
    }

    private string? Transform(ReadOnlySpan<char> chunk)
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes(chunk.ToArray());
        var r = map.FirstPrefixReplacement(bytes);
        return r is null ? null : System.Text.Encoding.UTF8.GetString(r);
    }
}
