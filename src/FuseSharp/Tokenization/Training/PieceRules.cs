using System.Globalization;
using FuseSharp.Tokenization.Unicode;

namespace FuseSharp.Tokenization.Training;

/// <summary>
/// Which pieces a trainer may create (SentencePiece's <c>IsValidSentencePiece</c>, used by its BPE and unigram trainers;
/// byte-level BPE only has the length limit). A piece is a sequence of code points:
/// <list type="bullet">
/// <item>at most <see cref="MaxLength"/> code points;</item>
/// <item>the whitespace marker '▁' only at the start, and not a piece of markers only (<c>split_by_whitespace</c>,
/// <c>allow_whitespace_only_pieces=false</c>);</item>
/// <item>with <see cref="SplitByScript"/>, one script: letters of one script, or "common" characters (digits, punctuation,
/// symbols, controls); combining marks take the script of the character before them; Hiragana, Katakana and Han count
/// as one script, as SentencePiece merges them;</item>
/// <item>with <see cref="SplitByNumber"/> off, digits join any script; with <see cref="SplitDigits"/>, a digit is always
/// a piece of its own.</item>
/// </list>
/// Reserved strings (special tokens, byte-fallback pieces) are never pieces either.
/// .NET has no Unicode Script property, so <see cref="ScriptOf"/> assigns scripts to letters by block ranges of the
/// major scripts (and to any other letter the 128-code-point block it lies in). This matches the Script property for
/// the letters of those scripts; rare letters placed in another script's block may be grouped differently than
/// SentencePiece groups them.
/// </summary>
public sealed class PieceRules
{
    /// <summary>The whitespace marker of SentencePiece-style pieces.</summary>
    public const int Marker = 0x2581;

    private const int Common = 0, Inherited = -1, AnyScript = -2, Han = 1;

    /// <summary>Rules with only a length limit (byte-level BPE).</summary>
    public static PieceRules LengthOnly(int maxLength) => new(maxLength, sentencePiece: false, false, false, false);

    /// <summary>SentencePiece's rules.</summary>
    public static PieceRules SentencePiece(int maxLength, bool splitByScript, bool splitByNumber, bool splitDigits) =>
        new(maxLength, sentencePiece: true, splitByScript, splitByNumber, splitDigits);

    private readonly bool sentencePiece;
    private HashSet<string> reserved = new(StringComparer.Ordinal);
    private HashSet<int> reservedLengths = [];

    private PieceRules(int maxLength, bool sentencePiece, bool splitByScript, bool splitByNumber, bool splitDigits)
    {
        MaxLength = maxLength;
        this.sentencePiece = sentencePiece;
        SplitByScript = splitByScript;
        SplitByNumber = splitByNumber;
        SplitDigits = splitDigits;
    }

    public int MaxLength { get; }

    public bool SplitByScript { get; }

    public bool SplitByNumber { get; }

    public bool SplitDigits { get; }

    /// <summary>These rules, also refusing the given strings (special tokens and byte pieces already in the vocabulary).</summary>
    public PieceRules Reserving(IEnumerable<string> strings)
    {
        var copy = (PieceRules)MemberwiseClone();
        copy.reserved = new HashSet<string>(reserved.Concat(strings), StringComparer.Ordinal);
        copy.reservedLengths = [.. copy.reserved.Select(r => r.EnumerateRunes().Count())];
        return copy;
    }

    /// <summary>True when <paramref name="piece"/> (code points) may be a token.</summary>
    public bool IsValid(ReadOnlySpan<int> piece)
    {
        if (piece.Length == 0 || piece.Length > MaxLength) return false;
        if (reservedLengths.Contains(piece.Length) && reserved.Contains(Text(piece))) return false;
        if (!sentencePiece) return true;
        int prevScript = AnyScript;
        for (int pos = 0; pos < piece.Length; pos++)
        {
            int c = piece[pos];
            if (c is 0 or ' ') return false;
            if (c == Marker)
            {
                if (pos > 0) return false; // '▁' only as a prefix (so "▁▁", a whitespace-only piece, is out too)
                continue;
            }
            bool number = UnicodeChars.IsNumeric(c);
            if (SplitDigits && number && piece.Length > 1) return false;
            int s = ScriptOf(c);
            if (s == Inherited) s = prevScript;
            if (!SplitByNumber && number) s = AnyScript;
            if (SplitByScript && s != AnyScript && prevScript != AnyScript && s != prevScript) return false;
            prevScript = s;
        }
        return true;
    }

    /// <summary>The string of a code point sequence.</summary>
    public static string Text(ReadOnlySpan<int> codePoints)
    {
        var sb = new System.Text.StringBuilder(codePoints.Length);
        foreach (var c in codePoints) sb.Append(char.ConvertFromUtf32(c));
        return sb.ToString();
    }

    /// <summary>
    /// The script class of a code point: <c>0</c> for common characters (not letters or marks), <c>-1</c> for combining
    /// marks (inherited), else an identifier shared by the letters of one script.
    /// </summary>
    public static int ScriptOf(int cp) => cp < 0x10000 ? BmpScripts[cp] : ComputeScript(cp);

    private static short[] BuildBmpScripts()
    {
        var table = new short[0x10000];
        for (int cp = 0; cp < table.Length; cp++) table[cp] = (short)(char.IsSurrogate((char)cp) ? Common : ComputeScript(cp));
        return table;
    }

    private static int ComputeScript(int cp)
    {
        if (cp < 0x80) return char.IsAsciiLetter((char)cp) ? Latin : Common;
        var cat = UnicodeChars.Category(cp);
        if ((UnicodeChars.MarkMask & UnicodeChars.Bit(cat)) != 0) return Inherited;
        if (cp == 0x30FC || cp is (>= 0x3005 and <= 0x3007) or (>= 0x3021 and <= 0x3029) or (>= 0x3038 and <= 0x303B)) return Han;
        if ((UnicodeChars.LetterMask & UnicodeChars.Bit(cat)) == 0 && cat != UnicodeCategory.LetterNumber) return Common;
        foreach (var (first, last, script) in Ranges)
        {
            if (cp < first) break;
            if (cp <= last) return script;
        }
        return 1000 + (cp >> 7);
    }

    private const int Latin = 2;

    // Block ranges of the major scripts' letters, sorted by start (Han includes Hiragana, Katakana and the CJK blocks).
    private static readonly (int First, int Last, int Script)[] Ranges =
    [
        (0x00AA, 0x00AA, Latin), (0x00BA, 0x00BA, Latin), (0x00C0, 0x02AF, Latin), (0x0370, 0x03FF, 3), (0x0400, 0x052F, 4),
        (0x0530, 0x058F, 5), (0x0590, 0x05FF, 6), (0x0600, 0x06FF, 7), (0x0700, 0x074F, 8), (0x0750, 0x077F, 7),
        (0x0780, 0x07BF, 9), (0x08A0, 0x08FF, 7), (0x0900, 0x097F, 10), (0x0980, 0x09FF, 11), (0x0A00, 0x0A7F, 12),
        (0x0A80, 0x0AFF, 13), (0x0B00, 0x0B7F, 14), (0x0B80, 0x0BFF, 15), (0x0C00, 0x0C7F, 16), (0x0C80, 0x0CFF, 17),
        (0x0D00, 0x0D7F, 18), (0x0D80, 0x0DFF, 19), (0x0E00, 0x0E7F, 20), (0x0E80, 0x0EFF, 21), (0x0F00, 0x0FFF, 22),
        (0x1000, 0x109F, 23), (0x10A0, 0x10FF, 24), (0x1100, 0x11FF, 25), (0x1200, 0x139F, 26), (0x13A0, 0x13FF, 27),
        (0x1780, 0x17FF, 28), (0x1800, 0x18AF, 29), (0x1C80, 0x1C8F, 4), (0x1C90, 0x1CBF, 24), (0x1D00, 0x1DBF, Latin),
        (0x1E00, 0x1EFF, Latin), (0x1F00, 0x1FFF, 3), (0x2C60, 0x2C7F, Latin), (0x2D00, 0x2D2F, 24), (0x2DE0, 0x2DFF, 4),
        (0x2E80, 0x2FDF, Han), (0x3040, 0x30FF, Han), (0x3100, 0x312F, 30), (0x3130, 0x318F, 25), (0x31A0, 0x31BF, 30),
        (0x31F0, 0x31FF, Han), (0x3400, 0x4DBF, Han), (0x4E00, 0x9FFF, Han), (0xA640, 0xA69F, 4), (0xA720, 0xA7FF, Latin),
        (0xA960, 0xA97F, 25), (0xAB30, 0xAB6F, Latin), (0xAC00, 0xD7FF, 25), (0xF900, 0xFAFF, Han), (0xFB00, 0xFB06, Latin),
        (0xFB1D, 0xFB4F, 6), (0xFB50, 0xFDFF, 7), (0xFE70, 0xFEFF, 7), (0xFF21, 0xFF3A, Latin), (0xFF41, 0xFF5A, Latin),
        (0xFF66, 0xFF9F, Han), (0xFFA0, 0xFFDC, 25), (0x20000, 0x3FFFF, Han),
    ];

    // ScriptOf for every BMP code point (surrogate code units: common), built once (after Ranges, which it reads).
    private static readonly short[] BmpScripts = BuildBmpScripts();

    /// <summary>
    /// The characters that become base symbols: the most frequent ones until <paramref name="coverage"/> of all character
    /// occurrences is covered (SentencePiece's <c>required_chars</c>; coverage 1 keeps every character), ordered by
    /// count descending, then code point. The marker '▁' is counted like any other character.
    /// </summary>
    public static List<(int CodePoint, long Count)> RequiredCharacters(IReadOnlyDictionary<int, long> counts, double coverage)
    {
        long total = 0;
        foreach (var c in counts.Values) total += c;
        var sorted = counts.Select(kv => (CodePoint: kv.Key, Count: kv.Value)).OrderByDescending(x => x.Count).ThenBy(x => x.CodePoint).ToList();
        var result = new List<(int, long)>();
        long accumulated = 0;
        foreach (var x in sorted)
        {
            // SentencePiece stops once the characters taken so far cover the share (checked before adding the next).
            if (coverage < 1 && (double)accumulated / total >= coverage) break;
            accumulated += x.Count;
            result.Add(x);
        }
        return result;
    }
}
