using FuseSharp.Diagnostics;
using FuseSharp.Tensors;

namespace FuseSharp.Tokenization.Training;

/// <summary>
/// SentencePiece's unigram trainer (<c>unigram_model_trainer.cc</c>; Kudo 2018, https://arxiv.org/abs/1804.10959) over
/// counted words (code points; -1 = a character outside the covered set, which only the unknown token covers):
/// <list type="number">
/// <item>Seeds: every required character, then the substrings with the highest frequency × length, up to
/// <c>SeedSize</c> pieces; scores are their log relative frequencies.</item>
/// <item>EM: the E-step runs forward-backward over each word's lattice of matching pieces and adds the expected count of
/// every piece (weighted by the word's count); the M-step drops pieces expected fewer than 0.5 times and scores the
/// rest <c>ψ(count) − ψ(total)</c> (the Bayesian / DP variant; ψ = digamma), <c>SubIterations</c> times per round.</item>
/// <item>Pruning: each piece whose own best segmentation is itself, and that has a second-best segmentation, is ranked
/// by how much the corpus likelihood drops when its uses are replaced by that segmentation; the least useful are dropped
/// until <c>max(DesiredSize, ShrinkingFactor × size)</c> remain. Pieces that are never on a best path, or never their own
/// best segmentation, go at once.</item>
/// <item>Finalization: every required character (with the lowest score plus a growing 1e-4 penalty when the EM dropped
/// it), then the best-scored pieces that are their own best segmentation (newer SentencePiece also drops such
/// "unreachable" pieces), until <c>PieceCount</c>; output sorted by score, then piece.</item>
/// </list>
/// Arithmetic is in double (SentencePiece uses float; Hugging Face's port uses double). Expected counts are summed per
/// fixed block of words and the blocks in order, so results do not depend on the thread count.
/// </summary>
/// <remarks>
/// Seeds differ from SentencePiece in one respect: SentencePiece builds its suffix array over whole sentences, so a
/// substring counts only if its occurrences are followed by two different characters <em>in the running text</em>
/// (a word that is always followed by a space never becomes a seed unless it also occurs inside longer words). Here
/// the array holds each unique word once, every word ending with a distinct terminator and occurrences weighted by the
/// word's count: the candidates are all substrings of words that occur at least twice in the corpus and are not always
/// followed by the same character within their words. Hugging Face's <c>UnigramTrainer</c> also uses unique words, but
/// counts each once (ignoring word counts); its pruning keeps pieces with zero frequency that SentencePiece removes,
/// and its loss uses the number of all pieces where SentencePiece uses the size of the alternative segmentation. Both
/// follow SentencePiece here.
/// </remarks>
internal sealed class UnigramTrainer(int[][] words, long[] counts, UnigramTrainer.Settings settings)
{
    private const double UnkPenalty = 10.0;
    private const double ExpectedFrequencyThreshold = 0.5;
    private const double MinScorePenaltyDelta = 0.0001;
    private const int WordsPerBlock = 512;

    /// <param name="PieceCount">pieces in the final model (vocabulary size minus special and byte pieces)</param>
    /// <param name="DesiredSize">EM stops pruning at this size (SentencePiece: 1.1 × the vocabulary size)</param>
    /// <param name="SeedSize">the most seed pieces</param>
    /// <param name="ShrinkingFactor">the share of pieces a pruning round keeps</param>
    /// <param name="SubIterations">EM iterations per round</param>
    /// <param name="Rules">which pieces are allowed</param>
    public sealed record Settings(int PieceCount, int DesiredSize, int SeedSize, double ShrinkingFactor, int SubIterations, PieceRules Rules);

    public sealed record Result(List<(int[] Piece, double Score)> Pieces, List<UnigramEmStep> Steps, int SeedCount);

    private readonly long totalFreq = counts.Sum();

    /// <summary>Trains; <paramref name="requiredChars"/> are the covered characters, most frequent first.</summary>
    public Result Train(IReadOnlyList<(int CodePoint, long Count)> requiredChars, IProgressReporter progress, CancellationToken cancellation)
    {
        var seeds = Seeds(requiredChars, cancellation);
        var model = new Model(seeds);
        var steps = new List<UnigramEmStep>();
        int expectedRounds = Math.Max(1, (int)Math.Ceiling(Math.Log((double)settings.DesiredSize / Math.Max(seeds.Count, 1)) / Math.Log(settings.ShrinkingFactor)) + 1);
        using var task = progress.Start("unigram EM", expectedRounds, ProgressUnit.Steps);
        for (int round = 0; ; round++)
        {
            for (int iter = 0; iter < settings.SubIterations; iter++)
            {
                var (expected, objective) = EStep(model, cancellation);
                steps.Add(new UnigramEmStep(round, iter, model.Count, objective));
                model = MStep(model, expected);
            }
            task.Advance();
            if (model.Count <= settings.DesiredSize) break;
            model = Prune(model, cancellation);
        }
        return new Result(Finalize(model, requiredChars), steps, seeds.Count);
    }

    // ---- seeds -------------------------------------------------------------------------------------------------

    /// <summary>The required characters (scored by count), then the best substrings (scored by count × length), as log probabilities.</summary>
    internal List<(int[] Piece, double Score)> Seeds(IReadOnlyList<(int CodePoint, long Count)> requiredChars, CancellationToken cancellation)
    {
        var seeds = requiredChars.Select(c => (Piece: new[] { c.CodePoint }, Score: (double)c.Count)).ToList();
        int room = settings.SeedSize - seeds.Count;
        if (room > 0)
        {
            foreach (var (piece, score) in FrequentSubstrings(room, cancellation)) seeds.Add((piece, score));
        }
        double sum = seeds.Sum(s => s.Score);
        double logSum = Math.Log(sum);
        for (int i = 0; i < seeds.Count; i++) seeds[i] = (seeds[i].Piece, Math.Log(seeds[i].Score) - logSum);
        return seeds;
    }

    // The `room` substrings of length 2.. with the highest weighted frequency × length (see the class remarks).
    private List<(int[] Piece, long Score)> FrequentSubstrings(int room, CancellationToken cancellation)
    {
        // The words, each followed by a distinct terminator; uncovered characters are distinct terminators too.
        // Symbols: terminators 0..S-1, covered characters S + (rank of the code point), so symbol order is code point order.
        var distinct = new SortedSet<int>();
        long total = 0, separators = words.Length;
        foreach (var w in words)
        {
            total += w.Length + 1;
            foreach (var c in w)
            {
                if (c >= 0) distinct.Add(c);
                else separators++;
            }
        }
        if (total > int.MaxValue - 1) throw new TokenizerTrainingException($"the unique words hold {total} characters, more than unigram seeding can index", "train on a sample of the corpus");
        var cps = distinct.ToArray();
        var rankOfCp = new Dictionary<int, int>(cps.Length);
        for (int i = 0; i < cps.Length; i++) rankOfCp[cps[i]] = i;
        int n = (int)total, sep = 0, pos = 0, baseSymbol = (int)separators;
        var s = new int[n];
        var weight = new long[n];
        foreach (var (w, wi) in words.Select((w, i) => (w, i)))
        {
            foreach (var c in w)
            {
                weight[pos] = counts[wi];
                s[pos++] = c < 0 ? sep++ : baseSymbol + rankOfCp[c];
            }
            s[pos++] = sep++;
        }
        cancellation.ThrowIfCancellationRequested();
        var sa = SuffixArray.Build(s, baseSymbol + cps.Length);
        var lcp = SuffixArray.Lcp(s, sa, out var rankOf);
        var prefix = new long[n + 1];
        for (int j = 0; j < n; j++) prefix[j + 1] = prefix[j] + weight[sa[j]];
        cancellation.ThrowIfCancellationRequested();

        var candidates = new List<(long Score, int Pos, int Len)>();
        var buffer = new int[settings.Rules.MaxLength];
        void Offer(int start, int len, long freq)
        {
            if (len < 2 || len > settings.Rules.MaxLength || freq < 2) return;
            for (int k = 0; k < len; k++) buffer[k] = cps[s[start + k] - baseSymbol];
            if (settings.Rules.IsValid(buffer.AsSpan(0, len))) candidates.Add((freq * len, start, len));
        }
        // Internal nodes: substrings followed by two different symbols (or ending two words).
        SuffixArray.Intervals(lcp, (depth, lb, rb) => Offer(sa[lb], depth, prefix[rb + 1] - prefix[lb]));
        // Leaves: the rest of a word from a position, when it occurs nowhere else (its count is its word's count).
        int end = n;
        for (int i = n - 1; i >= 0; i--)
        {
            if (s[i] < baseSymbol)
            {
                end = i;
                continue;
            }
            int r = rankOf[i];
            int shared = Math.Max(lcp[r], r + 1 < n ? lcp[r + 1] : 0);
            if (end - i > shared) Offer(i, end - i, weight[i]);
        }
        candidates.Sort(new CandidateOrder(s));
        return candidates.Take(room).Select(x => (Enumerable.Range(x.Pos, x.Len).Select(k => cps[s[k] - baseSymbol]).ToArray(), x.Score)).ToList();
    }

    // Higher score first, then code point order of the substring.
    private sealed class CandidateOrder(int[] s) : IComparer<(long Score, int Pos, int Len)>
    {
        public int Compare((long Score, int Pos, int Len) x, (long Score, int Pos, int Len) y)
        {
            if (x.Score != y.Score) return x.Score > y.Score ? -1 : 1;
            int c = s.AsSpan(x.Pos, x.Len).SequenceCompareTo(s.AsSpan(y.Pos, y.Len));
            return c;
        }
    }

    // ---- EM ----------------------------------------------------------------------------------------------------

    /// <summary>Expected piece counts and the objective −Σ count·log Z / Σ count.</summary>
    internal (double[] Expected, double Objective) EStep(Model model, CancellationToken cancellation)
    {
        int blocks = (words.Length + WordsPerBlock - 1) / WordsPerBlock;
        var parts = new (int[] Ids, double[] Values, double LogLikelihood)[blocks];
        Parallel.For(0, blocks, Options(cancellation), () => new Worker(model.Count), (b, _, worker) =>
        {
            int end = Math.Min(words.Length, (b + 1) * WordsPerBlock);
            double ll = 0;
            for (int w = b * WordsPerBlock; w < end; w++)
            {
                worker.Lattice.Build(words[w], model);
                ll += worker.Lattice.AddMarginals(counts[w], worker);
            }
            var (ids, values) = worker.Flush();
            parts[b] = (ids, values, ll);
            return worker;
        }, _ => { });
        var expected = new double[model.Count];
        double total = 0;
        foreach (var (ids, values, ll) in parts)
        {
            for (int k = 0; k < ids.Length; k++) expected[ids[k]] += values[k];
            total += ll;
        }
        return (expected, -total / totalFreq);
    }

    internal static Model MStep(Model model, double[] expected)
    {
        var kept = new List<(int[] Piece, double Score)>(model.Count);
        double sum = 0;
        for (int i = 0; i < model.Count; i++)
        {
            if (expected[i] < ExpectedFrequencyThreshold) continue;
            kept.Add((model.Pieces[i], expected[i]));
            sum += expected[i];
        }
        double logSum = Digamma(sum);
        for (int i = 0; i < kept.Count; i++) kept[i] = (kept[i].Piece, Digamma(kept[i].Score) - logSum);
        return new Model(kept);
    }

    // SentencePiece's Digamma (asymptotic series after shifting x to 7 or more).
    internal static double Digamma(double x)
    {
        double result = 0;
        for (; x < 7; x++) result -= 1 / x;
        x -= 1.0 / 2.0;
        double xx = 1.0 / x, xx2 = xx * xx, xx4 = xx2 * xx2;
        result += Math.Log(x) + (1.0 / 24.0 * xx2) - (7.0 / 960.0 * xx4) + (31.0 / 8064.0 * xx4 * xx2) - (127.0 / 30720.0 * xx4 * xx4);
        return result;
    }

    // ---- pruning -----------------------------------------------------------------------------------------------

    internal Model Prune(Model model, CancellationToken cancellation)
    {
        int size = model.Count;
        var alwaysKeep = new bool[size];
        var alternatives = new int[size][];
        Parallel.For(0, size, Options(cancellation), () => new Lattice(), (i, _, lattice) =>
        {
            // The best segmentation of the piece itself: if it is not the piece, the piece can go; else the second best
            // (the best without the whole-piece node) is what replaces it.
            var piece = model.Pieces[i];
            lattice.Build(piece, model);
            var best = lattice.Viterbi(-1);
            alwaysKeep[i] = best.Count == 1;
            alternatives[i] = [];
            if (best.Count == 1)
            {
                int whole = best[0];
                var second = lattice.Viterbi(whole);
                if (second.Count > 0) alternatives[i] = [.. second.Select(k => lattice.Id[k])];
            }
            return lattice;
        }, _ => { });

        // Piece frequencies on the best segmentation of every word (integers, so the sum order does not matter).
        var freq = new long[size];
        var gate = new object();
        Parallel.For(0, (words.Length + WordsPerBlock - 1) / WordsPerBlock, Options(cancellation), () => (new Lattice(), new long[size]), (b, _, state) =>
        {
            int end = Math.Min(words.Length, (b + 1) * WordsPerBlock);
            for (int w = b * WordsPerBlock; w < end; w++)
            {
                state.Item1.Build(words[w], model);
                foreach (var k in state.Item1.Viterbi(-1))
                    if (state.Item1.Id[k] >= 0) state.Item2[state.Item1.Id[k]] += counts[w];
            }
            return state;
        }, state =>
        {
            lock (gate)
            {
                for (int i = 0; i < size; i++) freq[i] += state.Item2[i];
            }
        });

        double sum = freq.Sum(f => (double)f);
        double logSum = Math.Log(sum);
        var kept = new List<(int[] Piece, double Score)>();
        var candidates = new List<(int Index, double Loss)>();
        for (int i = 0; i < size; i++)
        {
            if (freq[i] == 0 || !alwaysKeep[i]) continue; // never used, or never its own best segmentation
            if (alternatives[i].Length == 0)
            {
                kept.Add((model.Pieces[i], model.Scores[i]));
                continue;
            }
            // Approximate loss of removing piece i: its uses are replaced by its alternative segmentation.
            double f = freq[i] / (double)totalFreq;
            double logProbSp = Math.Log(freq[i]) - logSum;
            double logSumAlt = Math.Log(sum + (freq[i] * (alternatives[i].Length - 1.0)));
            double logProbAlt = 0;
            // An unknown node in the alternative (a character the EM dropped) counts as frequency 0 (SentencePiece reads
            // freq[-1] there, out of bounds; Hugging Face reads the unknown token's frequency).
            foreach (var n in alternatives[i]) logProbAlt += Math.Log((n >= 0 ? freq[n] : 0) + (double)freq[i]) - logSumAlt;
            candidates.Add((i, f * (logProbSp - logProbAlt)));
        }
        int prunedSize = Math.Max(settings.DesiredSize, (int)(settings.ShrinkingFactor * size));
        candidates.Sort((x, y) => x.Loss != y.Loss ? y.Loss.CompareTo(x.Loss) : x.Index.CompareTo(y.Index));
        foreach (var (index, _) in candidates)
        {
            if (kept.Count >= prunedSize) break;
            kept.Add((model.Pieces[index], model.Scores[index]));
        }
        return new Model(kept);
    }

    // ---- final pieces ------------------------------------------------------------------------------------------

    internal List<(int[] Piece, double Score)> Finalize(Model model, IReadOnlyList<(int CodePoint, long Count)> requiredChars)
    {
        var final = new List<(int[] Piece, double Score)>();
        var taken = new HashSet<int[]>(PieceComparer.Instance);
        var index = new Dictionary<int[], int>(PieceComparer.Instance);
        for (int i = 0; i < model.Count; i++) index[model.Pieces[i]] = i;
        double penalty = 0;
        foreach (var (cp, _) in requiredChars)
        {
            int[] piece = [cp];
            if (index.TryGetValue(piece, out int i))
            {
                final.Add((piece, model.Scores[i]));
            }
            else
            {
                // Penalties keep the added characters apart; the most frequent get the smallest.
                final.Add((piece, model.MinScore + penalty));
                penalty += MinScorePenaltyDelta;
            }
            taken.Add(piece);
        }
        var lattice = new Lattice();
        foreach (var i in Enumerable.Range(0, model.Count).OrderByDescending(i => model.Scores[i]).ThenBy(i => model.Pieces[i], PieceComparer.Instance))
        {
            if (final.Count >= settings.PieceCount) break;
            var piece = model.Pieces[i];
            if (taken.Contains(piece)) continue;
            lattice.Build(piece, model);
            if (lattice.Viterbi(-1).Count != 1) continue; // unreachable: a split always scores higher
            final.Add((piece, model.Scores[i]));
            taken.Add(piece);
        }
        final.Sort((x, y) => x.Score != y.Score ? y.Score.CompareTo(x.Score) : PieceComparer.Instance.Compare(x.Piece, y.Piece));
        return final;
    }

    private static ParallelOptions Options(CancellationToken cancellation) =>
        new() { MaxDegreeOfParallelism = Parallelism.MaxThreads, CancellationToken = cancellation };

    /// <summary>Code point sequences: equality, hashing and code point order.</summary>
    internal sealed class PieceComparer : IEqualityComparer<int[]>, IComparer<int[]>
    {
        public static readonly PieceComparer Instance = new();

        public bool Equals(int[]? x, int[]? y) => x.AsSpan().SequenceEqual(y);

        public int GetHashCode(int[] obj)
        {
            var h = new HashCode();
            h.AddBytes(System.Runtime.InteropServices.MemoryMarshal.AsBytes(obj.AsSpan()));
            return h.ToHashCode();
        }

        public int Compare(int[]? x, int[]? y) => x.AsSpan().SequenceCompareTo(y);
    }

    /// <summary>The pieces with their scores, and a trie over them for the lattice.</summary>
    internal sealed class Model
    {
        // Trie edges, (node << 21 | code point) → child node, in an open-addressing table (the lattice's inner loop);
        // a node's value is its piece id or -1.
        private readonly long[] edgeKeys;
        private readonly int[] edgeChildren;
        private readonly int edgeShift;
        private readonly List<int> values = [-1];

        public Model(List<(int[] Piece, double Score)> pieces)
        {
            Pieces = pieces.Select(p => p.Piece).ToArray();
            Scores = pieces.Select(p => p.Score).ToArray();
            MinScore = Scores.Length == 0 ? 0 : Scores.Min();
            var edges = new Dictionary<long, int>();
            for (int id = 0; id < Pieces.Length; id++)
            {
                int node = 0;
                foreach (var c in Pieces[id])
                {
                    long key = ((long)node << 21) | (uint)c;
                    if (!edges.TryGetValue(key, out int child))
                    {
                        child = values.Count;
                        values.Add(-1);
                        edges[key] = child;
                    }
                    node = child;
                }
                values[node] = id;
                MaxLength = Math.Max(MaxLength, Pieces[id].Length);
            }
            int bits = Math.Max(4, 64 - System.Numerics.BitOperations.LeadingZeroCount((ulong)(edges.Count * 2)));
            edgeShift = 64 - bits;
            edgeKeys = new long[1 << bits];
            edgeChildren = new int[1 << bits];
            Array.Fill(edgeKeys, -1);
            foreach (var (key, child) in edges)
            {
                int i = Slot(key);
                while (edgeKeys[i] >= 0) i = (i + 1) & (edgeKeys.Length - 1);
                edgeKeys[i] = key;
                edgeChildren[i] = child;
            }
        }

        public int[][] Pieces { get; }

        public double[] Scores { get; }

        public double MinScore { get; }

        public int MaxLength { get; }

        public int Count => Pieces.Length;

        private int Slot(long key) => (int)(((ulong)key * 0x9E3779B97F4A7C15UL) >> edgeShift);

        public int Child(int node, int cp)
        {
            long key = ((long)node << 21) | (uint)cp;
            for (int i = Slot(key); ; i = (i + 1) & (edgeKeys.Length - 1))
            {
                long k = edgeKeys[i];
                if (k == key) return edgeChildren[i];
                if (k < 0) return -1;
            }
        }

        public int Value(int node) => values[node];
    }

    /// <summary>One thread's lattice and its sparse share of the expected counts of one block.</summary>
    internal sealed class Worker(int pieces)
    {
        private readonly double[] expected = new double[pieces];
        private readonly List<int> touched = [];

        public Lattice Lattice { get; } = new();

        public void Add(int id, double value)
        {
            if (expected[id] == 0) touched.Add(id);
            expected[id] += value;
        }

        public (int[] Ids, double[] Values) Flush()
        {
            var ids = touched.ToArray();
            var values = new double[ids.Length];
            for (int k = 0; k < ids.Length; k++)
            {
                values[k] = expected[ids[k]];
                expected[ids[k]] = 0;
            }
            touched.Clear();
            return (ids, values);
        }
    }

    /// <summary>
    /// The segmentation lattice of one word: a node per piece matching at each position (shortest first), and an unknown
    /// node (score min − 10) at positions where no one-character piece matches, as SentencePiece's <c>PopulateNodes</c>.
    /// Nodes are stored by start position, which is the order the reference lattices visit them in, so ties and the
    /// pairwise log-sum-exp folds come out the same.
    /// </summary>
    internal sealed class Lattice
    {
        private int[] begin = new int[64], length = new int[64];
        private double[] score = new double[64];
        private int[] groupStart = new int[17];
        private double[] alpha = new double[17], beta = new double[17], peak = new double[17], sums = new double[17], marginal = new double[64];
        private int[] from = new int[17];
        private int n, count;

        public int[] Id { get; private set; } = new int[64];

        public void Build(ReadOnlySpan<int> word, Model model)
        {
            n = word.Length;
            count = 0;
            if (groupStart.Length < n + 1)
            {
                int size = Math.Max(n + 1, groupStart.Length * 2);
                groupStart = new int[size];
                alpha = new double[size];
                beta = new double[size];
                peak = new double[size];
                sums = new double[size];
                from = new int[size];
            }
            double unk = model.MinScore - UnkPenalty;
            for (int i = 0; i < n; i++)
            {
                groupStart[i] = count;
                bool single = false;
                if (word[i] >= 0)
                {
                    int node = 0;
                    for (int j = i; j < n && j - i < model.MaxLength; j++)
                    {
                        if (word[j] < 0 || (node = model.Child(node, word[j])) < 0) break;
                        int id = model.Value(node);
                        if (id < 0) continue;
                        Add(i, j - i + 1, id, model.Scores[id]);
                        single |= j == i;
                    }
                }
                if (!single) Add(i, 1, -1, unk);
            }
            groupStart[n] = count;
        }

        private void Add(int b, int len, int id, double s)
        {
            if (count == Id.Length)
            {
                Array.Resize(ref begin, count * 2);
                Array.Resize(ref length, count * 2);
                Array.Resize(ref score, count * 2);
                var ids = Id;
                Array.Resize(ref ids, count * 2);
                Id = ids;
            }
            begin[count] = b;
            length[count] = len;
            Id[count] = id;
            score[count] = s;
            count++;
        }

        /// <summary>The best path (node indices, left to right), ignoring node <paramref name="skip"/>; empty when none.</summary>
        public List<int> Viterbi(int skip)
        {
            alpha[0] = 0;
            for (int p = 1; p <= n; p++) from[p] = -1;
            for (int k = 0; k < count; k++)
            {
                if (k == skip) continue;
                int b = begin[k], e = b + length[k];
                if (b > 0 && from[b] < 0) continue;
                double candidate = alpha[b] + score[k];
                if (from[e] < 0 || candidate > alpha[e])
                {
                    alpha[e] = candidate;
                    from[e] = k;
                }
            }
            var path = new List<int>();
            if (n > 0 && from[n] < 0) return path;
            for (int p = n; p > 0; p = begin[from[p]]) path.Add(from[p]);
            path.Reverse();
            return path;
        }

        /// <summary>Adds freq × the marginal of every piece node to <paramref name="worker"/>; returns freq × log Z.</summary>
        /// <remarks>
        /// Forward-backward in log space: alpha[p] = log Σ over nodes ending at p of exp(alpha[begin] + score), beta[p] =
        /// log Σ over nodes starting at p of exp(score + beta[end]), Z = alpha[n]. Each sum is kept as a running
        /// maximum and a scaled sum (one exponential per node, one logarithm per position); the references fold pairwise
        /// with log(exp(x) + exp(y)) per node, the same value up to rounding.
        /// </remarks>
        public double AddMarginals(long freq, Worker worker)
        {
            if (n == 0) return 0;
            // Forward: nodes come by start position, so every sum ending at p is complete when p is reached as a start.
            for (int p = 1; p <= n; p++) from[p] = 0; // used as "sum at p started"
            alpha[0] = 0;
            int next = 1;
            for (int k = 0; k < count; k++)
            {
                int b = begin[k];
                for (; next <= b; next++) alpha[next] = peak[next] + Math.Log(sums[next]);
                int e = b + length[k];
                double v = alpha[b] + score[k];
                if (from[e] == 0)
                {
                    peak[e] = v;
                    sums[e] = 1;
                    from[e] = 1;
                }
                else if (v > peak[e])
                {
                    sums[e] = (sums[e] * Math.Exp(peak[e] - v)) + 1;
                    peak[e] = v;
                }
                else
                {
                    sums[e] += Math.Exp(v - peak[e]);
                }
            }
            for (; next <= n; next++) alpha[next] = peak[next] + Math.Log(sums[next]);
            // Backward, position by position from the end.
            beta[n] = 0;
            for (int p = n - 1; p >= 0; p--)
            {
                double max = double.NegativeInfinity;
                for (int k = groupStart[p]; k < groupStart[p + 1]; k++) max = Math.Max(max, score[k] + beta[begin[k] + length[k]]);
                double sum = 0;
                for (int k = groupStart[p]; k < groupStart[p + 1]; k++) sum += Math.Exp(score[k] + beta[begin[k] + length[k]] - max);
                beta[p] = max + Math.Log(sum);
            }
            double z = alpha[n];
            if (marginal.Length < count) marginal = new double[Id.Length];
            var m = marginal.AsSpan(0, count);
            for (int k = 0; k < count; k++) m[k] = alpha[begin[k]] + score[k] + beta[begin[k] + length[k]] - z;
            System.Numerics.Tensors.TensorPrimitives.Exp(m, m);
            for (int k = 0; k < count; k++)
                if (Id[k] >= 0) worker.Add(Id[k], freq * m[k]);
            return freq * z;
        }
    }
}
