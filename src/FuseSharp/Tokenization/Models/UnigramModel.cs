using System.Text;

namespace FuseSharp.Tokenization.Models;

/// <summary>
/// The unigram language model (HF <c>Unigram</c>): the segmentation with the highest total log-probability
/// (Viterbi over all vocabulary pieces that match, in double precision); a character no piece covers is the unknown
/// token with score <c>min_score - 10</c>, and consecutive unknown characters are fused into one. With
/// <c>byte_fallback</c>, an unknown piece becomes its <c>&lt;0xNN&gt;</c> byte tokens instead. Ties keep the first
/// candidate found (earliest start), as HF does. SentencePiece's own encoder (<c>SentencePieceUnigram</c>) differs
/// in arithmetic (float best-path scores), the user-defined bonus and unknown handling, so the two stay separate.
/// </summary>
public sealed class UnigramModel : ITokenizerModel
{
    private const double UnkPenalty = 10.0;

    private readonly (string Piece, double Score)[] pieces;
    private readonly Dictionary<string, int> vocab;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> vocabSpan;
    private readonly PrefixTrie<char> trie = new();
    private readonly double minScore;

    public UnigramModel(IReadOnlyList<(string Piece, double Score)> pieces, int? unkId, bool byteFallback)
    {
        this.pieces = [.. pieces];
        vocab = new Dictionary<string, int>(pieces.Count, StringComparer.Ordinal);
        for (int i = 0; i < pieces.Count; i++)
        {
            vocab[pieces[i].Piece] = i;
            trie.Add(pieces[i].Piece, i);
        }
        vocabSpan = vocab.GetAlternateLookup<ReadOnlySpan<char>>();
        if (unkId is { } u && (u < 0 || u >= pieces.Count)) throw new TokenizerException($"Unigram: unk_id {u} is outside the vocabulary of {pieces.Count} pieces");
        UnkId = unkId;
        ByteFallback = byteFallback;
        minScore = pieces.Count == 0 ? 0 : pieces.Min(p => p.Score);
    }

    public int? UnkId { get; }

    public bool ByteFallback { get; }

    public int VocabSize => pieces.Length;

    public IReadOnlyDictionary<string, int> Vocab => vocab;

    public string? UnkToken => UnkId is { } u ? pieces[u].Piece : null;

    /// <summary>Reads HF's <c>"model": {"type": "Unigram", "vocab": [["piece", score], ...], "unk_id": n}</c>.</summary>
    public static UnigramModel FromJson(JsonSection j)
    {
        var list = new List<(string, double)>();
        foreach (var item in j.Child("vocab").Items())
        {
            var pair = item.Items().ToList();
            if (pair.Count != 2) throw item.Error("a Unigram vocabulary entry must be [piece, score]");
            list.Add((pair[0].AsString(), pair[1].AsDouble()));
        }
        int? unk = j.Has("unk_id") ? j.Child("unk_id").AsInt() : null;
        return new UnigramModel(list, unk, j.GetBool("byte_fallback", false));
    }

    public int? TokenToId(string token) => vocab.TryGetValue(token, out int id) ? id : null;

    public string? IdToToken(int id) => id >= 0 && id < pieces.Length ? pieces[id].Piece : null;

    public void Tokenize(string word, List<ModelToken> output)
    {
        if (word.Length == 0) return;
        foreach (var (s, e) in Segment(word))
        {
            if (vocabSpan.TryGetValue(word.AsSpan(s, e - s), out int id))
            {
                output.Add(new ModelToken(id, s, e));
                continue;
            }
            if (ByteFallback && TryBytes(word.AsSpan(s, e - s), s, e, output)) continue;
            output.Add(new ModelToken(UnkId ?? throw new TokenizerException("Unigram: the text has a character outside the vocabulary and the model has no unk_id"), s, e));
        }
    }

    private bool TryBytes(ReadOnlySpan<char> piece, int s, int e, List<ModelToken> output)
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes(piece.ToArray());
        var ids = new int[bytes.Length];
        for (int k = 0; k < bytes.Length; k++)
        {
            if (!vocab.TryGetValue(BpeModel.ByteToken(bytes[k]), out ids[k])) return false;
        }
        foreach (var id in ids) output.Add(new ModelToken(id, s, e));
        return true;
    }

    // Viterbi over code-point positions (HF encode_optimized); returns the best segmentation as [start, end) ranges.
    private List<(int Start, int End)> Segment(string word)
    {
        int n = word.Length;
        var bestScore = new double[n + 1];
        var bestStart = new int[n + 1];
        var bestId = new int[n + 1];
        Array.Fill(bestStart, -1);
        double unkScore = minScore - UnkPenalty;
        var matches = new List<(int Value, int End)>();
        for (int start = 0; start < n;)
        {
            double here = bestScore[start];
            int charLen = char.IsHighSurrogate(word[start]) && start + 1 < n && char.IsLowSurrogate(word[start + 1]) ? 2 : 1;
            bool single = false;
            matches.Clear();
            trie.PrefixMatches(word, start, matches);
            foreach (var (id, end) in matches)
            {
                double candidate = pieces[id].Score + here;
                if (bestStart[end] == -1 || candidate > bestScore[end])
                {
                    bestScore[end] = candidate;
                    bestStart[end] = start;
                    bestId[end] = id;
                }
                if (end - start == charLen) single = true;
            }
            if (!single)
            {
                int end = start + charLen;
                double candidate = unkScore + here;
                if (bestStart[end] == -1 || candidate > bestScore[end])
                {
                    bestScore[end] = candidate;
                    bestStart[end] = start;
                    bestId[end] = -1;
                }
            }
            start += charLen;
        }
        // Backtrack; consecutive unknown ranges are fused (HF fuse_unk, always on for Unigram).
        var result = new List<(int, int)>();
        int pos = n, unkEnd = -1;
        while (pos > 0)
        {
            int s = bestStart[pos];
            bool isUnk = bestId[pos] == -1 || (UnkId is { } u && bestId[pos] == u);
            if (isUnk)
            {
                if (unkEnd < 0) unkEnd = pos;
            }
            else
            {
                if (unkEnd >= 0)
                {
                    result.Add((pos, unkEnd));
                    unkEnd = -1;
                }
                result.Add((s, pos));
            }
            pos = s;
        }
        if (unkEnd >= 0) result.Add((0, unkEnd));
        result.Reverse();
        return result;
    }
}
