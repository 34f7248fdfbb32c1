namespace FuseSharp.Tokenization.SentencePiece;

/// <summary>
/// SentencePiece's unigram encoder (unigram_model.cc <c>EncodeOptimized</c>): Viterbi over UTF-8 positions with the
/// exact float/double arithmetic of the C++ code (piece scores widened to double, best-path scores stored as float),
/// user-defined pieces scored <c>length·max_score − 0.1</c>, unused pieces skipped, and a character no piece covers
/// becoming the unknown id with score <c>min_score − 10</c>. Ties keep the first candidate. Unknown characters are
/// not fused (unlike Hugging Face's Unigram).
/// </summary>
internal sealed class SentencePieceUnigram
{
    private const float UnkPenalty = 10.0f;
    private readonly SentencePieceVocabulary vocab;
    private readonly PrefixTrie<char> trie = new();

    public SentencePieceUnigram(SentencePieceVocabulary vocab)
    {
        this.vocab = vocab;
        foreach (var (piece, id) in vocab.ModelPieces) trie.Add(piece, id);
    }

    public List<(int Start, int End, int Id)> Encode(string text)
    {
        var result = new List<(int, int, int)>();
        int n = text.Length;
        if (n == 0) return result;
        var bestScore = new float[n + 1];
        var bestStart = new int[n + 1];
        var bestId = new int[n + 1];
        Array.Fill(bestStart, -1);
        Array.Fill(bestId, -1);
        float unkScore = vocab.MinScore - UnkPenalty;
        var matches = new List<(int Value, int End)>();
        for (int start = 0; start < n;)
        {
            float here = bestScore[start];
            int charLen = char.IsHighSurrogate(text[start]) && start + 1 < n && char.IsLowSurrogate(text[start + 1]) ? 2 : 1;
            bool single = false;
            matches.Clear();
            trie.PrefixMatches(text, start, matches);
            foreach (var (id, end) in matches)
            {
                var type = vocab.TypeOf(id);
                if (type == PieceType.Unused) continue;
                // C++ `length` is in UTF-8 bytes; the ternary makes the score a double.
                double score = type == PieceType.UserDefined
                    ? (double)(System.Text.Encoding.UTF8.GetByteCount(text.AsSpan(start, end - start)) * vocab.MaxScore) - 0.1
                    : vocab.Entries[id].Score;
                double candidate = score + here;
                if (bestStart[end] == -1 || candidate > bestScore[end])
                {
                    bestScore[end] = (float)candidate;
                    bestStart[end] = start;
                    bestId[end] = id;
                }
                if (end - start == charLen) single = true;
            }
            if (!single)
            {
                int end = start + charLen;
                float candidate = unkScore + here;
                if (bestStart[end] == -1 || candidate > bestScore[end])
                {
                    bestScore[end] = candidate;
                    bestStart[end] = start;
                    bestId[end] = vocab.UnkId;
                }
            }
            start += charLen;
        }
        for (int end = n; end > 0; end = bestStart[end]) result.Add((bestStart[end], end, bestId[end]));
        result.Reverse();
        return result;
    }
}
