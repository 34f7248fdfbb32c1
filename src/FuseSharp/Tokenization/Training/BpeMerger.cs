using System.Runtime.InteropServices;
using FuseSharp.Diagnostics;

namespace FuseSharp.Tokenization.Training;

/// <summary>What BPE does when the best pair concatenates to a string that is already a token.</summary>
internal enum DuplicateMerge
{
    /// <summary>The merge is recorded and produces the existing token (Hugging Face's <c>BpeTrainer</c>).</summary>
    ReuseToken,

    /// <summary>The pair is dropped and never merged (SentencePiece's BPE trainer: "aa"+"a" after "a"+"aa").</summary>
    SkipPair,
}

/// <summary>
/// The BPE merge loop over counted words: every unique word is a sequence of symbol ids (-1 = a character that is no
/// symbol, which nothing merges across) with its count. Pair counts are kept incrementally: merging a pair touches only
/// the words that contain it (an inverted index), where the pair and its two neighbours lose the word's count and the
/// new neighbours gain it. The best pair comes from a lazily updated heap ordered by count, then by
/// <see cref="BpeTieBreak"/>. Within a word, occurrences merge left to right without overlap ("aaa" → "aa a"), as in
/// every reference. The result does not depend on the order of the words.
/// </summary>
/// <remarks>
/// Hugging Face's trainer does not subtract the merged pair's own count inside overlapping runs (after merging
/// "a a a a" its count for ("a","a") stays positive); the pair is then never chosen again, so its merges are unaffected,
/// and here the counts are exact, as in the cs336 reference and SentencePiece.
/// </remarks>
internal sealed class BpeMerger
{
    /// <summary>The symbols (base alphabet first, then the tokens merges created) and the merges (left, right, result) in order.</summary>
    public sealed record Result(List<string> Symbols, List<(int Left, int Right, int Merged)> Merges, int ZeroCountMerges);

    private readonly List<string> texts = [];
    private readonly List<int[]> codePoints = [];
    private readonly List<byte[]> bytes = [];
    private readonly Dictionary<string, int> byText = new(StringComparer.Ordinal);
    private readonly BpeTieBreak tieBreak;
    private readonly PieceRules rules;
    private readonly DuplicateMerge duplicates;

    // Every pair seen so far, one hash lookup per update: its count, the words that may contain it (with duplicates
    // and stale entries), and whether it may still be merged (false: an invalid piece, a skipped duplicate, or merged).
    private readonly Dictionary<long, Pair> pairs = [];
    private readonly List<(long Key, Pair Pair)> touched = [];

    private sealed class Pair
    {
        public long Count;
        public List<int>? Words;
        public bool Live;
        public bool Touched;
    }

    /// <param name="alphabet">the base symbols, in id order</param>
    /// <param name="toBytes">the bytes a token stands for (tie-break <see cref="BpeTieBreak.GreatestBytes"/>)</param>
    /// <param name="tieBreak">how equal counts are ordered</param>
    /// <param name="rules">which merged pieces are allowed</param>
    /// <param name="duplicates">what a merge into an existing token does</param>
    public BpeMerger(IReadOnlyList<string> alphabet, Func<string, byte[]> toBytes, BpeTieBreak tieBreak, PieceRules rules, DuplicateMerge duplicates)
    {
        this.tieBreak = tieBreak;
        this.rules = rules;
        this.duplicates = duplicates;
        foreach (var s in alphabet)
        {
            if (byText.ContainsKey(s)) throw new ArgumentException($"alphabet symbol '{s}' is listed twice", nameof(alphabet));
            AddSymbol(s, CodePoints(s), tieBreak == BpeTieBreak.GreatestBytes ? toBytes(s) : []);
        }
    }

    /// <summary>
    /// Merges until <paramref name="newSymbols"/> new tokens exist, no pair is left, or the best pair occurs fewer than
    /// <paramref name="minFrequency"/> times. With <paramref name="zeroCountMerges"/> (SentencePiece), once every pair
    /// has count 0 the pairs seen earlier keep being added in tie-break order, as SentencePiece's trainer does with the
    /// stale symbols left in its queue.
    /// </summary>
    /// <param name="words">per unique word, its symbol ids (rewritten in place)</param>
    /// <param name="counts">per unique word, its count</param>
    /// <param name="newSymbols">how many tokens to learn</param>
    /// <param name="minFrequency">the smallest count a merged pair may have</param>
    /// <param name="zeroCountMerges">continue with pairs of count 0 once the text has no pairs left</param>
    /// <param name="progress">advanced once per learnt token</param>
    /// <param name="cancellation">checked once per merge</param>
    public Result Train(int[][] words, long[] counts, int newSymbols, long minFrequency, bool zeroCountMerges, IProgressTask? progress, CancellationToken cancellation)
    {
        var lengths = new int[words.Length];
        for (int w = 0; w < words.Length; w++)
        {
            var s = words[w];
            lengths[w] = s.Length;
            for (int i = 0; i + 1 < s.Length; i++) Inc(s[i], s[i + 1], counts[w], w);
        }
        var heap = new PriorityQueue<long, (long Count, long Key)>(pairs.Count, new PairOrder(this));
        foreach (var (key, p) in pairs)
        {
            p.Touched = false;
            if (p.Live && p.Count > 0) heap.Enqueue(key, (p.Count, key));
        }
        touched.Clear();

        var merges = new List<(int, int, int)>();
        var stamp = new int[words.Length];
        int created = 0, pass = 0;
        bool exhausted = false;
        while (created < newSymbols)
        {
            cancellation.ThrowIfCancellationRequested();
            if (!TryPopBest(heap, out long key, out long count))
            {
                exhausted = true;
                break;
            }
            if (count < minFrequency) break;
            var (a, b) = Split(key);
            var merged = string.Concat(texts[a], texts[b]);
            if (!byText.TryGetValue(merged, out int id))
            {
                id = AddMerged(a, b, merged);
                created++;
                progress?.Advance();
            }
            else if (duplicates == DuplicateMerge.SkipPair)
            {
                Retire(pairs[key]);
                continue;
            }
            merges.Add((a, b, id));
            pass++;
            var merging = pairs[key];
            foreach (int w in merging.Words!)
            {
                if (stamp[w] == pass) continue;
                stamp[w] = pass;
                MergeWord(words[w], ref lengths[w], counts[w], w, a, b, id);
            }
            Retire(merging);
            foreach (var (k, p) in touched)
            {
                p.Touched = false;
                if (p.Live && p.Count > 0) heap.Enqueue(k, (p.Count, k));
            }
            touched.Clear();
        }
        int zero = 0;
        if (zeroCountMerges && exhausted && created < newSymbols)
        {
            var done = new HashSet<long>(merges.Select(m => Key(m.Item1, m.Item2)));
            var order = new PairOrder(this);
            var stale = pairs.Where(kv => kv.Value.Live && !done.Contains(kv.Key)).Select(kv => kv.Key).ToList();
            stale.Sort((x, y) => order.Compare((0, x), (0, y)));
            foreach (var key in stale)
            {
                if (created == newSymbols) break;
                var (a, b) = Split(key);
                var merged = string.Concat(texts[a], texts[b]);
                if (byText.ContainsKey(merged)) continue;
                merges.Add((a, b, AddMerged(a, b, merged)));
                created++;
                zero++;
                progress?.Advance();
            }
        }
        return new Result(texts, merges, zero);
    }

    private bool TryPopBest(PriorityQueue<long, (long Count, long Key)> heap, out long key, out long count)
    {
        while (heap.TryDequeue(out key, out var entry))
        {
            var p = pairs[key];
            count = p.Count;
            if (!p.Live || count <= 0) continue;
            if (entry.Count == count) return true;
            // The count fell since this entry was queued: queue it again with the current count. (A count that rose
            // was queued anew when it rose, so an entry below the current count is simply dropped.)
            if (entry.Count > count) heap.Enqueue(key, (count, key));
        }
        count = 0;
        return false;
    }

    // Rewrites one word in place (occurrences left to right, no overlap) and moves its count between pairs.
    private void MergeWord(int[] s, ref int length, long c, int w, int a, int b, int merged)
    {
        int n = length, j = 0;
        for (int i = 0; i < n;)
        {
            if (i + 1 < n && s[i] == a && s[i + 1] == b)
            {
                if (j > 0)
                {
                    Dec(s[j - 1], a, c);
                    Inc(s[j - 1], merged, c, w);
                }
                Dec(a, b, c);
                if (i + 2 < n)
                {
                    Dec(b, s[i + 2], c);
                    Inc(merged, s[i + 2], c, w);
                }
                s[j++] = merged;
                i += 2;
            }
            else
            {
                s[j++] = s[i++];
            }
        }
        length = j;
    }

    private void Inc(int x, int y, long c, int w)
    {
        if (x < 0 || y < 0) return;
        long key = Key(x, y);
        ref var p = ref CollectionsMarshal.GetValueRefOrAddDefault(pairs, key, out bool exists);
        if (!exists) p = new Pair { Live = IsValid(x, y) };
        var pair = p!;
        if (!pair.Live) return;
        pair.Count += c;
        var list = pair.Words ??= [];
        if (list.Count == 0 || list[^1] != w) list.Add(w);
        if (pair.Touched) return;
        pair.Touched = true;
        touched.Add((key, pair));
    }

    private void Dec(int x, int y, long c)
    {
        if (x < 0 || y < 0) return;
        if (pairs.TryGetValue(Key(x, y), out var p) && p.Live) p.Count -= c;
    }

    // A pair that will never be merged (again): merged, or skipped as a duplicate.
    private static void Retire(Pair p)
    {
        p.Live = false;
        p.Count = 0;
        p.Words = null;
    }

    private bool IsValid(int a, int b)
    {
        int la = codePoints[a].Length, lb = codePoints[b].Length;
        Span<int> both = la + lb <= 64 ? stackalloc int[la + lb] : new int[la + lb];
        codePoints[a].CopyTo(both);
        codePoints[b].CopyTo(both[la..]);
        return rules.IsValid(both);
    }

    private int AddMerged(int a, int b, string text) => AddSymbol(text, [.. codePoints[a], .. codePoints[b]], [.. bytes[a], .. bytes[b]]);

    private int AddSymbol(string text, int[] cps, byte[] utf8)
    {
        int id = texts.Count;
        texts.Add(text);
        codePoints.Add(cps);
        bytes.Add(utf8);
        byText[text] = id;
        return id;
    }

    private static int[] CodePoints(string s)
    {
        var list = new List<int>(s.Length);
        foreach (var r in s.EnumerateRunes()) list.Add(r.Value);
        return [.. list];
    }

    private static long Key(int a, int b) => ((long)a << 32) | (uint)b;

    private static (int A, int B) Split(long key) => ((int)(key >> 32), (int)key);

    /// <summary>Heap order: higher count first, then the tie-break rule; the pair ids settle exact ties (duplicates).</summary>
    private sealed class PairOrder(BpeMerger m) : IComparer<(long Count, long Key)>
    {
        public int Compare((long Count, long Key) x, (long Count, long Key) y)
        {
            if (x.Count != y.Count) return x.Count > y.Count ? -1 : 1;
            if (x.Key == y.Key) return 0;
            var (xa, xb) = Split(x.Key);
            var (ya, yb) = Split(y.Key);
            int c = m.tieBreak switch
            {
                BpeTieBreak.LowestIds => 0, // the key order below is (left id, right id)
                BpeTieBreak.GreatestBytes => -CompareGreatest(xa, xb, ya, yb),
                _ => CompareSentencePiece(xa, xb, ya, yb),
            };
            return c != 0 ? c : x.Key.CompareTo(y.Key);
        }

        // Python's comparison of (bytes, bytes) tuples.
        private int CompareGreatest(int xa, int xb, int ya, int yb)
        {
            int c = m.bytes[xa].AsSpan().SequenceCompareTo(m.bytes[ya]);
            return c != 0 ? c : m.bytes[xb].AsSpan().SequenceCompareTo(m.bytes[yb]);
        }

        // Shorter merged piece first, then code point order of the merged piece (std::string order of UTF-8).
        private int CompareSentencePiece(int xa, int xb, int ya, int yb)
        {
            int[] x1 = m.codePoints[xa], x2 = m.codePoints[xb], y1 = m.codePoints[ya], y2 = m.codePoints[yb];
            int lx = x1.Length + x2.Length, ly = y1.Length + y2.Length;
            if (lx != ly) return lx < ly ? -1 : 1;
            for (int i = 0; i < lx; i++)
            {
                int cx = i < x1.Length ? x1[i] : x2[i - x1.Length];
                int cy = i < y1.Length ? y1[i] : y2[i - y1.Length];
                if (cx != cy) return cx < cy ? -1 : 1;
            }
            return 0;
        }
    }
}
