using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace FuseSharp.Tokenization.Models;

/// <summary>Options of a BPE model (the fields of HF's <c>BPE</c>).</summary>
public sealed record BpeOptions
{
    public string? UnkToken { get; init; }

    public string? ContinuingSubwordPrefix { get; init; }

    public string? EndOfWordSuffix { get; init; }

    /// <summary>Consecutive unknown characters become one unknown token.</summary>
    public bool FuseUnk { get; init; }

    /// <summary>Characters missing from the vocabulary become their UTF-8 bytes as <c>&lt;0xNN&gt;</c> tokens.</summary>
    public bool ByteFallback { get; init; }

    /// <summary>A word that is itself in the vocabulary is one token, whatever the merges say (tiktoken / Llama-3 behaviour).</summary>
    public bool IgnoreMerges { get; init; }
}

/// <summary>
/// Byte-pair encoding with ranked merges (HF <c>BPE</c>): a word starts as its characters (with unknown-character
/// and byte-fallback handling) and the adjacent pair with the lowest merge rank is merged until none applies; ties go
/// to the leftmost pair. Dropout is a training-time option and is always off here. Results of words shorter than
/// 256 units are cached (HF caches 10 000 words the same way).
/// </summary>
public sealed class BpeModel : ITokenizerModel
{
    private const int CacheCapacity = 100_000;
    private const int MaxCachedWordLength = 256;
    private const int LinearMergeLimit = 48;

    private readonly Dictionary<string, int> vocab;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> vocabSpan;
    private readonly string?[] vocabR;
    private readonly Dictionary<long, (int Rank, int NewId)> merges = [];
    private readonly int? unkId;
    private readonly int[]? byteIds;
    private readonly bool splitAtMarker;
    private const int SmallChars = 0x800;
    private readonly int[] smallCharIds = new int[SmallChars]; // id of each one-character token below U+0800 (byte-level alphabets live there), -1 if none
    private int cacheCount;

    // tiktoken: a pair merges when its concatenation is a token; rank and new id are that token's id (no merge table).
    private bool ranksFromVocab;
    private readonly ConcurrentDictionary<string, int[]> cache = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, int[]>.AlternateLookup<ReadOnlySpan<char>> cacheSpan;

    /// <summary>Builds a BPE model; every merge must name two vocabulary tokens whose concatenation is in the vocabulary.</summary>
    /// <param name="vocab">token → id</param>
    /// <param name="merges">the merges in rank order (rank = index)</param>
    /// <param name="options">the model options</param>
    /// <param name="describeMerge">names merge k in error messages (file and line)</param>
    /// <exception cref="TokenizerException">A merge or the unknown token is not in the vocabulary.</exception>
    public BpeModel(Dictionary<string, int> vocab, IReadOnlyList<(string A, string B)> merges, BpeOptions options, Func<int, string>? describeMerge = null)
        : this(vocab, options)
    {
        describeMerge ??= k => $"merge {k}";
        int prefixLen = options.ContinuingSubwordPrefix?.Length ?? 0;
        this.merges = new Dictionary<long, (int, int)>(merges.Count);
        for (int k = 0; k < merges.Count; k++)
        {
            var (a, b) = merges[k];
            if (!vocab.TryGetValue(a, out int ia)) throw new TokenizerException($"{describeMerge(k)}: token '{a}' is not in the vocabulary");
            if (!vocab.TryGetValue(b, out int ib)) throw new TokenizerException($"{describeMerge(k)}: token '{b}' is not in the vocabulary");
            var merged = string.Concat(a, b.AsSpan(Math.Min(prefixLen, b.Length)));
            if (!vocab.TryGetValue(merged, out int inew)) throw new TokenizerException($"{describeMerge(k)}: merged token '{merged}' is not in the vocabulary");
            this.merges[Key(ia, ib)] = (k, inew);
        }
    }

    /// <summary>
    /// Builds a rank-based BPE (tiktoken): a pair may merge when its concatenation is a token, with that token's id as
    /// rank, so the lowest-id merge applies first, as tiktoken's <c>byte_pair_merge</c> does.
    /// </summary>
    public static BpeModel FromRanks(Dictionary<string, int> vocab, BpeOptions options) => new(vocab, options) { ranksFromVocab = true };

    private BpeModel(Dictionary<string, int> vocab, BpeOptions options)
    {
        this.vocab = vocab;
        vocabSpan = vocab.GetAlternateLookup<ReadOnlySpan<char>>();
        cacheSpan = cache.GetAlternateLookup<ReadOnlySpan<char>>();
        Options = options;
        int maxId = vocab.Count == 0 ? -1 : vocab.Values.Max();
        vocabR = new string?[maxId + 1];
        foreach (var (t, id) in vocab)
        {
            if (id < 0) throw new TokenizerException($"BPE vocabulary: token '{t}' has a negative id {id}");
            vocabR[id] = t;
        }
        if (options.UnkToken is not null && vocab.TryGetValue(options.UnkToken, out int u)) unkId = u;
        Array.Fill(smallCharIds, -1);
        foreach (var (t, id) in vocab)
            if (t.Length == 1 && t[0] < SmallChars) smallCharIds[t[0]] = id;
        // A merge across "X▁" (X ≠ ▁) would create a token containing it; without such tokens, words split there.
        splitAtMarker = vocab.ContainsKey("\u2581") && options.ContinuingSubwordPrefix is null && options.EndOfWordSuffix is null
            && !vocab.Keys.Any(t =>
            {
                for (int i = 1; i < t.Length; i++)
                    if (t[i] == '\u2581' && t[i - 1] != '\u2581') return true;
                return false;
            });
        if (options.ByteFallback)
        {
            byteIds = new int[256];
            for (int b = 0; b < 256; b++)
                byteIds[b] = vocab.TryGetValue(ByteToken((byte)b), out int id) ? id : -1;
        }
    }

    public BpeOptions Options { get; }

    public int VocabSize => vocab.Count;

    public IReadOnlyDictionary<string, int> Vocab => vocab;

    public string? UnkToken => Options.UnkToken;

    /// <summary>Number of merges (0 for a rank-based model, whose merges are implied by the vocabulary).</summary>
    public int MergeCount => merges.Count;

    /// <summary>The byte-fallback piece of a byte: "&lt;0x0A&gt;".</summary>
    public static string ByteToken(byte b) => string.Create(CultureInfo.InvariantCulture, $"<0x{b:X2}>");

    private static long Key(int a, int b) => ((long)a << 32) | (uint)b;

    /// <summary>Reads HF's <c>"model": {"type": "BPE", ...}</c>.</summary>
    public static BpeModel FromJson(JsonSection j)
    {
        var vocab = ReadVocab(j.Child("vocab"));
        var merges = new List<(string, string)>();
        if (j.Has("merges"))
        {
            foreach (var m in j.Child("merges").Items())
            {
                if (m.Element.ValueKind == JsonValueKind.String)
                {
                    var s = m.AsString();
                    var parts = s.Split(' ');
                    if (parts.Length != 2) throw m.Error($"merge \"{s}\" must be two tokens separated by one space");
                    merges.Add((parts[0], parts[1]));
                }
                else
                {
                    var pair = m.Items().ToList();
                    if (pair.Count != 2) throw m.Error("a merge must be a pair of tokens");
                    merges.Add((pair[0].AsString(), pair[1].AsString()));
                }
            }
        }
        var options = new BpeOptions
        {
            UnkToken = j.GetStringOrNull("unk_token"),
            ContinuingSubwordPrefix = NullIfEmpty(j.GetStringOrNull("continuing_subword_prefix")),
            EndOfWordSuffix = NullIfEmpty(j.GetStringOrNull("end_of_word_suffix")),
            FuseUnk = j.GetBool("fuse_unk", false),
            ByteFallback = j.GetBool("byte_fallback", false),
            IgnoreMerges = j.GetBool("ignore_merges", false),
        };
        if (j.GetDoubleOrNull("dropout") is { } p && (p < 0 || p > 1)) throw j.Error($"dropout {p} must be in [0, 1]");
        var where = j.ToString();
        return new BpeModel(vocab, merges, options, k => $"{where}.merges[{k}]");
    }

    // An empty prefix/suffix changes nothing; treating it as absent keeps the fast paths open.
    private static string? NullIfEmpty(string? s) => string.IsNullOrEmpty(s) ? null : s;

    /// <summary>Reads a <c>{"token": id}</c> object.</summary>
    public static Dictionary<string, int> ReadVocab(JsonSection j)
    {
        var vocab = new Dictionary<string, int>(j.Element.ValueKind == JsonValueKind.Object ? j.Element.GetPropertyCount() : 0, StringComparer.Ordinal);
        foreach (var p in j.Element.ValueKind == JsonValueKind.Object ? j.Element.EnumerateObject() : throw j.Error("the vocabulary must be an object {\"token\": id}"))
        {
            if (p.Value.ValueKind != JsonValueKind.Number || !p.Value.TryGetInt32(out int id) || id < 0)
                throw j.Error($"token '{p.Name}' has no valid id");
            vocab[p.Name] = id;
        }
        return vocab;
    }

    public int? TokenToId(string token) => vocab.TryGetValue(token, out int id) ? id : null;

    public string? IdToToken(int id) => id >= 0 && id < vocabR.Length ? vocabR[id] : null;

    public void Tokenize(string word, List<ModelToken> output)
    {
        if (word.Length == 0) return;
        if (Options.IgnoreMerges && vocab.TryGetValue(word, out int whole))
        {
            output.Add(new ModelToken(whole, 0, word.Length));
            return;
        }
        if (word.Length >= MaxCachedWordLength && splitAtMarker)
        {
            // Long SentencePiece-style words (no pre-tokenizer): merges never cross a '▁' that follows another
            // character (checked at load), so the word is merged segment by segment, each one cached.
            int start = 0;
            for (int i = 1; i <= word.Length; i++)
            {
                if (i < word.Length && !(word[i] == '\u2581' && word[i - 1] != '\u2581')) continue;
                Append(Pieces(word.AsSpan(start, i - start), wholeWordLookup: false), start, output);
                start = i;
            }
            return;
        }
        Append(Pieces(word, wholeWordLookup: false), 0, output);
    }

    private static void Append(int[] pieces, int shift, List<ModelToken> output)
    {
        for (int k = 0; k < pieces.Length; k += 3) output.Add(new ModelToken(pieces[k], pieces[k + 1] + shift, pieces[k + 2] + shift));
    }

    /// <summary>
    /// The tokens of one word as (id, start, end) triples, from the cache when possible; no allocation on a cache hit.
    /// With <paramref name="wholeWordLookup"/>, honours <see cref="BpeOptions.IgnoreMerges"/> (a word that is a token is one token).
    /// </summary>
    internal int[] Pieces(ReadOnlySpan<char> word, bool wholeWordLookup = true)
    {
        if (wholeWordLookup && Options.IgnoreMerges && vocabSpan.TryGetValue(word, out int whole)) return [whole, 0, word.Length];
        if (cacheSpan.TryGetValue(word, out var pieces)) return pieces;
        var key = word.ToString();
        pieces = MergeWord(key, LinearMergeLimit);
        // ConcurrentDictionary.Count takes every lock (up to 1024 of them), so the size is tracked separately.
        if (word.Length < MaxCachedWordLength && Volatile.Read(ref cacheCount) < CacheCapacity && cache.TryAdd(key, pieces)) Interlocked.Increment(ref cacheCount);
        return pieces;
    }

    /// <summary>
    /// Splits a word into its initial symbols and merges them; returns (id, start, end) triples. Words with at most
    /// <paramref name="linearLimit"/> symbols use a linear scan for the lowest-ranked pair, longer ones the priority
    /// queue of HF's <c>Word::merge_all</c>; both pick the same pair each step (lowest rank, then leftmost).
    /// </summary>
    internal int[] MergeWord(string word, int linearLimit)
    {
        var ids = new List<int>(word.Length);
        var starts = new List<int>(word.Length);
        var ends = new List<int>(word.Length);
        int unk = -1, unkStart = 0, unkEnd = 0;
        Span<byte> utf8 = stackalloc byte[4];
        for (int i = 0; i < word.Length;)
        {
            int start = i;
            Unicode.UnicodeNormalization.NextCodePoint(word, ref i);
            bool first = start == 0, last = i == word.Length;
            int id = LookupSymbol(word, start, i, first, last);
            if (id >= 0)
            {
                if (unk >= 0)
                {
                    ids.Add(unk); starts.Add(unkStart); ends.Add(unkEnd);
                    unk = -1;
                }
                ids.Add(id); starts.Add(start); ends.Add(i);
                continue;
            }
            if (byteIds is not null)
            {
                // HF applies byte fallback to the symbol string (with prefix/suffix, if any); each byte gets the range of its character.
                var symbol = SymbolString(word, start, i, first, last);
                int n = System.Text.Encoding.UTF8.GetByteCount(symbol);
                Span<byte> bytes = n <= 4 ? utf8[..n] : new byte[n];
                System.Text.Encoding.UTF8.GetBytes(symbol, bytes);
                bool all = true;
                foreach (var b in bytes) all &= byteIds[b] >= 0;
                if (all)
                {
                    foreach (var b in bytes)
                    {
                        ids.Add(byteIds[b]); starts.Add(start); ends.Add(i);
                    }
                    continue;
                }
            }
            if (Options.UnkToken is null) continue; // HF drops characters it cannot represent when there is no unk token
            if (unkId is null) throw new TokenizerException($"BPE: the unknown token '{Options.UnkToken}' is not in the vocabulary");
            if (unk >= 0 && Options.FuseUnk)
            {
                unkEnd = i;
                continue;
            }
            if (unk >= 0)
            {
                ids.Add(unk); starts.Add(unkStart); ends.Add(unkEnd);
            }
            unk = unkId.Value;
            unkStart = start;
            unkEnd = i;
        }
        if (unk >= 0)
        {
            ids.Add(unk); starts.Add(unkStart); ends.Add(unkEnd);
        }
        if (ids.Count <= linearLimit) MergeLinear(ids, starts, ends);
        else MergeWithQueue(ids, starts, ends);
        var result = new int[ids.Count * 3];
        for (int k = 0; k < ids.Count; k++)
        {
            result[3 * k] = ids[k];
            result[(3 * k) + 1] = starts[k];
            result[(3 * k) + 2] = ends[k];
        }
        return result;
    }

    private string SymbolString(string word, int start, int end, bool first, bool last) =>
        string.Concat(!first && Options.ContinuingSubwordPrefix is { } p ? p : "", word.AsSpan(start, end - start), last && Options.EndOfWordSuffix is { } s ? s : "");

    private int LookupSymbol(string word, int start, int end, bool first, bool last)
    {
        bool plain = (first || Options.ContinuingSubwordPrefix is null) && (!last || Options.EndOfWordSuffix is null);
        if (plain && end - start == 1 && word[start] < SmallChars) return smallCharIds[word[start]];
        if (plain) return vocabSpan.TryGetValue(word.AsSpan(start, end - start), out int id) ? id : -1;
        return vocab.TryGetValue(SymbolString(word, start, end, first, last), out int id2) ? id2 : -1;
    }

    private bool TryMerge(int a, int b, out int rank, out int newId)
    {
        if (ranksFromVocab)
        {
            string sa = vocabR[a]!, sb = vocabR[b]!;
            int len = sa.Length + sb.Length;
            Span<char> both = len <= 256 ? stackalloc char[len] : new char[len];
            sa.AsSpan().CopyTo(both);
            sb.AsSpan().CopyTo(both[sa.Length..]);
            if (vocabSpan.TryGetValue(both, out int id))
            {
                rank = newId = id;
                return true;
            }
            rank = int.MaxValue;
            newId = -1;
            return false;
        }
        if (merges.TryGetValue(Key(a, b), out var m))
        {
            rank = m.Rank;
            newId = m.NewId;
            return true;
        }
        rank = int.MaxValue;
        newId = -1;
        return false;
    }

    // Fast path: pair ranks cached per position; each step takes the lowest rank, leftmost on ties.
    private void MergeLinear(List<int> ids, List<int> starts, List<int> ends)
    {
        int n = ids.Count;
        if (n < 2) return;
        Span<int> rank = stackalloc int[n];
        Span<int> newId = stackalloc int[n];
        for (int k = 0; k + 1 < n; k++) TryMerge(ids[k], ids[k + 1], out rank[k], out newId[k]);
        while (n > 1)
        {
            int best = -1, bestRank = int.MaxValue;
            for (int k = 0; k + 1 < n; k++)
            {
                if (rank[k] < bestRank)
                {
                    bestRank = rank[k];
                    best = k;
                }
            }
            if (best < 0) break;
            ids[best] = newId[best];
            ends[best] = ends[best + 1];
            ids.RemoveAt(best + 1);
            starts.RemoveAt(best + 1);
            ends.RemoveAt(best + 1);
            for (int k = best + 1; k + 1 < n; k++)
            {
                rank[k] = rank[k + 1];
                newId[k] = newId[k + 1];
            }
            n--;
            if (best + 1 < n) TryMerge(ids[best], ids[best + 1], out rank[best], out newId[best]);
            else rank[best] = int.MaxValue;
            if (best > 0) TryMerge(ids[best - 1], ids[best], out rank[best - 1], out newId[best - 1]);
        }
    }

    // Reference algorithm (HF Word::merge_all): a priority queue of (rank, position) over a linked list of symbols,
    // with stale entries skipped when popped.
    internal void MergeWithQueue(List<int> ids, List<int> starts, List<int> ends)
    {
        int n = ids.Count;
        if (n < 2) return;
        var prev = new int[n];
        var next = new int[n];
        var alive = new bool[n];
        for (int k = 0; k < n; k++)
        {
            prev[k] = k - 1;
            next[k] = k + 1 < n ? k + 1 : -1;
            alive[k] = true;
        }
        var queue = new PriorityQueue<(int Pos, int NewId), long>();
        for (int k = 0; k + 1 < n; k++)
            if (TryMerge(ids[k], ids[k + 1], out int r, out int nid)) queue.Enqueue((k, nid), ((long)r << 32) | (uint)k);
        while (queue.TryDequeue(out var top, out long priority))
        {
            int pos = top.Pos;
            if (!alive[pos] || next[pos] < 0) continue;
            int right = next[pos];
            if (!TryMerge(ids[pos], ids[right], out _, out int expected) || expected != top.NewId) continue;
            ids[pos] = top.NewId;
            ends[pos] = ends[right];
            alive[right] = false;
            next[pos] = next[right];
            if (next[right] >= 0) prev[next[right]] = pos;
            if (prev[pos] >= 0 && TryMerge(ids[prev[pos]], ids[pos], out int r1, out int n1))
                queue.Enqueue((prev[pos], n1), ((long)r1 << 32) | (uint)prev[pos]);
            if (next[pos] >= 0 && TryMerge(ids[pos], ids[next[pos]], out int r2, out int n2))
                queue.Enqueue((pos, n2), ((long)r2 << 32) | (uint)pos);
            _ = priority;
        }
        int w = 0;
        for (int k = 0; k < n; k++)
        {
            if (!alive[k]) continue;
            ids[w] = ids[k];
            starts[w] = starts[k];
            ends[w] = ends[k];
            w++;
        }
        ids.RemoveRange(w, n - w);
        starts.RemoveRange(w, n - w);
        ends.RemoveRange(w, n - w);
    }
}
