using System.Buffers.Binary;
using System.Text;

namespace FuseSharp.Tokenization.Unicode;

/// <summary>The four Unicode normalization forms (UAX #15).</summary>
public enum UnicodeForm
{
    Nfc,
    Nfd,
    Nfkc,
    Nfkd,
}

/// <summary>
/// NFC/NFD/NFKC/NFKD with provenance: every output code point knows the range of input code units it came from,
/// which is what keeps token offsets pointing into the original text after normalization.
/// </summary>
/// <remarks>
/// FuseSharp runs with <c>InvariantGlobalization</c>, where <see cref="string.Normalize()"/> does nothing, so the
/// data (combining classes, full decompositions, primary composites; Unicode version in <see cref="DataVersion"/>)
/// is generated from Python's <c>unicodedata</c> by <c>tools/gen_unicode_normalization.py</c> and embedded.
/// Provenance differs from Hugging Face's <c>unicode-normalization-alignments</c> in one deliberate point: a
/// composed character maps to the union of the ranges it was composed from (HF keeps only the starter's), so an
/// offset always covers everything that produced the character.
/// </remarks>
public static class UnicodeNormalization
{
    private const int SBase = 0xAC00, LBase = 0x1100, VBase = 0x1161, TBase = 0x11A7;
    private const int LCount = 19, VCount = 21, TCount = 28, NCount = VCount * TCount, SCount = LCount * NCount;

    private static readonly byte[] BmpCcc = new byte[0x10000];
    private static readonly Dictionary<int, byte> AstralCcc = [];
    private static readonly Dictionary<int, int[]> Canonical = [];
    private static readonly Dictionary<int, int[]> Compatibility = [];
    private static readonly Dictionary<long, int> Composites = [];
    private static readonly HashSet<int> ComposeSeconds = [];
    // Per form: BMP code units that may change under that form (decomposable, non-starter, or composing second).
    private static readonly byte[][] Unstable = new byte[4][];

    static UnicodeNormalization()
    {
        using var stream = typeof(UnicodeNormalization).Assembly.GetManifestResourceStream("FuseSharp.Tokenization.Unicode.UnicodeNormalization.bin")
            ?? throw new InvalidOperationException("embedded Unicode normalization data is missing");
        var data = new byte[stream.Length];
        stream.ReadExactly(data);
        int p = 4;
        if (!data.AsSpan(0, 4).SequenceEqual("FSUN"u8) || data[p++] != 1)
            throw new InvalidOperationException("embedded Unicode normalization data has an unknown format");
        int vlen = data[p++];
        DataVersion = System.Text.Encoding.ASCII.GetString(data, p, vlen);
        p += vlen;
        int U32() { var v = BinaryPrimitives.ReadInt32LittleEndian(data.AsSpan(p)); p += 4; return v; }
        for (int n = U32(); n > 0; n--)
        {
            int cp = U32();
            byte c = data[p++];
            if (cp < 0x10000) BmpCcc[cp] = c; else AstralCcc[cp] = c;
        }
        for (int n = U32(); n > 0; n--)
        {
            int cp = U32();
            int kind = data[p++];
            var seq = new int[data[p++]];
            for (int i = 0; i < seq.Length; i++) seq[i] = U32();
            (kind == 0 ? Canonical : Compatibility)[cp] = seq;
        }
        for (int n = U32(); n > 0; n--)
        {
            int a = U32(), b = U32(), c = U32();
            Composites[((long)a << 21) | (uint)b] = c;
            ComposeSeconds.Add(b);
        }
        for (int f = 0; f < 4; f++)
        {
            var form = (UnicodeForm)f;
            var bits = new byte[0x10000 / 8];
            for (int cp = 0; cp < 0x10000; cp++)
            {
                bool unstable = BmpCcc[cp] != 0 || Canonical.ContainsKey(cp)
                    || (IsCompat(form) && Compatibility.ContainsKey(cp))
                    || (IsCompose(form) && (ComposeSeconds.Contains(cp) || (cp >= VBase && cp < VBase + VCount) || (cp > TBase && cp < TBase + TCount)))
                    || (!IsCompose(form) && cp >= SBase && cp < SBase + SCount)
                    || (cp >= 0xD800 && cp <= 0xDFFF); // astral code points are checked one by one
                if (unstable) bits[cp >> 3] |= (byte)(1 << (cp & 7));
            }
            Unstable[f] = bits;
        }
    }

    /// <summary>The Unicode version of the embedded data.</summary>
    public static string DataVersion { get; } = "";

    private static bool IsCompat(UnicodeForm f) => f is UnicodeForm.Nfkc or UnicodeForm.Nfkd;

    private static bool IsCompose(UnicodeForm f) => f is UnicodeForm.Nfc or UnicodeForm.Nfkc;

    /// <summary>Canonical combining class of a code point (0 for starters).</summary>
    public static int CombiningClass(int cp) => cp < 0x10000 ? BmpCcc[cp] : AstralCcc.GetValueOrDefault(cp);

    /// <summary>Normalizes a string (no provenance).</summary>
    public static string Normalize(string text, UnicodeForm form)
    {
        if (IsQuickStable(text, form)) return text;
        var sb = new StringBuilder(text.Length);
        foreach (var (cp, _, _) in NormalizeWithSources(text, form)) AppendCodePoint(sb, cp);
        return sb.ToString();
    }

    /// <summary>True when no code unit of <paramref name="text"/> can change under <paramref name="form"/> (so it is already normalized).</summary>
    public static bool IsQuickStable(ReadOnlySpan<char> text, UnicodeForm form)
    {
        var bits = Unstable[(int)form];
        foreach (var c in text)
        {
            if (c >= 0x80 && (bits[c >> 3] & (1 << (c & 7))) != 0) return false;
        }
        return true;
    }

    /// <summary>
    /// Normalizes <paramref name="text"/> and returns, per output code point, the [Start, End) range of input code
    /// units it derives from.
    /// </summary>
    public static List<(int CodePoint, int Start, int End)> NormalizeWithSources(ReadOnlySpan<char> text, UnicodeForm form)
    {
        var buf = new List<(int CodePoint, int Start, int End)>(text.Length + 8);
        bool compat = IsCompat(form);
        for (int i = 0; i < text.Length;)
        {
            int start = i;
            int cp = NextCodePoint(text, ref i);
            Decompose(cp, compat, start, i, buf);
        }
        ReorderCanonically(buf);
        if (IsCompose(form)) Compose(buf);
        return buf;
    }

    private static void Decompose(int cp, bool compat, int start, int end, List<(int, int, int)> output)
    {
        if (cp >= SBase && cp < SBase + SCount)
        {
            int s = cp - SBase;
            output.Add((LBase + s / NCount, start, end));
            output.Add((VBase + s % NCount / TCount, start, end));
            if (s % TCount != 0) output.Add((TBase + s % TCount, start, end));
            return;
        }
        if ((compat && Compatibility.TryGetValue(cp, out var seq)) || Canonical.TryGetValue(cp, out seq))
        {
            foreach (var d in seq) output.Add((d, start, end));
            return;
        }
        output.Add((cp, start, end));
    }

    // Stable sort of every run of non-starters by combining class (UAX #15 canonical ordering).
    private static void ReorderCanonically(List<(int CodePoint, int Start, int End)> buf)
    {
        for (int i = 1; i < buf.Count; i++)
        {
            int c = CombiningClass(buf[i].CodePoint);
            if (c == 0) continue;
            int j = i;
            var item = buf[i];
            while (j > 0 && CombiningClass(buf[j - 1].CodePoint) > c)
            {
                buf[j] = buf[j - 1];
                j--;
            }
            buf[j] = item;
        }
    }

    // Canonical composition: each character composes with the last starter unless blocked.
    private static void Compose(List<(int CodePoint, int Start, int End)> buf)
    {
        if (buf.Count < 2) return;
        int starter = -1, lastClass = -1, write = 0;
        for (int read = 0; read < buf.Count; read++)
        {
            var cur = buf[read];
            int cc = CombiningClass(cur.CodePoint);
            if (starter >= 0)
            {
                // lastClass is -1 while the starter is adjacent; a mark of equal or higher class in between blocks.
                bool blocked = lastClass != -1 && lastClass >= cc;
                if (!blocked && TryCompose(buf[starter].CodePoint, cur.CodePoint, out int composite))
                {
                    var s = buf[starter];
                    buf[starter] = (composite, Math.Min(s.Start, cur.Start), Math.Max(s.End, cur.End));
                    continue;
                }
            }
            if (cc == 0)
            {
                starter = write;
                lastClass = -1;
            }
            else
            {
                lastClass = cc;
            }
            buf[write++] = cur;
        }
        buf.RemoveRange(write, buf.Count - write);
    }

    private static bool TryCompose(int a, int b, out int composite)
    {
        if (a >= LBase && a < LBase + LCount && b >= VBase && b < VBase + VCount)
        {
            composite = SBase + ((a - LBase) * VCount + (b - VBase)) * TCount;
            return true;
        }
        if (a >= SBase && a < SBase + SCount && (a - SBase) % TCount == 0 && b > TBase && b < TBase + TCount)
        {
            composite = a + (b - TBase);
            return true;
        }
        return Composites.TryGetValue(((long)a << 21) | (uint)b, out composite);
    }

    /// <summary>Reads the code point at <paramref name="i"/> and advances past it; a lone surrogate is returned as itself.</summary>
    public static int NextCodePoint(ReadOnlySpan<char> text, ref int i)
    {
        char c = text[i++];
        if (char.IsHighSurrogate(c) && i < text.Length && char.IsLowSurrogate(text[i]))
            return char.ConvertToUtf32(c, text[i++]);
        return c;
    }

    /// <summary>Appends a code point as one or two UTF-16 units.</summary>
    public static void AppendCodePoint(StringBuilder sb, int cp)
    {
        if (cp < 0x10000) sb.Append((char)cp);
        else
        {
            cp -= 0x10000;
            sb.Append((char)(0xD800 + (cp >> 10))).Append((char)(0xDC00 + (cp & 0x3FF)));
        }
    }
}
