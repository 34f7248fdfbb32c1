using FuseSharp.Diagnostics;
using FuseSharp.Fusion;
using FuseSharp.Models;
using FuseSharp.Tokenization;

namespace FuseSharp.Tests.Fusion;

/// <summary>
/// A character-level tokenizer with a SentencePiece-style marker ("▁x" = a space followed by x), &lt;s&gt; = 1 and
/// &lt;/s&gt; = 2 matched in text, BOS added with special tokens. Enough to test the stages without real tokenizers.
/// </summary>
internal sealed class ToyTokenizer : ITokenizer
{
    private readonly string[] _pieces;
    private readonly Dictionary<string, int> _ids;

    public ToyTokenizer(string marker = "▁")
    {
        WhitespaceMarker = marker;
        var pieces = new List<string> { "<unk>", "<s>", "</s>" };
        for (char c = ' '; c <= '~'; c++) pieces.Add(c.ToString());
        if (marker.Length > 0)
            for (char c = '!'; c <= '~'; c++) pieces.Add(marker + c);
        _pieces = [.. pieces];
        _ids = _pieces.Select((p, i) => (p, i)).ToDictionary(x => x.p, x => x.i);
    }

    public int VocabSize => _pieces.Length;

    public int? BosTokenId => 1;

    public int? EosTokenId => 2;

    public int? PadTokenId => null;

    public int? UnkTokenId => 0;

    public string WhitespaceMarker { get; }

    public Encoding Encode(string text, bool addSpecialTokens = false)
    {
        var ids = new List<int>();
        var toks = new List<string>();
        var offs = new List<(int, int)>();
        var special = new List<bool>();
        void Add(int id, int s, int e, bool sp) { ids.Add(id); toks.Add(_pieces[id]); offs.Add((s, e)); special.Add(sp); }
        if (addSpecialTokens) Add(1, 0, 0, true);
        for (int i = 0; i < text.Length;)
        {
            if (text.AsSpan(i).StartsWith("</s>")) { Add(2, i, i + 4, true); i += 4; continue; }
            if (text.AsSpan(i).StartsWith("<s>")) { Add(1, i, i + 3, true); i += 3; continue; }
            if (WhitespaceMarker.Length > 0 && text[i] == ' ' && i + 1 < text.Length && _ids.TryGetValue(WhitespaceMarker + text[i + 1], out int m)) { Add(m, i, i + 2, false); i += 2; continue; }
            Add(_ids.TryGetValue(text[i].ToString(), out int c) ? c : 0, i, i + 1, false);
            i++;
        }
        return new Encoding(ids, toks, offs) { SpecialTokensMask = special };
    }

    public string Decode(IReadOnlyList<int> ids, bool skipSpecialTokens = false) =>
        string.Concat(ids.Where(i => !skipSpecialTokens || i > 2).Select(i => WhitespaceMarker.Length > 0 && _pieces[i].StartsWith(WhitespaceMarker, StringComparison.Ordinal) && _pieces[i].Length > 1 ? " " + _pieces[i][WhitespaceMarker.Length..] : _pieces[i]));

    public string? IdToToken(int id) => (uint)id < (uint)_pieces.Length ? _pieces[id] : null;

    public int? TokenToId(string token) => _ids.TryGetValue(token, out var id) ? id : null;

    public IReadOnlyDictionary<string, int> GetVocab() => _ids;
}

/// <summary>
/// A deterministic "model": logits z_t[v] depend on the token at t and v only (a seeded bigram table), exact CE by
/// log-sum-exp over the whole vocabulary. Optionally fails on a given call, to test resuming.
/// </summary>
internal sealed class ToyScorer(int vocabSize, int maxLength = 512) : ITopKScorer
{
    public int VocabSize { get; } = vocabSize;

    public int MaxSequenceLength { get; } = maxLength;

    public string Fingerprint => $"toy-bigram-{VocabSize}";

    public int Calls { get; private set; }

    public int? FailOnCall { get; set; }

    public static float Logit(int prev, int v)
    {
        uint h = (uint)(prev * 73856093) ^ (uint)(v * 19349663);
        h ^= h >> 13;
        h *= 0x5bd1e995;
        h ^= h >> 15;
        return (h % 10000) / 1000f - 5f + (v == (prev + 1) % 200 ? 3f : 0f);
    }

    public IReadOnlyList<SequenceScores> Score(IReadOnlyList<int[]> sequences, int k, IProgressTask? progress = null, CancellationToken cancel = default)
    {
        Calls++;
        if (FailOnCall == Calls) throw new OperationCanceledException("simulated kill");
        var r = new List<SequenceScores>();
        foreach (var seq in sequences)
        {
            int n = seq.Length;
            var ids = new int[n * k];
            var logits = new float[n * k];
            var ce = new float[n];
            var z = new float[VocabSize];
            for (int t = 0; t < n; t++)
            {
                for (int v = 0; v < VocabSize; v++) z[v] = Logit(seq[t], v);
                var order = Enumerable.Range(0, VocabSize).OrderByDescending(v => z[v]).ThenBy(v => v).Take(k).ToArray();
                for (int j = 0; j < k; j++) { ids[t * k + j] = order[j]; logits[t * k + j] = z[order[j]]; }
                double max = z.Max(), sum = 0;
                foreach (var x in z) sum += Math.Exp(x - max);
                ce[t] = t + 1 < n ? (float)(max + Math.Log(sum) - z[seq[t + 1]]) : float.NaN;
            }
            r.Add(new SequenceScores(r.Count, n, ids, logits, ce, n - 1));
            progress?.Advance();
        }
        return r;
    }
}
