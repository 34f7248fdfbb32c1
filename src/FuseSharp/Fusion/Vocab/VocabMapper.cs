using System.Numerics;
using FuseSharp.Diagnostics;
using FuseSharp.Fusion.Alignment;

namespace FuseSharp.Fusion.Vocab;

/// <summary>
/// Builds the EM and MinED vocabulary maps (spec §3.1, FuseLLM <c>vocab_mapping.py --vocab_mapping_type default</c>).
/// For every blending piece x: key = x with the blending marker replaced by the base marker; if key is a base piece
/// it maps to itself, otherwise (MinED) to the base piece nearest by Levenshtein distance over code points, the lowest
/// id on ties (the first minimum in <c>get_vocab()</c> order, which is id order for the slow Llama tokenizer).
/// Nothing else is normalised, as in the reference (byte-level <c>Ċ</c>, mojibake and special tokens get whatever
/// piece is nearest).
/// <para>
/// Speed: the reference computes |V_s|·|V_b| distances (1.6e9 for 50k × 32k) on 64 processes for hours. Here the base
/// pieces are bucketed by length; a key visits buckets in order of increasing length difference d and stops when
/// d exceeds the best distance so far (|len(a) − len(b)| is a lower bound), each distance is computed bit-parallel
/// with the current best as a cut-off, code points are interned into a dense alphabet so the pattern's match masks
/// are one array lookup, and keys run on all cores. The result does not depend on the thread count.
/// </para>
/// </summary>
public static class VocabMapper
{
    /// <summary>The EM map: exact matches after marker harmonisation; everything else unmapped.</summary>
    public static VocabMap Exact(TokenVocabulary blending, TokenVocabulary @base)
    {
        ArgumentNullException.ThrowIfNull(blending);
        ArgumentNullException.ThrowIfNull(@base);
        var keys = VocabMap.HarmonisedKeys(blending, @base.Marker);
        var target = new int[keys.Length];
        int exact = 0;
        for (int i = 0; i < keys.Length; i++)
        {
            target[i] = keys[i] is { } k && @base.Id(k) is int b ? b : -1;
            if (target[i] >= 0) exact++;
        }
        return new VocabMap(VocabMapType.Em, target, keys, null, new VocabMapStats(exact, exact, 0, keys.Length - exact, 0));
    }

    /// <summary>The MinED map: exact match, else the nearest base piece (lowest id on ties).</summary>
    public static VocabMap MinEd(TokenVocabulary blending, TokenVocabulary @base, IProgressReporter? progress = null, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(blending);
        ArgumentNullException.ThrowIfNull(@base);
        var keys = VocabMap.HarmonisedKeys(blending, @base.Marker);
        var index = new NearestPieceIndex(@base);
        var target = new int[keys.Length];
        var distance = new int[keys.Length];
        Array.Fill(target, -1);
        int exact = 0;
        var pending = new List<int>();
        for (int i = 0; i < keys.Length; i++)
        {
            if (keys[i] is not { } k) continue;
            // The reference tests `tmp_x in base_tokens` (list membership): exact pieces map to themselves.
            if (@base.Id(k) is int b && @base.Piece(b) == k)
            {
                target[i] = b;
                exact++;
            }
            else
            {
                pending.Add(i);
            }
        }
        using var task = (progress ?? NullProgress.Instance).Start("MinED vocabulary map", pending.Count);
        // Chunks of 64 keys, one search state (match-mask table) per chunk.
        var chunks = Enumerable.Range(0, (pending.Count + 63) / 64).ToList();
        FusionParallel.ForEach(chunks, chunk =>
        {
            var search = index.NewSearch();
            int end = Math.Min(pending.Count, (chunk + 1) * 64);
            for (int r = chunk * 64; r < end; r++)
            {
                int i = pending[r];
                (target[i], distance[i]) = search.Nearest(keys[i]!);
            }
            task.Advance(end - chunk * 64);
        }, cancel);
        cancel.ThrowIfCancellationRequested();
        int nearest = pending.Count(i => target[i] >= 0);
        int unmapped = target.Count(t => t < 0);
        return new VocabMap(VocabMapType.MinEd, target, keys, distance, new VocabMapStats(exact + nearest, exact, nearest, unmapped, 0));
    }

    /// <summary>
    /// FuseChat v2's MinED map as shipped (<c>align_type soft</c>, spec §3.2): exact matches after marker replacement
    /// as usual, but every other token maps to the first entry of the base vocabulary (<c>editdistance.eval</c> is
    /// given the whole vocabulary array and returns one scalar, whose <c>argmin</c> is 0) — id 0 for Llama-2
    /// (<c>&lt;unk&gt;</c>). Only for reproducing FuseChat v2 runs; <see cref="MinEd"/> is the intended map.
    /// </summary>
    public static VocabMap MinEdFuseChatV2AsShipped(TokenVocabulary blending, TokenVocabulary @base)
    {
        ArgumentNullException.ThrowIfNull(blending);
        ArgumentNullException.ThrowIfNull(@base);
        var keys = VocabMap.HarmonisedKeys(blending, @base.Marker);
        int first = Enumerable.Range(0, @base.Count).First(i => @base.Piece(i) is not null);
        var target = new int[keys.Length];
        int exact = 0;
        for (int i = 0; i < keys.Length; i++)
        {
            if (keys[i] is not { } k) { target[i] = -1; continue; }
            if (@base.Id(k) is int b) { target[i] = b; exact++; }
            else target[i] = first;
        }
        int unmapped = target.Count(t => t < 0);
        return new VocabMap(VocabMapType.MinEd, target, keys, null, new VocabMapStats(target.Length - unmapped, exact, target.Length - unmapped - exact, unmapped, 0));
    }

    /// <summary>
    /// The reference MinED search for one key: the full scan over all base pieces in id order with the plain distance.
    /// The test oracle for the bucketed search, and the benchmark baseline.
    /// </summary>
    public static (int BaseId, int Distance) NearestReference(string key, TokenVocabulary @base)
    {
        ArgumentNullException.ThrowIfNull(@base);
        var a = Levenshtein.CodePoints(key);
        int best = int.MaxValue, bestId = -1;
        for (int id = 0; id < @base.Count; id++)
        {
            if (@base.Piece(id) is not { } p) continue;
            int d = Levenshtein.DistanceReference(a, Levenshtein.CodePoints(p));
            if (d < best) { best = d; bestId = id; }
        }
        return (bestId, best);
    }

    /// <summary>The base pieces bucketed by code-point length over an interned alphabet.</summary>
    internal sealed class NearestPieceIndex
    {
        private readonly Dictionary<int, int> _alphabet = [];
        private readonly int[][] _bucketIds;    // length -> base ids (ascending)
        private readonly int[][][] _bucketText; // length -> interned code points per id
        private readonly ulong[][] _bucketSig;  // length -> character-set signature per id

        public NearestPieceIndex(TokenVocabulary @base)
        {
            var byLength = new SortedDictionary<int, List<(int Id, int[] Text)>>();
            for (int id = 0; id < @base.Count; id++)
            {
                if (@base.Piece(id) is not { } p) continue;
                var text = Intern(Levenshtein.CodePoints(p), add: true);
                if (!byLength.TryGetValue(text.Length, out var list)) byLength[text.Length] = list = [];
                list.Add((id, text));
            }
            int maxLen = byLength.Count == 0 ? 0 : byLength.Keys.Max();
            _bucketIds = new int[maxLen + 1][];
            _bucketText = new int[maxLen + 1][][];
            _bucketSig = new ulong[maxLen + 1][];
            for (int l = 0; l <= maxLen; l++)
            {
                var list = byLength.TryGetValue(l, out var v) ? v : [];
                _bucketIds[l] = list.Select(x => x.Id).ToArray();
                _bucketText[l] = list.Select(x => x.Text).ToArray();
                _bucketSig[l] = list.Select(x => Signature(x.Text)).ToArray();
            }
        }

        /// <summary>
        /// A 64-bit set of the string's characters (interned id mod 64; unknown characters use bit 63). For strings a,
        /// b, popcount(sig(a) &amp; ~sig(b)) counts character classes of a that b lacks entirely; each needs at least
        /// one edit, so it is a lower bound of the distance (a shared bit can only lower the count).
        /// </summary>
        private static ulong Signature(int[] text)
        {
            ulong s = 0;
            foreach (int c in text) s |= 1UL << (c < 0 ? 63 : c & 63);
            return s;
        }

        /// <summary>Dense alphabet size; code points not in any base piece share the id -1 (they match nothing).</summary>
        public int AlphabetSize => _alphabet.Count;

        public Search NewSearch() => new(this);

        private int[] Intern(int[] cps, bool add)
        {
            var r = new int[cps.Length];
            for (int i = 0; i < cps.Length; i++)
            {
                if (!_alphabet.TryGetValue(cps[i], out int k))
                {
                    if (add) _alphabet[cps[i]] = k = _alphabet.Count;
                    else k = -1;
                }
                r[i] = k;
            }
            return r;
        }

        /// <summary>One thread's search state: the pattern's match-mask table over the alphabet.</summary>
        internal sealed class Search
        {
            private readonly NearestPieceIndex _index;
            private readonly ulong[] _peq;

            public Search(NearestPieceIndex index)
            {
                _index = index;
                _peq = new ulong[index.AlphabetSize];
            }

            /// <summary>The nearest base piece to <paramref name="key"/>: (lowest id among the minimum distance, that distance).</summary>
            public (int Id, int Distance) Nearest(string key)
            {
                var a = _index.Intern(Levenshtein.CodePoints(key), add: false);
                int la = a.Length;
                ulong sigA = Signature(a);
                bool word = la is > 0 and <= Levenshtein.WordBits;
                if (word)
                {
                    for (int i = 0; i < la; i++)
                    {
                        if (a[i] >= 0) _peq[a[i]] |= 1UL << i;
                    }
                }
                int best = int.MaxValue, bestId = -1;
                int maxLen = _index._bucketIds.Length - 1;
                try
                {
                    for (int d = 0; d <= best; d++)
                    {
                        // Lengths la - d and la + d (once for d = 0); a shorter bucket first is as good as any order:
                        // ties are decided by id, not by visiting order.
                        for (int side = 0; side < (d == 0 ? 1 : 2); side++)
                        {
                            int len = side == 0 ? la - d : la + d;
                            if (len < 0 || len > maxLen) continue;
                            var ids = _index._bucketIds[len];
                            var texts = _index._bucketText[len];
                            var sigs = _index._bucketSig[len];
                            for (int k = 0; k < ids.Length; k++)
                            {
                                int lower = Math.Max(d, Math.Max(BitOperations.PopCount(sigA & ~sigs[k]), BitOperations.PopCount(sigs[k] & ~sigA)));
                                if (lower > best || (lower == best && ids[k] > bestId)) continue;
                                int dist = Distance(a, texts[k], word, best);
                                if (dist < best || (dist == best && ids[k] < bestId))
                                {
                                    best = dist;
                                    bestId = ids[k];
                                }
                            }
                        }
                        if (d > maxLen + la) break;
                    }
                }
                finally
                {
                    if (word)
                    {
                        for (int i = 0; i < la; i++)
                        {
                            if (a[i] >= 0) _peq[a[i]] = 0;
                        }
                    }
                }
                return (bestId, best);
            }

            private int Distance(int[] a, int[] b, bool word, int bound)
            {
                if (a.Length == 0) return b.Length;
                if (b.Length == 0) return a.Length;
                int cap = bound == int.MaxValue ? int.MaxValue - 1 : bound;
                // Base pieces are interned (ids >= 0), so their characters index the pattern's masks directly.
                return word ? Levenshtein.Myers(_peq, b, a.Length, cap) : Levenshtein.DistanceBounded(a, b, cap);
            }
        }
    }
}
