using FuseSharp.Tokenization.Normalizers;
using FuseSharp.Tokenization.Unicode;

namespace FuseSharp.Tokenization;

/// <summary>A token added on top of the model's vocabulary (HF <c>AddedToken</c>) with the id it has.</summary>
public sealed record AddedToken(int Id, string Content, bool Special, bool SingleWord = false, bool LStrip = false, bool RStrip = false, bool Normalized = false);

/// <summary>
/// The added tokens and how they are cut out of the text before the pipeline runs (HF <c>AddedVocabulary</c>):
/// first the tokens with <c>normalized: false</c> are found in the raw text, then every remaining piece is
/// normalized and the <c>normalized: true</c> tokens (themselves normalized) are found in it. Matching is
/// leftmost-longest and non-overlapping; <c>single_word</c> rejects a match touching a word character,
/// <c>lstrip</c>/<c>rstrip</c> extend the match over neighbouring white space.
/// </summary>
public sealed class AddedVocabulary
{
    private readonly Dictionary<string, int> contentToId = new(StringComparer.Ordinal);
    private readonly Dictionary<int, AddedToken> byId = [];
    private readonly Matcher raw;
    private readonly Matcher normalized;

    /// <summary>Builds the vocabulary; the contents of normalized tokens are run through <paramref name="normalizer"/>.</summary>
    public AddedVocabulary(IEnumerable<AddedToken> tokens, INormalizer? normalizer)
    {
        var rawTokens = new List<(string, AddedToken)>();
        var normTokens = new List<(string, AddedToken)>();
        foreach (var t in tokens)
        {
            if (t.Content.Length == 0) continue;
            contentToId[t.Content] = t.Id;
            byId[t.Id] = t;
            if (t.Special) SpecialContents.Add(t.Content);
        }
        foreach (var t in byId.Values.OrderBy(t => t.Id))
        {
            if (!t.Normalized)
            {
                rawTokens.Add((t.Content, t));
                continue;
            }
            var n = new NormalizedString(t.Content);
            normalizer?.Normalize(n);
            if (n.Normalized.Length > 0) normTokens.Add((n.Normalized, t));
        }
        raw = new Matcher(rawTokens);
        normalized = new Matcher(normTokens);
    }

    /// <summary>Every added token by id.</summary>
    public IReadOnlyDictionary<int, AddedToken> Tokens => byId;

    /// <summary>Contents of the special tokens (what <c>skip_special_tokens</c> drops).</summary>
    public HashSet<string> SpecialContents { get; } = new(StringComparer.Ordinal);

    /// <summary>When true, special tokens in the text are not recognised (HF <c>encode_special_tokens</c>).</summary>
    public bool EncodeSpecialTokens { get; init; }

    public int Count => byId.Count;

    public int? TokenToId(string content) => contentToId.TryGetValue(content, out int id) ? id : null;

    public string? IdToContent(int id) => byId.TryGetValue(id, out var t) ? t.Content : null;

    public bool IsSpecial(string content) => SpecialContents.Contains(content);

    /// <summary>Cuts the added tokens out of <paramref name="text"/> and normalizes the rest (HF <c>extract_and_normalize</c>).</summary>
    public PreTokenizedString ExtractAndNormalize(INormalizer? normalizer, string text)
    {
        var pts = new PreTokenizedString(text);
        if (raw.Count > 0) pts.Split(n => SplitOnMatches(n, raw));
        pts.Split(n =>
        {
            normalizer?.Normalize(n);
            return normalized.Count > 0 ? SplitOnMatches(n, normalized) : [new PreTokenizedString.Piece(n)];
        });
        return pts;
    }

    /// <summary>True when there are tokens matched in the raw (<c>normalized: false</c>) or normalized text.</summary>
    internal bool HasRaw => raw.Count > 0;

    internal bool HasNormalized => normalized.Count > 0;

    private List<PreTokenizedString.Piece> SplitOnMatches(NormalizedString n, Matcher matcher)
    {
        var matches = Matches(n.Normalized, matcher == normalized);
        if (matches.Count == 0) return [new PreTokenizedString.Piece(n)];
        var result = new List<PreTokenizedString.Piece>(matches.Count * 2 + 1);
        int cursor = 0;
        foreach (var (start, stop, token) in matches)
        {
            if (cursor < start) result.Add(new PreTokenizedString.Piece(n.Slice(cursor, start)));
            var slice = n.Slice(start, stop);
            result.Add(new PreTokenizedString.Piece(slice, [new ModelToken(token.Id, 0, slice.Length)]));
            cursor = stop;
        }
        if (cursor < n.Length) result.Add(new PreTokenizedString.Piece(n.Slice(cursor, n.Length)));
        return result;
    }

    /// <summary>
    /// The added tokens found in <paramref name="s"/> (from the raw or the normalized set), left to right, with
    /// <c>single_word</c>, <c>lstrip</c> and <c>rstrip</c> applied (HF <c>find_matches</c>).
    /// </summary>
    internal List<(int Start, int End, AddedToken Token)> Matches(string s, bool normalizedSet)
    {
        var result = new List<(int, int, AddedToken)>();
        var matcher = normalizedSet ? normalized : raw;
        if (matcher.Count == 0) return result;
        int cursor = 0;
        foreach (var (mStart, mEnd, token) in matcher.FindAll(s))
        {
            int start = mStart, stop = mEnd;
            if (EncodeSpecialTokens && token.Special) continue;
            if (token.SingleWord)
            {
                bool startOk = start == 0 || !IsWordBefore(s, start);
                bool stopOk = stop == s.Length || !IsWordAt(s, stop);
                if (!startOk || !stopOk) continue;
            }
            if (token.LStrip)
            {
                int ns = start;
                while (ns > 0)
                {
                    int len = ns >= 2 && char.IsLowSurrogate(s[ns - 1]) && char.IsHighSurrogate(s[ns - 2]) ? 2 : 1;
                    if (!UnicodeChars.IsWhiteSpace(UnicodeChars.CodePointAt(s, ns - len, out _))) break;
                    ns -= len;
                }
                start = Math.Max(ns, cursor);
            }
            if (token.RStrip)
            {
                while (stop < s.Length)
                {
                    int cp = UnicodeChars.CodePointAt(s, stop, out int len);
                    if (!UnicodeChars.IsWhiteSpace(cp)) break;
                    stop += len;
                }
            }
            result.Add((start, stop, token));
            cursor = stop;
        }
        return result;
    }

    private static bool IsWordBefore(string s, int pos)
    {
        int len = pos >= 2 && char.IsLowSurrogate(s[pos - 1]) && char.IsHighSurrogate(s[pos - 2]) ? 2 : 1;
        return UnicodeChars.IsRustWord(UnicodeChars.CodePointAt(s, pos - len, out _));
    }

    private static bool IsWordAt(string s, int pos) => UnicodeChars.IsRustWord(UnicodeChars.CodePointAt(s, pos, out _));

    /// <summary>Leftmost-longest, non-overlapping matching of a set of strings (a character trie).</summary>
    private sealed class Matcher
    {
        private readonly PrefixTrie<char> trie = new();
        private readonly List<AddedToken> tokens = [];
        private readonly bool[] firstAscii = new bool[128]; // the scan tests every character: ASCII without hashing

        public Matcher(List<(string Pattern, AddedToken Token)> patterns)
        {
            foreach (var (p, t) in patterns)
            {
                trie.Add(p, tokens.Count);
                tokens.Add(t);
                if (p[0] < 128) firstAscii[p[0]] = true;
            }
        }

        public int Count => tokens.Count;

        public IEnumerable<(int Start, int End, AddedToken Token)> FindAll(string s)
        {
            for (int i = 0; i < s.Length;)
            {
                if (s[i] < 128 ? !firstAscii[s[i]] : !trie.MayStartWith(s[i]))
                {
                    i++;
                    continue;
                }
                var (value, end) = trie.LongestMatch(s, i);
                if (value < 0)
                {
                    i++;
                    continue;
                }
                yield return (i, end, tokens[value]);
                i = end;
            }
        }
    }
}
