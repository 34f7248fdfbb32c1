using System.Runtime.CompilerServices;

namespace FuseSharp.Fusion.Alignment;

/// <summary>
/// Levenshtein distance (unit insert/delete/substitute costs) over Unicode code points, as the reference's
/// <c>editdistance.eval</c> computes it on Python strings: a character outside the BMP counts once (not as two
/// UTF-16 units), a lone surrogate counts as itself.
/// <para>
/// <see cref="DistanceReference"/> is the plain two-row dynamic programme; <see cref="Distance(ReadOnlySpan{int}, ReadOnlySpan{int})"/> is Myers'
/// bit-parallel algorithm (Hyyrö's formulation, one 64-bit word per column) when the shorter string has at most
/// 64 code points, else the reference. The two are tested against each other.
/// </para>
/// </summary>
public static class Levenshtein
{
    /// <summary>Longest pattern the bit-parallel kernel takes (one machine word).</summary>
    public const int WordBits = 64;

    /// <summary>The code points of <paramref name="s"/>; a valid surrogate pair is one code point, a lone surrogate stays itself.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static int[] CodePoints(string s)
    {
        ArgumentNullException.ThrowIfNull(s);
        int n = 0;
        for (int i = 0; i < s.Length; i++, n++)
        {
            if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1])) i++;
        }
        var cps = new int[n];
        for (int i = 0, k = 0; i < s.Length; i++, k++)
        {
            if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
            {
                cps[k] = char.ConvertToUtf32(s[i], s[i + 1]);
                i++;
            }
            else
            {
                cps[k] = s[i];
            }
        }
        return cps;
    }

    /// <summary>Distance between two strings (code points).</summary>
    public static int Distance(string a, string b) => Distance(CodePoints(a), CodePoints(b));

    /// <summary>The plain O(|a|·|b|) dynamic programme, two rows. The reference the fast kernels are checked against.</summary>
    public static int DistanceReference(ReadOnlySpan<int> a, ReadOnlySpan<int> b)
    {
        if (a.Length == 0) return b.Length;
        if (b.Length == 0) return a.Length;
        var prev = new int[b.Length + 1];
        var cur = new int[b.Length + 1];
        for (int j = 0; j <= b.Length; j++) prev[j] = j;
        for (int i = 1; i <= a.Length; i++)
        {
            cur[0] = i;
            for (int j = 1; j <= b.Length; j++)
            {
                int sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
                cur[j] = Math.Min(sub, Math.Min(prev[j], cur[j - 1]) + 1);
            }
            (prev, cur) = (cur, prev);
        }
        return prev[b.Length];
    }

    /// <summary>Exact distance: bit-parallel when the shorter string fits a word, else the plain programme.</summary>
    public static int Distance(ReadOnlySpan<int> a, ReadOnlySpan<int> b) => DistanceBounded(a, b, int.MaxValue - 1);

    /// <summary>
    /// The distance if it is at most <paramref name="bound"/>, else some value greater than <paramref name="bound"/>
    /// (the search stops as soon as the bound cannot be met).
    /// </summary>
    public static int DistanceBounded(ReadOnlySpan<int> a, ReadOnlySpan<int> b, int bound)
    {
        if (a.Length > b.Length) { var t = a; a = b; b = t; }
        // a is the shorter: |b| - |a| is a lower bound.
        if (b.Length - a.Length > bound) return bound + 1;
        if (a.Length == 0) return b.Length;
        if (a.Length > WordBits) return BoundedDp(a, b, bound);

        // Pattern a's match masks in a small open-addressing table (≤ 64 distinct code points, 128 slots); slot 128
        // stays 0 for text characters the pattern does not have.
        Span<int> keys = stackalloc int[128];
        Span<ulong> masks = stackalloc ulong[129];
        keys.Fill(-1);
        masks.Clear();
        for (int i = 0; i < a.Length; i++)
        {
            int slot = Slot(a[i]);
            while (keys[slot] != -1 && keys[slot] != a[i]) slot = (slot + 1) & 127;
            keys[slot] = a[i];
            masks[slot] |= 1UL << i;
        }
        Span<int> slots = b.Length <= 256 ? stackalloc int[b.Length] : new int[b.Length];
        for (int j = 0; j < b.Length; j++)
        {
            int slot = Slot(b[j]);
            while (keys[slot] != -1 && keys[slot] != b[j]) slot = (slot + 1) & 127;
            slots[j] = keys[slot] == -1 ? 128 : slot;
        }
        return Myers(masks, slots, a.Length, bound);
    }

    /// <summary>
    /// Myers/Hyyrö bit-parallel global edit distance between a pattern of <paramref name="m"/> (1..64) symbols and a
    /// text of symbols, given the pattern's match masks: <c>peq[c]</c> has bit i set iff pattern[i] == c. Returns the
    /// distance, or a value above <paramref name="bound"/> once the score minus the characters left exceeds it.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static int Myers(ReadOnlySpan<ulong> peq, ReadOnlySpan<int> text, int m, int bound)
    {
        ulong pv = m == 64 ? ulong.MaxValue : (1UL << m) - 1;
        ulong mv = 0;
        ulong last = 1UL << (m - 1);
        int score = m;
        int n = text.Length;
        for (int j = 0; j < n; j++)
        {
            ulong e = peq[text[j]];
            ulong xv = e | mv;
            ulong xh = (((e & pv) + pv) ^ pv) | e;
            ulong ph = mv | ~(xh | pv);
            ulong mh = pv & xh;
            if ((ph & last) != 0) score++;
            else if ((mh & last) != 0) score--;
            // D[0][j] = j: a 1 shifts in for the horizontal delta of row 0.
            ph = (ph << 1) | 1;
            mh <<= 1;
            pv = mh | ~(xv | ph);
            mv = ph & xv;
            if (score - (n - 1 - j) > bound) return bound + 1;
        }
        return score;
    }

    /// <summary>The plain programme restricted by a bound (used for patterns longer than a word).</summary>
    private static int BoundedDp(ReadOnlySpan<int> a, ReadOnlySpan<int> b, int bound)
    {
        var prev = new int[b.Length + 1];
        var cur = new int[b.Length + 1];
        for (int j = 0; j <= b.Length; j++) prev[j] = j;
        for (int i = 1; i <= a.Length; i++)
        {
            cur[0] = i;
            int rowMin = i;
            for (int j = 1; j <= b.Length; j++)
            {
                int sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
                int v = Math.Min(sub, Math.Min(prev[j], cur[j - 1]) + 1);
                cur[j] = v;
                if (v < rowMin) rowMin = v;
            }
            if (rowMin > bound) return bound + 1; // every later row is at least this row's minimum
            (prev, cur) = (cur, prev);
        }
        return prev[b.Length];
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Slot(int c) => (int)((uint)c * 0x9E3779B1u >> 25);
}
