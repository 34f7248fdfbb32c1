using System.Collections.Concurrent;

namespace FuseSharp.Tokenization.SentencePiece;

/// <summary>
/// SentencePiece's BPE encoder (bpe_model.cc): characters (user-defined symbols whole and frozen) are merged,
/// always taking the adjacent pair whose concatenation is the highest-scoring piece (ties: leftmost); merges through
/// unused pieces are undone at the end. The text is encoded in segments that start at a '▁' preceded by a non-'▁'
/// when no piece crosses such a boundary (checked at load), which gives the same result as encoding the whole text
/// and lets segment results be cached.
/// </summary>
internal sealed class SentencePieceBpe
{
    private const int CacheCapacity = 100_000;
    private readonly int linearLimit;
    private readonly SentencePieceVocabulary vocab;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> pieceLookup;
    private readonly PrefixTrie<char>? userDefined;
    private readonly bool canSplit;
    private readonly bool hasUnused;
    private int cacheCount;
    private readonly char space;
    private readonly ConcurrentDictionary<string, (int Start, int End, int Id)[]> cache = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, (int Start, int End, int Id)[]>.AlternateLookup<ReadOnlySpan<char>> cacheLookup;

    /// <param name="vocab">the pieces</param>
    /// <param name="spaceSymbol">'▁' (or ' ' without whitespace escaping)</param>
    /// <param name="whitespaceIsPrefix">false with <c>treat_whitespace_as_suffix</c></param>
    /// <param name="linearLimit">segments with at most this many symbols use the linear scan (0 = always the agenda, the C++ algorithm)</param>
    public SentencePieceBpe(SentencePieceVocabulary vocab, char spaceSymbol, bool whitespaceIsPrefix, int linearLimit = 48)
    {
        this.linearLimit = linearLimit;
        this.vocab = vocab;
        space = spaceSymbol;
        cacheLookup = cache.GetAlternateLookup<ReadOnlySpan<char>>();
        pieceLookup = new Dictionary<string, int>(vocab.ModelPieces, StringComparer.Ordinal).GetAlternateLookup<ReadOnlySpan<char>>();
        if (vocab.UserDefined.Count > 0)
        {
            userDefined = new PrefixTrie<char>();
            for (int i = 0; i < vocab.UserDefined.Count; i++) userDefined.Add(vocab.UserDefined[i], i);
        }
        hasUnused = vocab.ModelPieces.Values.Any(id => vocab.TypeOf(id) == PieceType.Unused);
        // Segments may be encoded independently when no producible piece contains "X▁" (X ≠ ▁).
        canSplit = whitespaceIsPrefix && !vocab.ModelPieces.Keys.Any(p =>
        {
            for (int i = 1; i < p.Length; i++)
                if (p[i] == space && p[i - 1] != space) return true;
            return false;
        });
    }

    /// <summary>Encodes a normalized text: (start, end, id) in UTF-16 units of <paramref name="text"/>.</summary>
    public List<(int Start, int End, int Id)> Encode(string text)
    {
        var result = new List<(int, int, int)>();
        if (text.Length == 0) return result;
        if (!canSplit)
        {
            EncodeSegment(text.AsSpan(), 0, result);
            return result;
        }
        int start = 0;
        for (int i = 1; i <= text.Length; i++)
        {
            if (i < text.Length && !(text[i] == space && text[i - 1] != space)) continue;
            var segment = text.AsSpan(start, i - start);
            if (segment.Length < 64)
            {
                if (!cacheLookup.TryGetValue(segment, out var cached))
                {
                    var list = new List<(int, int, int)>();
                    EncodeSegment(segment, 0, list);
                    cached = [.. list];
                    // ConcurrentDictionary.Count takes every lock, so the size is tracked separately.
                    if (Volatile.Read(ref cacheCount) < CacheCapacity && cache.TryAdd(segment.ToString(), cached)) Interlocked.Increment(ref cacheCount);
                }
                foreach (var (s, e, id) in cached) result.Add((s + start, e + start, id));
            }
            else
            {
                EncodeSegment(segment, start, result);
            }
            start = i;
        }
        return result;
    }

    private sealed class PairComparer : IComparer<(float Score, int Left)>
    {
        public static readonly PairComparer Instance = new();

        // Highest score first; among equal scores the leftmost pair.
        public int Compare((float Score, int Left) a, (float Score, int Left) b) =>
            a.Score != b.Score ? b.Score.CompareTo(a.Score) : a.Left.CompareTo(b.Left);
    }

    private void EncodeSegment(ReadOnlySpan<char> text, int shift, List<(int, int, int)> output)
    {
        // Symbols: [start, end) ranges of text with prev/next links; freeze = user-defined symbol.
        var starts = new List<int>();
        var ends = new List<int>();
        var frozen = new List<bool>();
        for (int i = 0; i < text.Length;)
        {
            int len = 0;
            if (userDefined is not null && userDefined.MayStartWith(text[i]))
            {
                var (v, e) = userDefined.LongestMatch(text, i);
                if (v >= 0) len = e - i;
            }
            bool freeze = len > 0;
            if (!freeze) len = char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]) ? 2 : 1;
            starts.Add(i);
            ends.Add(i + len);
            frozen.Add(freeze);
            i += len;
        }
        int n = starts.Count;
        if (n <= linearLimit && !hasUnused)
        {
            MergeLinear(text, shift, starts, ends, frozen, output);
            return;
        }
        var prev = new int[n];
        var next = new int[n];
        for (int k = 0; k < n; k++)
        {
            prev[k] = k - 1;
            next[k] = k + 1 < n ? k + 1 : -1;
        }
        var agenda = new PriorityQueue<(int Left, int Right, int Size), (float, int)>(PairComparer.Instance);
        Dictionary<string, (int LeftStart, int LeftEnd, int RightStart, int RightEnd)>? revMerge = null;
        void MaybeAdd(int left, int right, ReadOnlySpan<char> t)
        {
            if (left < 0 || right < 0 || frozen[left] || frozen[right]) return;
            var piece = t[starts[left]..ends[right]];
            if (!pieceLookup.TryGetValue(piece, out int id)) return;
            agenda.Enqueue((left, right, piece.Length), (vocab.Entries[id].Score, left));
            if (vocab.TypeOf(id) == PieceType.Unused)
                (revMerge ??= new(StringComparer.Ordinal))[piece.ToString()] = (starts[left], ends[left], starts[right], ends[right]);
        }
        for (int k = 1; k < n; k++) MaybeAdd(k - 1, k, text);
        while (agenda.TryDequeue(out var top, out _))
        {
            int l = top.Left, r = top.Right;
            if (starts[l] == ends[l] || starts[r] == ends[r] || (ends[l] - starts[l]) + (ends[r] - starts[r]) != top.Size) continue;
            ends[l] = ends[r];
            next[l] = next[r];
            if (next[r] >= 0) prev[next[r]] = l;
            ends[r] = starts[r];
            MaybeAdd(prev[l], l, text);
            MaybeAdd(l, next[l], text);
        }
        for (int k = 0; k < n && k >= 0; k = next[k])
        {
            Resegment(text, starts[k], ends[k], shift, revMerge, output);
            if (next[k] < 0) break;
        }
    }

    // Short segments without unused pieces: each step merges the adjacent pair whose concatenation is the
    // highest-scoring piece (leftmost on ties), which is the pair the C++ agenda pops, so the result is the same.
    private void MergeLinear(ReadOnlySpan<char> text, int shift, List<int> starts, List<int> ends, List<bool> frozen, List<(int, int, int)> output)
    {
        int n = starts.Count;
        Span<float> score = stackalloc float[n];
        Span<bool> valid = stackalloc bool[n];
        void Pair(ReadOnlySpan<char> t, int k, Span<float> sc, Span<bool> ok)
        {
            ok[k] = false;
            if (k + 1 >= starts.Count || frozen[k] || frozen[k + 1]) return;
            if (pieceLookup.TryGetValue(t[starts[k]..ends[k + 1]], out int id))
            {
                ok[k] = true;
                sc[k] = vocab.Entries[id].Score;
            }
        }
        for (int k = 0; k + 1 < n; k++) Pair(text, k, score, valid);
        while (true)
        {
            int best = -1;
            for (int k = 0; k + 1 < starts.Count; k++)
                if (valid[k] && (best < 0 || score[k] > score[best])) best = k;
            if (best < 0) break;
            ends[best] = ends[best + 1];
            starts.RemoveAt(best + 1);
            ends.RemoveAt(best + 1);
            frozen.RemoveAt(best + 1);
            for (int k = best + 1; k < starts.Count; k++)
            {
                score[k] = score[k + 1];
                valid[k] = valid[k + 1];
            }
            Pair(text, best, score, valid);
            if (best > 0) Pair(text, best - 1, score, valid);
        }
        for (int k = 0; k < starts.Count; k++)
        {
            var piece = text[starts[k]..ends[k]];
            int id = pieceLookup.TryGetValue(piece, out int pid) ? pid : vocab.PieceToId(piece.ToString());
            output.Add((starts[k] + shift, ends[k] + shift, id));
        }
    }

    private void Resegment(ReadOnlySpan<char> text, int s, int e, int shift, Dictionary<string, (int, int, int, int)>? revMerge, List<(int, int, int)> output)
    {
        var piece = text[s..e];
        int id = pieceLookup.TryGetValue(piece, out int pid) ? pid : vocab.PieceToId(piece.ToString());
        if (revMerge is not null && vocab.TypeOf(id) == PieceType.Unused && revMerge.TryGetValue(piece.ToString(), out var split))
        {
            Resegment(text, split.Item1, split.Item2, shift, revMerge, output);
            Resegment(text, split.Item3, split.Item4, shift, revMerge, output);
            return;
        }
        output.Add((s + shift, e + shift, id));
    }
}
