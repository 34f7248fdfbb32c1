using System.Text;
using FuseSharp.Tokenization.Unicode;

namespace FuseSharp.Tokenization;

/// <summary>How a split keeps the matched delimiter (HF <c>SplitDelimiterBehavior</c>), e.g. splitting "the-final--countdown" on '-'.</summary>
public enum SplitBehavior
{
    /// <summary>["the", "final", "countdown"]</summary>
    Removed,

    /// <summary>["the", "-", "final", "-", "-", "countdown"]</summary>
    Isolated,

    /// <summary>["the-", "final-", "-", "countdown"]</summary>
    MergedWithPrevious,

    /// <summary>["the", "-final", "-", "-countdown"]</summary>
    MergedWithNext,

    /// <summary>["the", "-", "final", "--", "countdown"]</summary>
    Contiguous,
}

/// <summary>
/// A piece of the input with its normalized form and, for every UTF-16 unit of the normalized text, the [start, end)
/// range of the original piece it comes from (Hugging Face's <c>NormalizedString</c>). Every normalizer and
/// pre-tokenizer edits through this type, which is how token offsets survive normalization.
/// </summary>
/// <remarks>
/// Alignment of edits: a replaced or mapped character takes the range of what it replaces; inserted text
/// (<see cref="Prepend"/>) takes the range of the character it is attached to. The alignment array is omitted
/// while the text is unchanged (the common ASCII case), so untouched pieces cost nothing extra.
/// </remarks>
public sealed class NormalizedString
{
    private int[]? align; // [2i] = start, [2i+1] = end in Original for normalized unit i; null = identity

    /// <summary>Starts from <paramref name="text"/> (normalized = original).</summary>
    public NormalizedString(string text)
    {
        Original = text;
        Normalized = text;
    }

    private NormalizedString(string original, int shift, string normalized, int[]? align)
    {
        Original = original;
        OriginalShift = shift;
        Normalized = normalized;
        this.align = align;
    }

    /// <summary>The original text of this piece.</summary>
    public string Original { get; }

    /// <summary>Where <see cref="Original"/> starts in the full input (HF <c>original_shift</c>).</summary>
    public int OriginalShift { get; }

    /// <summary>The current normalized text.</summary>
    public string Normalized { get; private set; }

    public int Length => Normalized.Length;

    public bool IsEmpty => Normalized.Length == 0;

    /// <summary>The range of this piece in the full input.</summary>
    public (int Start, int End) OriginalOffsets => (OriginalShift, OriginalShift + Original.Length);

    /// <summary>Start in <see cref="Original"/> of normalized unit <paramref name="i"/>.</summary>
    public int AlignStart(int i) => align is null ? i : align[2 * i];

    /// <summary>End in <see cref="Original"/> of normalized unit <paramref name="i"/>.</summary>
    public int AlignEnd(int i) => align is null ? i + 1 : align[(2 * i) + 1];

    /// <summary>
    /// The range of <see cref="Original"/> covered by normalized units [<paramref name="start"/>, <paramref name="end"/>)
    /// (the smallest range containing all of them; an empty range maps to a point).
    /// </summary>
    public (int Start, int End) ToOriginal(int start, int end)
    {
        if (align is null) return (start, end);
        if (start >= end)
        {
            int p = start < Normalized.Length ? align[2 * start] : Original.Length;
            return (p, p);
        }
        int s = int.MaxValue, e = 0;
        for (int i = start; i < end; i++)
        {
            s = Math.Min(s, align[2 * i]);
            e = Math.Max(e, align[(2 * i) + 1]);
        }
        return (s, e);
    }

    /// <summary>A new piece holding normalized units [<paramref name="start"/>, <paramref name="end"/>) and the original text they cover.</summary>
    public NormalizedString Slice(int start, int end)
    {
        if (start == 0 && end == Normalized.Length) return this;
        var (os, oe) = ToOriginal(start, end);
        if (align is null)
            return new NormalizedString(Original.Substring(os, oe - os), OriginalShift + os, Normalized.Substring(start, end - start), null);
        var a = new int[2 * (end - start)];
        for (int i = start; i < end; i++)
        {
            a[2 * (i - start)] = align[2 * i] - os;
            a[(2 * (i - start)) + 1] = align[(2 * i) + 1] - os;
        }
        return new NormalizedString(Original.Substring(os, oe - os), OriginalShift + os, Normalized.Substring(start, end - start), a);
    }

    /// <summary>Collects a new normalized text with its alignment; see <see cref="Commit"/>.</summary>
    internal sealed class Builder(int capacity)
    {
        public readonly StringBuilder Text = new(capacity);
        public readonly List<int> Align = new(capacity * 2);

        public void Append(char c, int originalStart, int originalEnd)
        {
            Text.Append(c);
            Align.Add(originalStart);
            Align.Add(originalEnd);
        }

        public void AppendCodePoint(int cp, int originalStart, int originalEnd)
        {
            if (cp < 0x10000)
            {
                Append((char)cp, originalStart, originalEnd);
                return;
            }
            UnicodeNormalization.AppendCodePoint(Text, cp);
            Align.Add(originalStart);
            Align.Add(originalEnd);
            Align.Add(originalStart);
            Align.Add(originalEnd);
        }

        public void Append(ReadOnlySpan<char> s, int originalStart, int originalEnd)
        {
            foreach (var c in s) Append(c, originalStart, originalEnd);
        }
    }

    internal Builder NewBuilder(int capacity = 0) => new(Math.Max(capacity, Normalized.Length));

    /// <summary>Copies normalized units [start, end) with their alignment.</summary>
    internal void CopyTo(Builder b, int start, int end)
    {
        for (int i = start; i < end; i++) b.Append(Normalized[i], AlignStart(i), AlignEnd(i));
    }

    /// <summary>Replaces the normalized text and alignment by what <paramref name="b"/> collected.</summary>
    internal void Commit(Builder b)
    {
        Normalized = b.Text.ToString();
        var a = b.Align;
        bool identity = Normalized.Length == Original.Length;
        for (int i = 0; identity && i < Normalized.Length; i++) identity = a[2 * i] == i && a[(2 * i) + 1] == i + 1;
        align = identity ? null : [.. a];
    }

    /// <summary>Applies a Unicode normalization form.</summary>
    public void NormalizeUnicode(UnicodeForm form)
    {
        if (UnicodeNormalization.IsQuickStable(Normalized, form)) return;
        var items = UnicodeNormalization.NormalizeWithSources(Normalized, form);
        var b = NewBuilder();
        foreach (var (cp, s, e) in items)
        {
            var (os, oe) = ToOriginal(s, e);
            b.AppendCodePoint(cp, os, oe);
        }
        Commit(b);
    }

    /// <summary>
    /// Replaces every code point by the string <paramref name="map"/> returns for it (null keeps it unchanged, "" removes
    /// it); each output unit takes the range of the code point it came from.
    /// </summary>
    public void MapCodePoints(Func<int, string?> map)
    {
        Builder? b = null;
        for (int i = 0; i < Normalized.Length;)
        {
            int start = i;
            int cp = UnicodeNormalization.NextCodePoint(Normalized, ref i);
            var repl = map(cp);
            if (repl is null)
            {
                if (b is not null) CopyTo(b, start, i);
                continue;
            }
            if (b is null)
            {
                b = NewBuilder(Normalized.Length + repl.Length);
                CopyTo(b, 0, start);
            }
            var (os, oe) = ToOriginal(start, i);
            b.Append(repl, os, oe);
        }
        if (b is not null) Commit(b);
    }

    /// <summary>Lowercases with Rust's <c>char::to_lowercase</c> mapping (see <see cref="UnicodeChars.AppendLower"/>).</summary>
    public void Lowercase()
    {
        bool changes = false;
        foreach (var c in Normalized)
        {
            if (c >= 0x80 ? true : char.IsAsciiLetterUpper(c))
            {
                changes = true;
                break;
            }
        }
        if (!changes) return;
        var sb = new StringBuilder(4);
        MapCodePoints(cp =>
        {
            if (cp < 0x80) return char.IsAsciiLetterUpper((char)cp) ? ((char)(cp | 0x20)).ToString() : null;
            sb.Clear();
            UnicodeChars.AppendLower(sb, cp);
            var s = sb.ToString();
            return UnicodeChars.CodePointCount(s) == 1 && char.ConvertToUtf32(s, 0) == cp ? null : s;
        });
    }

    /// <summary>Removes the code points for which <paramref name="keep"/> is false.</summary>
    public void Filter(Func<int, bool> keep) => MapCodePoints(cp => keep(cp) ? null : "");

    /// <summary>Prepends <paramref name="s"/> (nothing happens on an empty string, as in HF); it takes the range of the first character.</summary>
    public void Prepend(string s)
    {
        if (IsEmpty || s.Length == 0) return;
        var b = NewBuilder(Normalized.Length + s.Length);
        int firstLen = char.IsHighSurrogate(Normalized[0]) && Normalized.Length > 1 ? 2 : 1;
        var (os, oe) = ToOriginal(0, firstLen);
        b.Append(s, os, oe);
        CopyTo(b, 0, Normalized.Length);
        Commit(b);
    }

    /// <summary>Appends <paramref name="s"/>; it takes the range of the last character.</summary>
    public void Append(string s)
    {
        if (IsEmpty || s.Length == 0) return;
        var b = NewBuilder(Normalized.Length + s.Length);
        CopyTo(b, 0, Normalized.Length);
        int lastLen = Normalized.Length > 1 && char.IsLowSurrogate(Normalized[^1]) ? 2 : 1;
        var (os, oe) = ToOriginal(Normalized.Length - lastLen, Normalized.Length);
        b.Append(s, os, oe);
        Commit(b);
    }

    /// <summary>Removes leading and/or trailing white space (Unicode White_Space).</summary>
    public void Strip(bool left, bool right)
    {
        int start = 0, end = Normalized.Length;
        if (left)
        {
            while (start < end)
            {
                int cp = UnicodeChars.CodePointAt(Normalized, start, out int len);
                if (!UnicodeChars.IsWhiteSpace(cp)) break;
                start += len;
            }
        }
        if (right)
        {
            while (end > start)
            {
                int len = end - start >= 2 && char.IsLowSurrogate(Normalized[end - 1]) && char.IsHighSurrogate(Normalized[end - 2]) ? 2 : 1;
                int cp = UnicodeChars.CodePointAt(Normalized, end - len, out _);
                if (!UnicodeChars.IsWhiteSpace(cp)) break;
                end -= len;
            }
        }
        if (start == 0 && end == Normalized.Length) return;
        var b = NewBuilder(end - start);
        CopyTo(b, start, end);
        Commit(b);
    }

    /// <summary>Replaces every match of <paramref name="pattern"/> by <paramref name="content"/>; the replacement takes the range of the match.</summary>
    public void Replace(SplitPattern pattern, string content)
    {
        var matches = pattern.FindMatches(Normalized);
        if (!matches.Exists(m => m.IsMatch)) return;
        var b = NewBuilder(Normalized.Length);
        foreach (var (s, e, isMatch) in matches)
        {
            if (!isMatch)
            {
                CopyTo(b, s, e);
                continue;
            }
            var (os, oe) = ToOriginal(s, e);
            b.Append(content, os, oe);
        }
        Commit(b);
    }

    /// <summary>Splits by <paramref name="pattern"/> with the given delimiter behaviour (HF <c>NormalizedString::split</c>); empty pieces are kept.</summary>
    public List<NormalizedString> Split(SplitPattern pattern, SplitBehavior behavior, bool invert = false)
    {
        var matches = pattern.FindMatches(Normalized);
        if (invert)
        {
            for (int k = 0; k < matches.Count; k++) matches[k] = matches[k] with { IsMatch = !matches[k].IsMatch };
        }
        return SplitAt(matches, behavior);
    }

    /// <summary>Splits along a covering list of (start, end, isMatch) ranges.</summary>
    public List<NormalizedString> SplitAt(List<(int Start, int End, bool IsMatch)> matches, SplitBehavior behavior)
    {
        var pieces = new List<(int Start, int End, bool Remove)>(matches.Count);
        switch (behavior)
        {
            case SplitBehavior.Isolated:
                foreach (var m in matches) pieces.Add((m.Start, m.End, false));
                break;
            case SplitBehavior.Removed:
                foreach (var m in matches) pieces.Add((m.Start, m.End, m.IsMatch));
                break;
            case SplitBehavior.Contiguous:
            {
                bool previous = false;
                foreach (var m in matches)
                {
                    if (m.IsMatch == previous && pieces.Count > 0) pieces[^1] = (pieces[^1].Start, m.End, false);
                    else pieces.Add((m.Start, m.End, false));
                    previous = m.IsMatch;
                }
                break;
            }
            case SplitBehavior.MergedWithPrevious:
            {
                bool previous = false;
                foreach (var m in matches)
                {
                    if (m.IsMatch && !previous && pieces.Count > 0) pieces[^1] = (pieces[^1].Start, m.End, false);
                    else pieces.Add((m.Start, m.End, false));
                    previous = m.IsMatch;
                }
                break;
            }
            case SplitBehavior.MergedWithNext:
            {
                bool previous = false;
                for (int k = matches.Count - 1; k >= 0; k--)
                {
                    var m = matches[k];
                    if (m.IsMatch && !previous && pieces.Count > 0) pieces[^1] = (m.Start, pieces[^1].End, false);
                    else pieces.Add((m.Start, m.End, false));
                    previous = m.IsMatch;
                }
                pieces.Reverse();
                break;
            }
        }
        var result = new List<NormalizedString>(pieces.Count);
        foreach (var (s, e, remove) in pieces)
            if (!remove) result.Add(Slice(s, e));
        return result;
    }

    public override string ToString() => Normalized;
}
