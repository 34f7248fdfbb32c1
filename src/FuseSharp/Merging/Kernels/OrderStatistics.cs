using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using FuseSharp.Tensors;

namespace FuseSharp.Merging.Kernels;

/// <summary>Fills scratch buffers 0..series-1 with the values of elements [start, start + length) of each series; buffers from <c>series</c> up are free for temporaries.</summary>
public delegate void ChunkProducer(long start, int length, ChunkScratch scratch);

/// <summary>
/// The values of elements [start, start + length) of a single series where they already are (e.g. a slice of a buffer that
/// holds them), instead of a copy into scratch; <paramref name="scratch"/> is free for temporaries.
/// </summary>
public delegate ReadOnlySpan<float> ChunkView(long start, int length, ChunkScratch scratch);

/// <summary>
/// The element of ascending rank <see cref="Rank"/> (0-based) of a series: its value, how many elements are
/// smaller, how many are equal, and the sum of the smaller ones (for norm-matching rescales without another pass).
/// </summary>
public readonly record struct RankedValue(long Rank, float Value, long Less, long Equal, double SumLess);

/// <summary>
/// Exact order statistics over values produced chunk by chunk, in O(n) without sorting the data
/// (Floyd-Rivest style): order statistics of a random sample bracket each wanted rank, one pass counts the elements below
/// each bracket and collects those inside it, and a quickselect over the (few) collected candidates finds the
/// exact value. Several series (e.g. one per model) and several ranks per series share the pass, so the inputs
/// are read once. Small inputs, or a bracket that misses (unlucky sample, heavy ties), fall back to collecting
/// every value. NaN values compare as larger than every number.
/// </summary>
public static class OrderStatistics
{
    /// <summary>Below this many elements every value is collected (one buffer) instead of sampling.</summary>
    public const long DirectThreshold = 1 << 17;

    private const int RunLength = 256;

    /// <summary>Sample runs produced per parallel work item.</summary>
    private const int SampleRunsPerItem = 16;

    /// <summary>
    /// Sample size for <paramref name="count"/> values: about 2·n^(2/3), between 8192 and 262144, in whole runs. A
    /// bracket holds ~12/√S of the values, which the pass collects and a quickselect finishes; selecting the bracket ends
    /// in the sample costs ~S; the two balance near S ∝ n^(2/3) (measured: 8192 fixed collected 6% of a 33M tensor, this 0.5%).
    /// The sums below a bracket are added in an order that depends on where its ends fall, so the size is part of the
    /// result's last bits when sums are wanted. (Half the size without sums looked cheaper per phase, but merged slower
    /// end to end: the wider brackets' candidates cost more in the pass than the smaller sample saved.)
    /// </summary>
    internal static int SampleRunsFor(long count) => (int)Math.Clamp(2 * Math.Cbrt((double)count * count) / RunLength, 32, 1024);

    /// <summary>
    /// Finds, for each series s, the elements of ascending ranks <paramref name="ranks"/>[s] among the
    /// <paramref name="count"/> values <paramref name="produce"/> yields for it.
    /// </summary>
    /// <param name="count">Elements per series.</param>
    /// <param name="series">Number of series (buffers 0..series-1 of the producer).</param>
    /// <param name="ranks">Wanted ascending ranks per series (may be empty).</param>
    /// <param name="produce">Fills the series' values for a range.</param>
    /// <param name="sampleKey">Seed for the sample positions (results do not depend on it, only the speed).</param>
    /// <param name="ct">Cancellation, checked between chunks.</param>
    /// <param name="sums">Whether <see cref="RankedValue.SumLess"/> is wanted (false skips summing in the pass; it is then meaningless).</param>
    public static Selection Select(long count, int series, IReadOnlyList<IReadOnlyList<long>> ranks, ChunkProducer produce, ulong sampleKey, CancellationToken ct,
        bool sums = true) => Select(count, series, ranks, new ChunkSource(produce, null), sampleKey, ct, sums);

    /// <summary>Single-series convenience.</summary>
    public static Selection Select(long count, IReadOnlyList<long> ranks, ChunkProducer produce, ulong sampleKey, CancellationToken ct, bool sums = true) =>
        Select(count, 1, [ranks], produce, sampleKey, ct, sums);

    /// <summary>
    /// A single series read where its values already are (<paramref name="view"/>), without copying each chunk into scratch;
    /// otherwise as <see cref="Select(long, IReadOnlyList{long}, ChunkProducer, ulong, CancellationToken, bool)"/> (the same results).
    /// </summary>
    public static Selection Select(long count, IReadOnlyList<long> ranks, ChunkView view, ulong sampleKey, CancellationToken ct, bool sums = true) =>
        Select(count, 1, [ranks], new ChunkSource(null, view), sampleKey, ct, sums);

    private static Selection Select(long count, int series, IReadOnlyList<IReadOnlyList<long>> ranks, ChunkSource source, ulong sampleKey, CancellationToken ct,
        bool sums)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(count);
        for (int s = 0; s < series; s++)
            foreach (var r in ranks[s])
                if (r < 0 || r >= count) throw new ArgumentOutOfRangeException(nameof(ranks), $"rank {r} outside [0, {count})");
        if (count <= DirectThreshold) return Direct(count, series, ranks, source, ct);

        // 1. A sample per series: runs of consecutive elements at random positions (cheap to produce; the
        //    sample only places the brackets, so its quality affects speed, never the selected values
        //    or counts; only the sums' last bits depend on where the bracket ends fall).
        var rng = new CounterRandom(sampleKey);
        int sampleRuns = SampleRunsFor(count);
        var runStarts = new long[sampleRuns];
        for (int i = 0; i < sampleRuns; i++) runStarts[i] = (long)(rng.NextUInt64(i) % (ulong)(count - RunLength + 1));
        Array.Sort(runStarts);
        int sampleSize = sampleRuns * RunLength;
        var samples = new float[series][];
        for (int s = 0; s < series; s++) samples[s] = new float[sampleSize];
        // Runs are produced in groups on all threads (each run fills its own slice) and each series' bracket ends are
        // picked on its own thread: done serially, this step left the other cores idle for a good part of the selection.
        int groups = (sampleRuns + SampleRunsPerItem - 1) / SampleRunsPerItem;
        Chunked.ForEach(groups, ct, g =>
        {
            var scratch = ChunkScratch.ForCurrentThread();
            for (int i = g * SampleRunsPerItem; i < Math.Min(sampleRuns, (g + 1) * SampleRunsPerItem); i++)
            {
                source.Produce(runStarts[i], RunLength, scratch);
                for (int s = 0; s < series; s++) source.Series(s, runStarts[i], RunLength, scratch).CopyTo(samples[s].AsSpan(i * RunLength));
            }
        });
        foreach (var a in samples)
            if (ContainsNaN(a)) return Direct(count, series, ranks, source, ct);

        // 2. One bracket [lo, hi] per (series, rank), wide enough that the rank falls inside with overwhelming probability.
        //    The ends are order statistics of the sample picked by a radix select (quickselect where it declines), O(S) instead of sorting the sample
        //    (S log S, which cost about half a read of the inputs): the same values a sort puts at those positions, so
        //    the brackets, and every sum measured against them, do not change.
        var brackets = new (int Series, int RankIndex, float Lo, float Hi)[ranks.Take(series).Sum(r => r.Count)];
        var firstBracket = new int[series + 1];
        for (int s = 0; s < series; s++) firstBracket[s + 1] = firstBracket[s] + ranks[s].Count;
        Chunked.ForEach(series, ct, s =>
        {
            int nr = ranks[s].Count;
            var positions = new int[2 * nr];
            for (int k = 0; k < nr; k++)
            {
                double p = (double)ranks[s][k] / count;
                double center = p * (sampleSize - 1);
                // Runs make the sample less than fully random (neighbours correlate), so the margin is generous.
                double margin = 6 * Math.Sqrt(sampleSize * Math.Max(p * (1 - p), 1.0 / sampleSize)) + 16;
                positions[2 * k] = (int)Math.Floor(center - margin);
                positions[2 * k + 1] = (int)Math.Ceiling(center + margin);
            }
            // Every end of the series in one multi-select: a bracket's two ends are close, so they share most partitions.
            var inner = positions.Where(i => i > 0 && i < sampleSize - 1).Distinct().Order().ToArray();
            var values = new float[inner.Length];
            if (!RadixSelect(samples[s], inner, values)) QuickSelect(samples[s], inner, values);
            float End(int i, float open) => i <= 0 || i >= sampleSize - 1 ? open : values[Array.BinarySearch(inner, i)];
            for (int k = 0; k < nr; k++)
                brackets[firstBracket[s] + k] = (s, k, End(positions[2 * k], float.NegativeInfinity), End(positions[2 * k + 1], float.PositiveInfinity));
        });

        // 3. One pass: per bracket, the count and sum below it, the counts equal to each end (BF16 checkpoints repeat
        //    values a lot, so ties are counted, not stored), and the values strictly inside (kept per chunk).
        int nb = brackets.Length;
        int chunks = Chunked.CountOf(count);
        long maxCandidates = Math.Max(count, 1 << 20);
        var inside = new float[]?[nb, chunks]; // per bracket and chunk: each chunk writes only its own cells
        var endCounts = new long[nb][];
        for (int b = 0; b < nb; b++) endCounts[b] = new long[2 * chunks];
        long collected = 0;
        bool overflow = false;
        var totals = Chunked.Reduce(count, 2 * nb, ct, (start, length, sc, acc) =>
        {
            if (Volatile.Read(ref overflow)) return;
            source.Produce(start, length, sc);
            int chunk = (int)(start / Chunked.Size);
            void Record(Span<double> acc, int b, ScanResult r)
            {
                acc[2 * b] += r.Below;
                acc[2 * b + 1] += r.SumBelow;
                endCounts[b][2 * chunk] = r.AtLow;
                endCounts[b][2 * chunk + 1] = r.AtHigh;
                if (r.Inside.Length > 0)
                {
                    inside[b, chunk] = r.Inside;
                    if (Interlocked.Add(ref collected, r.Inside.Length) > maxCandidates) Volatile.Write(ref overflow, true);
                }
            }
            // A series' brackets two at a time (breadcrumbs' two ranks per model): each vector of values is loaded once for both.
            for (int s = 0; s < series; s++)
            {
                int b = firstBracket[s], end = firstBracket[s + 1];
                if (b == end) continue;
                var values = source.Series(s, start, length, sc);
                for (; b + 1 < end; b += 2)
                {
                    var (first, second) = Scan(values, brackets[b].Lo, brackets[b].Hi, brackets[b + 1].Lo, brackets[b + 1].Hi, sums);
                    Record(acc, b, first);
                    Record(acc, b + 1, second);
                }
                if (b < end) Record(acc, b, Scan(values, brackets[b].Lo, brackets[b].Hi, sums));
            }
        });
        if (overflow) return Direct(count, series, ranks, source, ct);

        var byBracket = new List<(int Chunk, float[] Values)>[nb];
        for (int b = 0; b < nb; b++) byBracket[b] = [];
        // Chunk order, whatever the threads' timing: the sums below (SumLess) are the same on every run.
        for (int b = 0; b < nb; b++)
            for (int c = 0; c < chunks; c++)
                if (inside[b, c] is { } vals) byBracket[b].Add((c, vals));
        var result = new RankedValue[series][];
        var bracketOf = new Dictionary<(int, long), int>();
        for (int s = 0; s < series; s++) result[s] = new RankedValue[ranks[s].Count];
        for (int b = 0; b < nb; b++)
        {
            var (s, k, lo, hi) = brackets[b];
            long rank = ranks[s][k];
            long below = (long)totals[2 * b];
            long atLow = 0, atHigh = 0;
            for (int c = 0; c < chunks; c++)
            {
                atLow += endCounts[b][2 * c];
                atHigh += endCounts[b][2 * c + 1];
            }
            var open = byBracket[b].SelectMany(x => x.Values).ToArray();
            long local = rank - below;
            if (local < 0 || local >= atLow + open.Length + atHigh) return Direct(count, series, ranks, source, ct);
            result[s][k] = FinishBracket(rank, local, below, totals[2 * b + 1], lo, atLow, open, hi, atHigh);
            bracketOf[(s, rank)] = b;
        }
        return new Selection(result, count, source, byBracket, bracketOf, null, brackets.Select(x => (x.Lo, x.Hi)).ToArray(), endCounts);
    }

    /// <summary>
    /// The element of local rank <paramref name="local"/> among [lo × atLow, the open values, hi × atHigh] (sorted),
    /// with the counts and sum of everything smaller (including the <paramref name="below"/> elements under the bracket).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // The per-value loops of the selection's last step run a few times per tensor: optimised at once, not as tier-0 / OSR code.
    private static RankedValue FinishBracket(long rank, long local, long below, double sumBelow, float lo, long atLow, float[] open, float hi, long atHigh)
    {
        if (local < atLow) return new RankedValue(rank, lo, below, atLow, sumBelow);
        double lowSum = atLow == 0 ? 0 : (double)lo * atLow; // lo may be -inf with no element at it
        if (local >= atLow + open.Length)
        {
            double openSum = 0;
            foreach (var x in open) openSum += x;
            return new RankedValue(rank, hi, below + atLow + open.Length, atHigh, sumBelow + lowSum + openSum);
        }
        return Finish(rank, open, local - atLow, below + atLow, sumBelow + lowSum);
    }

    /// <summary>
    /// Where the values come from: a producer that fills scratch buffers 0..series-1 for a range (then each series is its
    /// buffer), or a view of a single series' values in place.
    /// </summary>
    internal sealed class ChunkSource(ChunkProducer? produce, ChunkView? view)
    {
        /// <summary>Prepares elements [start, start + length) of every series (the producer's fill; nothing for a view).</summary>
        public void Produce(long start, int length, ChunkScratch scratch) => produce?.Invoke(start, length, scratch);

        /// <summary>Series <paramref name="series"/>' values of the range last prepared.</summary>
        public ReadOnlySpan<float> Series(int series, long start, int length, ChunkScratch scratch) =>
            view is null ? scratch.Get(series, length) : view(start, length, scratch);
    }

    /// <summary>The rank of a value within candidates plus the counts below the candidates' range.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static RankedValue Finish(long rank, float[] values, long localRank, long lessBefore, double sumBefore)
    {
        float v = QuickSelect(values, (int)localRank);
        long less = 0, equal = 0;
        double sumLess = 0;
        foreach (var x in values)
        {
            if (Less(x, v))
            {
                less++;
                sumLess += x;
            }
            else if (x.Equals(v)) equal++;
        }
        return new RankedValue(rank, v, lessBefore + less, equal, sumBefore + sumLess);
    }

    /// <summary>How often a sampled selection fell back to collecting every value (for tests and benchmarks).</summary>
    internal static int Fallbacks;

    private static Selection Direct(long count, int series, IReadOnlyList<IReadOnlyList<long>> ranks, ChunkSource source, CancellationToken ct)
    {
        if (count > DirectThreshold) Interlocked.Increment(ref Fallbacks);
        if (count > Array.MaxLength) throw new InvalidOperationException($"cannot select among {count} values");
        var result = new RankedValue[series][];
        var all = new float[series][];
        for (int s = 0; s < series; s++)
        {
            if (ranks[s].Count == 0)
            {
                result[s] = [];
                continue;
            }
            var values = GC.AllocateUninitializedArray<float>((int)count);
            int series1 = s;
            Chunked.For(count, ct, (_, start, length, sc) =>
            {
                source.Produce(start, length, sc);
                source.Series(series1, start, length, sc).CopyTo(values.AsSpan((int)start, length));
            });
            all[s] = values;
            result[s] = new RankedValue[ranks[s].Count];
            var work = (float[])values.Clone();
            for (int k = 0; k < ranks[s].Count; k++) result[s][k] = Finish(ranks[s][k], work, ranks[s][k], 0, 0);
        }
        return new Selection(result, count, source, null, null, all);
    }

    /// <summary>The outcome of a selection: the ranked values, and where to find boundary ties without another pass.</summary>
    public sealed class Selection
    {
        private readonly long _count;
        private readonly ChunkSource _source;
        private readonly List<(int Chunk, float[] Values)>[]? _candidates;
        private readonly Dictionary<(int, long), int>? _bracketOf;
        private readonly float[][]? _all;
        private readonly (float Lo, float Hi)[]? _ends;
        private readonly long[][]? _endCounts;

        internal Selection(RankedValue[][] results, long count, ChunkSource source, List<(int Chunk, float[] Values)>[]? candidates,
            Dictionary<(int, long), int>? bracketOf, float[][]? all, (float Lo, float Hi)[]? ends = null, long[][]? endCounts = null)
        {
            Results = results;
            _count = count;
            _source = source;
            _candidates = candidates;
            _bracketOf = bracketOf;
            _all = all;
            _ends = ends;
            _endCounts = endCounts;
        }

        /// <summary>Per series, per requested rank.</summary>
        public RankedValue[][] Results { get; }

        /// <summary>
        /// The element index of the <paramref name="q"/>-th (0-based, in index order) element of
        /// <paramref name="series"/> equal to the value found at <paramref name="rank"/>. Uses the per-chunk
        /// candidates of the pass (every element equal to that value is among them) and re-produces one chunk.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public long IndexOfEqual(int series, long rank, long q)
        {
            var found = Results[series].First(r => r.Rank == rank);
            float value = found.Value;
            if (_all is not null)
            {
                var a = _all[series];
                for (int i = 0; i < a.Length; i++)
                    if (a[i].Equals(value) && q-- == 0) return i;
                throw new InvalidOperationException("tie index not found");
            }
            int bracket = _bracketOf![(series, rank)];
            var perChunk = new SortedDictionary<int, long>();
            var (lo, hi) = _ends![bracket];
            if (value.Equals(lo) || value.Equals(hi))
            {
                // A bracket end: its ties were counted per chunk during the pass.
                int end = value.Equals(lo) ? 0 : 1;
                var counts = _endCounts![bracket];
                for (int c = 0; c < counts.Length / 2; c++)
                    if (counts[2 * c + end] > 0) perChunk[c] = counts[2 * c + end];
            }
            else
            {
                // Chunk order (each chunk once), so the counting stops at the chunk that holds the q-th equal element.
                long total = 0;
                foreach (var (chunk, values) in _candidates![bracket])
                {
                    long eq = CountEqual(values, value);
                    if (eq == 0) continue;
                    perChunk[chunk] = eq;
                    if ((total += eq) > q) break;
                }
            }
            long seen = 0;
            foreach (var (chunk, eq) in perChunk)
            {
                if (seen + eq <= q)
                {
                    seen += eq;
                    continue;
                }
                long start = (long)chunk * Chunked.Size;
                int length = (int)Math.Min(Chunked.Size, _count - start);
                var sc = ChunkScratch.ForCurrentThread();
                _source.Produce(start, length, sc);
                var v = _source.Series(series, start, length, sc);
                for (int j = 0; j < length; j++)
                    if (v[j].Equals(value) && seen++ == q) return start + j;
            }
            throw new InvalidOperationException("tie index not found");
        }
    }

    /// <summary>How many of <paramref name="values"/> equal <paramref name="value"/> (<see cref="float.Equals(float)"/>: NaN equals NaN, −0 equals +0).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static long CountEqual(ReadOnlySpan<float> values, float value)
    {
        long eq = 0;
        int i = 0;
        if (Vector.IsHardwareAccelerated && !float.IsNaN(value))
        {
            var v = new Vector<float>(value);
            var acc = Vector<int>.Zero;
            for (; i <= values.Length - Vector<float>.Count; i += Vector<float>.Count) acc -= Vector.Equals(new Vector<float>(values[i..]), v);
            eq = Vector.Sum(acc);
        }
        for (; i < values.Length; i++)
            if (values[i].Equals(value)) eq++;
        return eq;
    }

    /// <summary>What a scan finds in one chunk for one bracket.</summary>
    internal readonly record struct ScanResult(long Below, double SumBelow, long AtLow, long AtHigh, float[] Inside);

    /// <summary>
    /// Counts and (with <paramref name="sums"/>) sums the values below <paramref name="lo"/>, counts those equal to <paramref name="lo"/> and to
    /// <paramref name="hi"/> (once when lo = hi), and returns those strictly between (NaN counts as above every bracket).
    /// </summary>
    internal static ScanResult Scan(ReadOnlySpan<float> v, float lo, float hi, bool sums = true) => ScanCore<OneBracket>(v, lo, hi, lo, hi, sums).First;

    /// <summary>
    /// Two brackets of the same values in one pass (each vector loaded once): each result equal, bit for bit, to
    /// <see cref="Scan(ReadOnlySpan{float}, float, float, bool)"/> of its bracket alone (the same counts, the same lane
    /// and block order of the sums, the inside values in index order).
    /// </summary>
    internal static (ScanResult First, ScanResult Second) Scan(ReadOnlySpan<float> v, float lo0, float hi0, float lo1, float hi1, bool sums = true) =>
        ScanCore<TwoBrackets>(v, lo0, hi0, lo1, hi1, sums);

    private readonly struct OneBracket;

    private readonly struct TwoBrackets;

    /// <remarks>
    /// <typeparamref name="TBrackets"/> is <see cref="OneBracket"/> or <see cref="TwoBrackets"/>; the JIT compiles each
    /// without the other's branches, so the single-bracket loop is the plain one. The second bracket's accumulators stay
    /// in registers beside the first's (13 of the 16 AVX2 registers). The inside values go into per-thread buffers, copied
    /// out once per call: as a list (an add per value, growth, then a copy) they made the scan about 2.5× slower (a
    /// bracket holds a few percent of the values). Compiled fully optimised at its first call: tiered, a merge's first tensors
    /// scanned in unoptimised code (tier 0 calling its vector helpers, then OSR and instrumented code) about as long as in the
    /// final code (perf samples of a CLI sce merge: 2.7% vs 2.6% of the process).
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static (ScanResult First, ScanResult Second) ScanCore<TBrackets>(ReadOnlySpan<float> v, float lo0, float hi0, float lo1, float hi1, bool sums)
        where TBrackets : struct
    {
        bool two = typeof(TBrackets) == typeof(TwoBrackets);
        long below0 = 0, atLow0 = 0, atHigh0 = 0, below1 = 0, atLow1 = 0, atHigh1 = 0;
        double sumBelow0 = 0, sumBelow1 = 0;
        bool single0 = lo0 == hi0, single1 = lo1 == hi1;
        var inside0 = InsideBuffer(ref _insideBuffer, v.Length);
        var inside1 = two ? InsideBuffer(ref _insideBuffer2, v.Length) : inside0;
        int n0 = 0, n1 = 0, i = 0;
        if (Vector.IsHardwareAccelerated && v.Length >= Vector<float>.Count)
        {
            var vlo0 = new Vector<float>(lo0);
            var vhi0 = new Vector<float>(hi0);
            var vlo1 = new Vector<float>(lo1);
            var vhi1 = new Vector<float>(hi1);
            Vector<int> cntBelow0 = Vector<int>.Zero, cntLow0 = Vector<int>.Zero, cntHigh0 = Vector<int>.Zero;
            Vector<int> cntBelow1 = Vector<int>.Zero, cntLow1 = Vector<int>.Zero, cntHigh1 = Vector<int>.Zero;
            Vector<float> sum0 = Vector<float>.Zero, sum1 = Vector<float>.Zero;
            int w = Vector<float>.Count;
            // Partial sums in float per 1024 elements, then into double, to keep the sum accurate.
            int block = 0;
            for (; i <= v.Length - w; i += w)
            {
                var x = new Vector<float>(v.Slice(i, w));
                var isBelow = Vector.LessThan(x, vlo0);
                cntBelow0 -= isBelow;
                if (sums) sum0 += Vector.ConditionalSelect(isBelow, x, Vector<float>.Zero);
                cntLow0 -= Vector.Equals(x, vlo0);
                if (!single0) cntHigh0 -= Vector.Equals(x, vhi0);
                n0 = Extract(v, i, x, Vector.GreaterThan(x, vlo0) & Vector.LessThan(x, vhi0), inside0, n0);
                if (two)
                {
                    isBelow = Vector.LessThan(x, vlo1);
                    cntBelow1 -= isBelow;
                    if (sums) sum1 += Vector.ConditionalSelect(isBelow, x, Vector<float>.Zero);
                    cntLow1 -= Vector.Equals(x, vlo1);
                    if (!single1) cntHigh1 -= Vector.Equals(x, vhi1);
                    n1 = Extract(v, i, x, Vector.GreaterThan(x, vlo1) & Vector.LessThan(x, vhi1), inside1, n1);
                }
                if (++block == 128)
                {
                    sumBelow0 += Vector.Sum(sum0);
                    sum0 = Vector<float>.Zero;
                    if (two)
                    {
                        sumBelow1 += Vector.Sum(sum1);
                        sum1 = Vector<float>.Zero;
                    }
                    block = 0;
                }
            }
            below0 = Vector.Sum(cntBelow0);
            atLow0 = Vector.Sum(cntLow0);
            atHigh0 = Vector.Sum(cntHigh0);
            sumBelow0 += Vector.Sum(sum0);
            if (two)
            {
                below1 = Vector.Sum(cntBelow1);
                atLow1 = Vector.Sum(cntLow1);
                atHigh1 = Vector.Sum(cntHigh1);
                sumBelow1 += Vector.Sum(sum1);
            }
        }
        int tail = i;
        ScalarTail(v[tail..], lo0, hi0, single0, ref below0, ref sumBelow0, ref atLow0, ref atHigh0, inside0, ref n0);
        var first = new ScanResult(below0, sumBelow0, atLow0, atHigh0, n0 == 0 ? [] : inside0.AsSpan(0, n0).ToArray());
        if (!two) return (first, first);
        ScalarTail(v[tail..], lo1, hi1, single1, ref below1, ref sumBelow1, ref atLow1, ref atHigh1, inside1, ref n1);
        return (first, new ScanResult(below1, sumBelow1, atLow1, atHigh1, n1 == 0 ? [] : inside1.AsSpan(0, n1).ToArray()));
    }

    /// <summary>Appends the lanes of <paramref name="x"/> (the vector at <paramref name="i"/>) set in <paramref name="isIn"/> to <paramref name="inside"/>, lowest first.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Extract(ReadOnlySpan<float> v, int i, Vector<float> x, Vector<int> isIn, float[] inside, int n)
    {
        if (Vector.EqualsAll(isIn, Vector<int>.Zero)) return n;
        // The set lanes, lowest first (one bit per lane), instead of testing every lane.
        if (Vector<float>.Count == 8)
            for (uint bits = Vector256.ExtractMostSignificantBits(isIn.AsVector256()); bits != 0; bits &= bits - 1)
                inside[n++] = v[i + BitOperations.TrailingZeroCount(bits)];
        else
            for (int j = 0; j < Vector<float>.Count; j++)
                if (isIn[j] != 0) inside[n++] = x[j];
        return n;
    }

    /// <summary>The per-element scan of the values after the last whole vector, into one bracket's counts.</summary>
    private static void ScalarTail(ReadOnlySpan<float> v, float lo, float hi, bool single, ref long below, ref double sumBelow, ref long atLow, ref long atHigh,
        float[] inside, ref int n)
    {
        foreach (float x in v)
        {
            if (x < lo)
            {
                below++;
                sumBelow += x;
            }
            else if (x == lo) atLow++;
            else if (x == hi && !single) atHigh++;
            else if (x < hi) inside[n++] = x;
        }
    }

    /// <summary>The calling thread's buffer for the values inside a bracket (at most one per scanned value).</summary>
    private static float[] InsideBuffer(ref float[]? buffer, int length) =>
        buffer is { } held && held.Length >= length ? held : (buffer = new float[Math.Max(length, Chunked.Size)]);

    [ThreadStatic]
    private static float[]? _insideBuffer;

    /// <summary>The second bracket's buffer of a two-bracket scan.</summary>
    [ThreadStatic]
    private static float[]? _insideBuffer2;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static bool ContainsNaN(float[] a)
    {
        foreach (var x in a)
            if (float.IsNaN(x)) return true;
        return false;
    }

    /// <summary>The element of ascending rank <paramref name="k"/> (0-based), NaN last; reorders <paramref name="a"/>. Expected O(n).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float QuickSelect(float[] a, int k)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(k);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(k, a.Length);
        int left = 0, right = a.Length - 1;
        ulong state = 0x9E3779B97F4A7C15UL ^ (ulong)a.Length;
        while (right > left)
        {
            if (right - left < 32)
            {
                InsertionSort(a, left, right);
                return a[k];
            }
            var (pivot, lt, gt) = Partition(a, left, right, ref state);
            if (k < lt) right = lt - 1;
            else if (k > gt) left = gt + 1;
            else return pivot;
        }
        return a[k];
    }

    /// <summary>
    /// The elements of ascending ranks <paramref name="ks"/> (sorted ascending, 0-based) into <paramref name="values"/>, NaN last;
    /// reorders <paramref name="a"/>. One partition serves every rank on its side, so close ranks cost about one selection.
    /// </summary>
    public static void QuickSelect(float[] a, ReadOnlySpan<int> ks, Span<float> values)
    {
        if (values.Length != ks.Length) throw new ArgumentException("one value per rank", nameof(values));
        for (int q = 0; q < ks.Length; q++)
            if (ks[q] < 0 || ks[q] >= a.Length || (q > 0 && ks[q] < ks[q - 1])) throw new ArgumentOutOfRangeException(nameof(ks), "ranks must be ascending and inside the array");
        ulong state = 0x9E3779B97F4A7C15UL ^ (ulong)a.Length;
        SelectRange(a, 0, a.Length - 1, ks, values, ref state);
    }

    /// <summary>
    /// The elements of ascending ranks <paramref name="ks"/> (sorted ascending, 0-based) into <paramref name="values"/> by
    /// their order-preserving bit keys, 11 + 11 + 10 bits at a time (a histogram per digit, then only the keys in the
    /// ranks' bins go on): the same values, bit for bit, as <see cref="QuickSelect(float[], ReadOnlySpan{int}, Span{float})"/>,
    /// whose branchy three-way partitions cost about twice as much on BF16-like samples (few distinct values; measured on
    /// the merge benchmark, the bracket ends took 0.30-0.34 s of wall time with it, 0.19-0.25 s with this). False, with nothing selected, when <paramref name="a"/> holds a NaN or a −0 (equal to +0 for the
    /// comparisons but another key, so which of the two a quickselect returns depends on the order).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static bool RadixSelect(float[] a, ReadOnlySpan<int> ks, Span<float> values)
    {
        if (values.Length != ks.Length) throw new ArgumentException("one value per rank", nameof(values));
        var keys = GC.AllocateUninitializedArray<uint>(a.Length);
        for (int i = 0; i < a.Length; i++)
        {
            uint bits = BitConverter.SingleToUInt32Bits(a[i]);
            if (bits == 0x8000_0000u || float.IsNaN(a[i])) return false;
            keys[i] = (bits & 0x8000_0000u) != 0 ? ~bits : bits | 0x8000_0000u; // negatives reversed below the positives
        }
        RadixSelectKeys(keys, ks, values, 0);
        return true;
    }

    /// <summary>One digit of <see cref="RadixSelect"/> over keys that share the digits above it (level 0: bits 21-31, 1: 10-20, 2: 0-9).</summary>
    private static void RadixSelectKeys(ReadOnlySpan<uint> keys, ReadOnlySpan<int> ks, Span<float> values, int level)
    {
        int shift = level == 0 ? 21 : level == 1 ? 10 : 0;
        uint digitMask = level == 2 ? 0x3FFu : 0x7FFu;
        Span<int> count = stackalloc int[2048];
        count.Clear();
        foreach (uint k in keys) count[(int)((k >> shift) & digitMask)]++;
        int q = 0, before = 0;
        for (int bin = 0; q < ks.Length; bin++)
        {
            int c = count[bin];
            if (ks[q] >= before + c)
            {
                before += c;
                continue;
            }
            int r = q;
            while (r < ks.Length && ks[r] < before + c) r++;
            if (level == 2)
            {
                // Every key of the bin is the same: the shared upper digits and this one.
                uint key = (keys[0] & ~digitMask) | (uint)bin;
                float v = BitConverter.UInt32BitsToSingle((key & 0x8000_0000u) != 0 ? key & 0x7FFF_FFFFu : ~key);
                for (int t = q; t < r; t++) values[t] = v;
            }
            else
            {
                // Branch-free: a bin often holds a good part of the keys, so a branch per key would mispredict.
                var inBin = GC.AllocateUninitializedArray<uint>(c + 1);
                int n = 0;
                foreach (uint k in keys)
                {
                    inBin[n] = k;
                    n += ((k >> shift) & digitMask) == (uint)bin ? 1 : 0;
                }
                var local = new int[r - q];
                for (int t = q; t < r; t++) local[t - q] = ks[t] - before;
                RadixSelectKeys(inBin.AsSpan(0, c), local, values[q..r], level + 1);
            }
            before += c;
            q = r;
        }
    }

    private static void SelectRange(float[] a, int left, int right, ReadOnlySpan<int> ks, Span<float> values, ref ulong state)
    {
        while (ks.Length > 0)
        {
            if (right - left < 32)
            {
                InsertionSort(a, left, right);
                for (int q = 0; q < ks.Length; q++) values[q] = a[ks[q]];
                return;
            }
            var (pivot, lt, gt) = Partition(a, left, right, ref state);
            int below = 0, upTo = 0;
            while (below < ks.Length && ks[below] < lt) below++;
            upTo = below;
            while (upTo < ks.Length && ks[upTo] <= gt) values[upTo++] = pivot;
            SelectRange(a, left, lt - 1, ks[..below], values[..below], ref state);
            left = gt + 1;
            ks = ks[upTo..];
            values = values[upTo..];
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void InsertionSort(float[] a, int left, int right)
    {
        for (int u = left + 1; u <= right; u++)
        {
            float x = a[u];
            int j = u - 1;
            for (; j >= left && Less(x, a[j]); j--) a[j + 1] = a[j];
            a[j + 1] = x;
        }
    }

    /// <summary>
    /// Three-way partition of a[left..right] around the median of three pseudo-random elements (deterministic): on return
    /// a[left..lt-1] &lt; pivot = a[lt..gt] &lt; a[gt+1..right] (ties are common: zeros).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static (float Pivot, int Lt, int Gt) Partition(float[] a, int left, int right, ref ulong state)
    {
        state = state * 6364136223846793005UL + 1442695040888963407UL;
        int span = right - left + 1;
        float p0 = a[left + (int)((state >> 33) % (ulong)span)];
        float p1 = a[left + (int)((state >> 13) % (ulong)span)];
        float p2 = a[left + span / 2];
        float pivot = Median(p0, p1, p2);
        int lt = left, gt = right, i = left;
        while (i <= gt)
        {
            float x = a[i];
            if (Less(x, pivot))
            {
                a[i] = a[lt];
                a[lt] = x;
                lt++;
                i++;
            }
            else if (Less(pivot, x))
            {
                a[i] = a[gt];
                a[gt] = x;
                gt--;
            }
            else
            {
                i++;
            }
        }
        return (pivot, lt, gt);
    }

    private static float Median(float a, float b, float c)
    {
        if (Less(b, a)) (a, b) = (b, a);
        if (Less(c, b)) (b, c) = (c, b);
        if (Less(b, a)) (a, b) = (b, a);
        return b;
    }

    /// <summary>Total order with NaN greater than everything.</summary>
    private static bool Less(float x, float y) => x < y || (float.IsNaN(y) && !float.IsNaN(x));
}
