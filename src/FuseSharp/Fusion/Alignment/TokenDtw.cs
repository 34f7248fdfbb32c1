using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace FuseSharp.Fusion.Alignment;

/// <summary>How the DTW table is filled. Both give the reference's alignment exactly.</summary>
public enum DtwMode
{
    /// <summary>Every cell of the n×m table (the reference's work, without its Python overhead).</summary>
    Full,

    /// <summary>
    /// A band around the diagonal gives an upper bound UB on the optimal cost; then only cells whose cumulative cost
    /// can be ≤ UB are filled (PrunedDTW, Silva &amp; Batista 2016). Exact, ties included: every cell on the optimal
    /// path, and every neighbour the traceback compares it with that could tie, has a cost ≤ UB and is computed
    /// exactly; the skipped cells are provably more expensive. Integer tables (FuseLLM, FuseChat v2) whose costs all fit
    /// the memo are filled whole on AVX2 machines instead: the anti-diagonal fill does every cell faster than the bounds
    /// prune them.
    /// </summary>
    Banded,
}

/// <summary>
/// A monotone alignment of a blending (source) token sequence (length n) to a base (target) sequence (length m), as
/// the reference's <c>dtw(series_1 = blending, series_2 = base)</c> returns it. Because the path is monotone and
/// covers both sequences, the blending positions aligned to one base position form a contiguous range (and vice
/// versa), so it is stored as first/last per position.
/// </summary>
public sealed class DtwAlignment
{
    internal DtwAlignment(int[] baseFirst, int[] baseLast, int[] blendingFirst, int[] blendingLast, double totalCost, int pathLength)
    {
        BaseFirst = baseFirst;
        BaseLast = baseLast;
        BlendingFirst = blendingFirst;
        BlendingLast = blendingLast;
        TotalCost = totalCost;
        PathLength = pathLength;
    }

    /// <summary>Per base position j: the first blending position aligned to it.</summary>
    public IReadOnlyList<int> BaseFirst { get; }

    /// <summary>Per base position j: the last blending position aligned to it (≥ <see cref="BaseFirst"/>).</summary>
    public IReadOnlyList<int> BaseLast { get; }

    /// <summary>Per blending position i: the first base position aligned to it.</summary>
    public IReadOnlyList<int> BlendingFirst { get; }

    /// <summary>Per blending position i: the last base position aligned to it.</summary>
    public IReadOnlyList<int> BlendingLast { get; }

    /// <summary>The cumulative cost of the path (the reference's <c>matrix[-1, -1]</c>), float64.</summary>
    public double TotalCost { get; }

    /// <summary>Number of (i, j) pairs on the path (the reference's <c>len(matches)</c>).</summary>
    public int PathLength { get; }

    public int BaseLength => BaseFirst.Count;

    public int BlendingLength => BlendingFirst.Count;

    /// <summary>Number of blending positions aligned to base position <paramref name="j"/> (1 = one-to-one or n:1).</summary>
    public int BlendingCount(int j) => BaseLast[j] - BaseFirst[j] + 1;

    /// <summary>The reference's <c>base_to_blending</c> (its 4th return value): per base position, the ascending blending positions.</summary>
    public int[][] BaseToBlending() => Ranges(BaseFirst, BaseLast);

    /// <summary>The reference's <c>blending_to_base</c> (its 3rd return value).</summary>
    public int[][] BlendingToBase() => Ranges(BlendingFirst, BlendingLast);

    private static int[][] Ranges(IReadOnlyList<int> first, IReadOnlyList<int> last)
    {
        var r = new int[first.Count][];
        for (int j = 0; j < r.Length; j++)
        {
            r[j] = new int[last[j] - first[j] + 1];
            for (int k = 0; k < r[j].Length; k++) r[j][k] = first[j] + k;
        }
        return r;
    }
}

/// <summary>
/// Dynamic time warping over token strings, exactly as FuseLLM's / FuseChat's <c>dtw</c> (spec §4.1): table
/// <c>D[0][0] = 0</c>, <c>D[0][·] = D[·][0] = +∞</c>, <c>D[i+1][j+1] = c(i, j) + min(D[i][j+1], D[i+1][j], D[i][j])</c>
/// in float64, then a traceback from (n−1, m−1) that moves to the cheapest of diag / up / left with the variant's tie
/// order. The traceback's three candidates at a cell are exactly the three values the forward step minimised over,
/// so the move is decided during the forward pass (one byte per cell) and only two rows of costs are kept.
/// </summary>
public static class TokenDtw
{
    private const byte Diag = 0, Up = 1, Left = 2;

    /// <summary>Aligns <paramref name="blending"/> (the reference's <c>series_1</c>) to <paramref name="base"/> (<c>series_2</c>).</summary>
    /// <param name="blending">Source token strings (pieces, or decoded strings for FuseChat v2 as shipped).</param>
    /// <param name="base">Target token strings.</param>
    /// <param name="variant">Cost function and tie order.</param>
    /// <param name="blendingMarker">The source's whitespace marker (e.g. "Ġ"), "" for none.</param>
    /// <param name="baseMarker">The target's whitespace marker (e.g. "▁"), "" for none.</param>
    /// <param name="mode">Full table or exact banded/pruned.</param>
    /// <exception cref="FusionException">A sequence is empty.</exception>
    public static DtwAlignment Align(IReadOnlyList<string> blending, IReadOnlyList<string> @base, DtwVariant variant,
        string blendingMarker, string baseMarker, DtwMode mode = DtwMode.Banded)
    {
        ArgumentNullException.ThrowIfNull(blending);
        ArgumentNullException.ThrowIfNull(@base);
        CheckNotEmpty(blending.Count, @base.Count);
        var costs = new DtwCostMatrix(blending, @base, variant, blendingMarker, baseMarker);
        var alignment = Align(costs, variant.TieOrder(), mode);
        costs.ReturnBuffers();
        return alignment;
    }

    /// <summary>Aligns a cost matrix; <paramref name="handOverAfter"/> as in <see cref="Fill"/> (tests).</summary>
    internal static DtwAlignment Align(DtwCostMatrix costs, DtwTieOrder tie, DtwMode mode, bool computeAll = true, int handOverAfter = -1)
    {
        int n = costs.Rows, m = costs.Columns;
        if (computeAll) costs.ComputeAll();
        // An integer table with every cost memoized is filled whole by the anti-diagonal fill (eight cells per step cost
        // less than a bounded row's checks, even at a third of the cells live).
        if (mode == DtwMode.Full || (long)n * m <= 256 || CanWave(costs, keepMoves: true, bandLo: null))
        {
            var full = Fill(costs, tie, double.PositiveInfinity, null, null, null, null, keepMoves: true, out var fm);
            return TracebackAndReturn(fm!, n, m, full);
        }
        // 1. An upper bound: the cheapest path inside a band that follows the text (both sequences spell the same
        //    characters, so token i of one sits near the token of the other at the same character offset).
        var (lo, hi) = TextBand(costs, BandHalfWidth);
        double ub = Fill(costs, tie, double.PositiveInfinity, lo, hi, null, null, keepMoves: false, out _);
        // 2. The exact table restricted to cells that can still be on a path of cost <= ub: forward cost plus a
        //    consistent lower bound of the cost to go (every later row and every later column must be visited once).
        var rest = SuffixSums(costs.RowFloors());
        var restCols = SuffixSums(costs.ColumnFloors());
        double total = Fill(costs, tie, ub, null, null, rest, restCols, keepMoves: true, out var moves, handOverAfter);
        return TracebackAndReturn(moves!, n, m, total);
    }

    /// <summary><see cref="Traceback"/>, then the moves' buffers go back to <see cref="DtwBuffers"/> for the next alignment.</summary>
    private static DtwAlignment TracebackAndReturn(Moves moves, int n, int m, double total)
    {
        var alignment = Traceback(moves, n, m, total);
        DtwBuffers.Return(moves.Data);
        DtwBuffers.Return(moves.Waves);
        return alignment;
    }

    /// <summary>Half-width of the upper-bound band around the text-offset centre line, in tokens.</summary>
    internal const int BandHalfWidth = 24;

    /// <summary>The moves the forward pass decided, stored per row over the row's computed column range.</summary>
    internal sealed class Moves
    {
        public required int[] RowLo;
        public required int[] RowHi;
        public required long[] RowOffset;
        public required byte[] Data;

        /// <summary>
        /// Set when <see cref="FillWaves"/> filled the table (then <see cref="Data"/> is empty): per block of eight rows and step t
        /// (row r of the block at column t − r), a word whose bit r is set where diag is not a first minimum and bit 8 + r
        /// where the tie order's second choice is worse than its third (<see cref="RowMoves{T}"/>'s two facts, inverted).
        /// </summary>
        public ushort[]? Waves;
        public int WaveStride;
        public bool UpFirst;

        /// <summary>The move at cell (i, j).</summary>
        public byte At(int i, int j)
        {
            if (Waves is null) return Data[RowOffset[i] + (j - RowLo[i])];
            int r = i & 7;
            uint w = Waves[(long)(i >> 3) * WaveStride + j + r];
            if ((w >> r & 1) == 0) return Diag;
            bool second = (w >> (8 + r) & 1) == 0;
            return second == UpFirst ? Up : Left;
        }
    }

    /// <summary>
    /// Per row, a connected band of columns around the base position at the same relative text offset as the row's
    /// blending token (bytes of text, <see cref="DtwCostMatrix.TextBytes"/>), widened by <paramref name="halfWidth"/>. Connected: every row
    /// overlaps the previous one, bounds never decrease, row 0 starts at column 0 and the last row ends at m − 1, so
    /// the band holds a valid path and its cost is an upper bound of the optimum.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static (int[] Lo, int[] Hi) TextBand(DtwCostMatrix costs, int halfWidth)
    {
        int n = costs.Rows, m = costs.Columns;
        var cumT = new long[m + 1];
        for (int j = 0; j < m; j++) cumT[j + 1] = cumT[j] + Math.Max(1, costs.BaseBytes(j));
        long totalS = 0;
        for (int i = 0; i < n; i++) totalS += Math.Max(1, costs.BlendingBytes(i));
        var lo = new int[n];
        var hi = new int[n];
        long cumS = 0;
        for (int i = 0; i < n; i++)
        {
            int len = Math.Max(1, costs.BlendingBytes(i));
            double mid = (cumS + len / 2.0) * cumT[m] / totalS;
            cumS += len;
            int c = Array.BinarySearch(cumT, (long)mid);
            c = c >= 0 ? c : ~c - 1;
            c = Math.Clamp(c, 0, m - 1);
            lo[i] = Math.Max(0, c - halfWidth);
            hi[i] = Math.Min(m - 1, c + halfWidth);
            if (i > 0)
            {
                lo[i] = Math.Min(Math.Max(lo[i], lo[i - 1]), hi[i - 1] + 1);
                hi[i] = Math.Max(hi[i], hi[i - 1]);
            }
        }
        lo[0] = 0;
        hi[n - 1] = m - 1;
        return (lo, hi);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static double[] SuffixSums(double[] floors)
    {
        var r = new double[floors.Length + 1];
        for (int i = floors.Length - 1; i >= 0; i--) r[i] = r[i + 1] + floors[i];
        return r;
    }

    /// <summary>
    /// Fills the table row by row. A cell is "live" when its cumulative cost plus a lower bound of the cost still to
    /// come (<c>max(restRows[i+1], restCols[j+1])</c>, 0 without bounds) is at most <paramref name="ub"/>. Row i is
    /// computed from the first column live in the previous row (no live cell can start further left) while a live
    /// predecessor exists: from the previous row up to its last live column + 1, or from the left. Cells outside the
    /// computed range count as +∞. Because the bound is consistent (a cell's bound is at most the next cell's cost
    /// plus the next cell's bound), every cell that can lie on a path of cost ≤ ub, and every neighbour the traceback
    /// compares such a cell with that could tie it, is live and computed exactly; skipped cells are provably more
    /// expensive. With ub = +∞ this is the full table; <paramref name="bandLo"/>/<paramref name="bandHi"/> restrict
    /// rows further (for the upper-bound pass).
    /// <para>
    /// Integer costs (<see cref="DtwCostMatrix.IntegerCosts"/>) run the recurrence in int32: every partial sum is an
    /// integer below 2^30, which float64 holds exactly, so the sums, the minima and every tie decision are those of the
    /// reference's float64 table; +∞ is <see cref="DtwCostMatrix.IntInfinity"/> (plus a few costs, still above every
    /// finite sum, so an infinite neighbour never wins or ties a finite one). FuseChat v1's ×0.1 costs stay float64:
    /// its sums are rounded, and only the same additions in the same order give the same bits.
    /// </para>
    /// <para>
    /// A bounded float64 table (every cost memoized, moves kept, no band) hands the rows after a 16-row block with
    /// over a third of its cells live to <see cref="FillInterleavedFrom"/> (a bounded cell costs about three of
    /// <see cref="FillInterleavedFrom"/>'s cells) when <paramref name="handOverAfter"/> is -1; tests fix the last
    /// bounded row (≥ 0) or disable it (<see cref="int.MaxValue"/>).
    /// </para>
    /// </summary>
    /// <returns>The cumulative cost at (n−1, m−1), +∞ if it was not reached.</returns>
    internal static double Fill(DtwCostMatrix costs, DtwTieOrder tie, double ub, int[]? bandLo, int[]? bandHi,
        double[]? restRows, double[]? restCols, bool keepMoves, out Moves? moves, int handOverAfter = -1, bool waves = true)
    {
        if (waves && CanWave(costs, keepMoves, bandLo) && double.IsPositiveInfinity(ub))
        {
            int t = FillWaves(costs, tie, out moves);
            return t >= DtwCostMatrix.IntInfinity ? double.PositiveInfinity : t;
        }
        if (CanInterleave(costs, keepMoves, bandLo) && double.IsPositiveInfinity(ub))
            return FillInterleaved(costs, tie, out moves);
        if (!costs.IntegerCosts)
            return Fill<double>(costs, tie, ub, bandLo, bandHi, restRows, restCols, keepMoves, out moves, handOverAfter);
        double total = Fill<int>(costs, tie, ub, bandLo, bandHi, restRows, restCols, keepMoves, out moves, handOverAfter);
        return total >= DtwCostMatrix.IntInfinity ? double.PositiveInfinity : total;
    }

    /// <summary>Whether <see cref="FillInterleaved"/> can stand in: a float64 table with every cost memoized, moves kept, no band.</summary>
    private static bool CanInterleave(DtwCostMatrix costs, bool keepMoves, int[]? bandLo) =>
        !costs.IntegerCosts && costs.Complete && keepMoves && bandLo is null;

    /// <summary>Whether <see cref="FillWaves"/> can stand in: an integer table with every cost memoized, moves kept, no band, AVX2.</summary>
    internal static bool CanWave(DtwCostMatrix costs, bool keepMoves, int[]? bandLo) =>
        costs.IntegerCosts && costs.Complete && keepMoves && bandLo is null && Avx2.IsSupported;

    /// <summary>
    /// The full integer table eight rows at a time along anti-diagonals, in the eight int32 lanes of a 256-bit vector:
    /// at step t, lane r holds row r of the block at column t − r. Cell (r, t − r)'s up neighbour is lane r − 1 of step
    /// t − 1, its diag lane r − 1 of step t − 2 (the previous step's up vector), its left lane r of step t − 1; lane 0
    /// reads the row above the block. So one step is a lane shift, two minima and an add (a chain of about six cycles for
    /// eight cells, against one serial min-add chain per row), the costs one load from a skewed copy of the block's cost
    /// rows, and the moves two compares and a mask each. Integer (min, +) is exact, so every value and every tie
    /// decision is the row-by-row table's.
    /// <para>
    /// Lanes outside the table cost 0: before a row's column 0 (t &lt; r) a lane stays +∞ and only meets real cells as the
    /// +∞ border (the left and the diag of column 0). Past the last column (t − r ≥ m) lanes only feed lanes past it;
    /// rows past n (the last block's) are never read.
    /// </para>
    /// <para>
    /// (The same in float64, two vectors of four rows, measured no faster than <see cref="FillInterleaved"/> on Zen 3:
    /// the lane shift crosses 128-bit halves, and its latency sits on the chain.)
    /// </para>
    /// </summary>
    /// <returns>D[n−1][m−1].</returns>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe int FillWaves(DtwCostMatrix costs, DtwTieOrder tie, out Moves? moves)
    {
        const int Pad = 8; // row buffers: index Pad + j + 1 holds column j, Pad the border
        int n = costs.Rows, m = costs.Columns, stride = m + 7;
        long words = (long)((n + 7) / 8) * stride;
        if (words > Array.MaxLength) throw new FusionException($"DTW table of {n} x {m} tokens is too large", "split the text into shorter documents (fusesharp fuse split)");
        var waves = DtwBuffers.Take<ushort>((int)words);
        var above = new int[m + 2 * Pad];
        var next = new int[m + 2 * Pad];
        Array.Fill(above, DtwCostMatrix.IntInfinity);
        Array.Fill(next, DtwCostMatrix.IntInfinity);
        above[Pad] = 0; // D[0][0] = 0: the virtual row above row 0
        var colKey = costs.ColumnKeys;
        var memo = costs.Memo<int>();
        bool upFirst = tie == DtwTieOrder.DiagUpLeft;
        int total = DtwCostMatrix.IntInfinity;
        Span<int> rowBases = stackalloc int[8];
        // Skewed costs: step t's eight at 8 t, row r's column j at 8 (j + r) + r (zeros before column 0 and past the last).
        var skew = new int[(m + 8) * 8];
        fixed (int* memoPtr = memo)
        fixed (ushort* wavePtr = waves)
        fixed (int* basePtr = rowBases)
        fixed (int* skewPtr = skew)
        fixed (int* colKeyPtr = colKey)
        {
            for (int i0 = 0; i0 < n; i0 += 8)
            {
                int rows = Math.Min(8, n - i0);
                for (int r = 0; r < 8; r++) rowBases[r] = r < rows ? costs.RowBase(i0 + r) : 0;
                fixed (int* a = above)
                fixed (int* b = next)
                {
                    // The block's last row goes to the next block's row above; the table's last row to the total.
                    if (upFirst) WaveBlock<UpFirst>(memoPtr, a + Pad, b + Pad, wavePtr + (long)(i0 >> 3) * stride, skewPtr, basePtr, colKeyPtr, m, stride, rows - 1);
                    else WaveBlock<LeftFirst>(memoPtr, a + Pad, b + Pad, wavePtr + (long)(i0 >> 3) * stride, skewPtr, basePtr, colKeyPtr, m, stride, rows - 1);
                }
                if (i0 + rows == n) total = next[Pad + m];
                (above, next) = (next, above);
            }
        }
        var rowHi = new int[n];
        Array.Fill(rowHi, m - 1);
        moves = new Moves { RowLo = new int[n], RowHi = rowHi, RowOffset = new long[n + 1], Data = [], Waves = waves, WaveStride = stride, UpFirst = upFirst };
        return total;
    }

    /// <summary>
    /// One block of <see cref="FillWaves"/>: <paramref name="steps"/> anti-diagonal steps.
    /// <paramref name="above"/>/<paramref name="below"/> point at the border of the row above the block and of the row
    /// lane <paramref name="lane"/> is stored into (column j at j + 1; the row buffers reach 8 past column m − 1 and hold
    /// +∞ beyond what was stored). Step t's costs come from the skewed buffer at 8 t, written eight steps ahead
    /// (<see cref="SkewColumn"/>): eight scalar loads and stores per step cost less than a gather.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void WaveBlock<TOrder>(int* memo, int* above, int* below, ushort* moves, int* skew, int* rowBase, int* colKey, int columns, int steps, int lane)
        where TOrder : struct
    {
        for (int j = 0; j < Math.Min(8, columns); j++) SkewColumn(skew + j * 8, memo, rowBase, colKey[j]);
        var shift = Vector256.Create(0, 0, 1, 2, 3, 4, 5, 6);
        var pick = Vector256.Create(lane);
        var left = Vector256.Create(DtwCostMatrix.IntInfinity);  // step t − 1
        var diag = Vector256.WithElement(left, 0, above[0]);    // step t − 2 shifted, the row above's column t − 1 in lane 0
        below += 1 - lane;                                       // lane's column t − lane at index t
        for (int t = 0; t < steps; t++)
        {
            if (t + 8 < columns) SkewColumn(skew + (t + 8) * 8, memo, rowBase, colKey[t + 8]);
            var up = Avx2.Blend(Avx2.PermuteVar8x32(left, shift), Vector256.Create(above[t + 1]), 1);
            var v = Avx.LoadVector256(skew + t * 8) + Vector256.Min(Vector256.Min(diag, left), up);
            uint notDiag = (Vector256.GreaterThan(diag, up) | Vector256.GreaterThan(diag, left)).ExtractMostSignificantBits();
            uint notSecond = (typeof(TOrder) == typeof(UpFirst) ? Vector256.GreaterThan(up, left) : Vector256.GreaterThan(left, up)).ExtractMostSignificantBits();
            moves[t] = (ushort)(notDiag | notSecond << 8);
            below[t] = Avx2.PermuteVar8x32(v, pick).ToScalar(); // t < lane: before the border, +∞
            diag = up;
            left = v;
        }
    }

    /// <summary>Column j's costs for the block's eight rows into the skewed buffer (row r's at step j + r, lane r): <paramref name="slot"/> = buffer + 8 j.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void SkewColumn(int* slot, int* memo, int* rowBase, int key)
    {
        slot[0] = memo[rowBase[0] + key];
        slot[9] = memo[rowBase[1] + key];
        slot[18] = memo[rowBase[2] + key];
        slot[27] = memo[rowBase[3] + key];
        slot[36] = memo[rowBase[4] + key];
        slot[45] = memo[rowBase[5] + key];
        slot[54] = memo[rowBase[6] + key];
        slot[63] = memo[rowBase[7] + key];
    }

    private struct UpFirst;

    private struct LeftFirst;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // called a few times per alignment: no tier-0 / OSR code for the hot loops
    private static double Fill<T>(DtwCostMatrix costs, DtwTieOrder tie, double ub, int[]? bandLo, int[]? bandHi,
        double[]? restRowsReal, double[]? restColsReal, bool keepMoves, out Moves? moves, int handOverAfter)
        where T : struct, INumber<T>
    {
        int n = costs.Rows, m = costs.Columns;
        // Rows are stored shifted by one: index j + 1 holds column j, index 0 is the +∞ border. Cells outside a row's
        // computed range hold +∞ (the range of the row two back is cleared before reuse), so reads need no checks.
        T inf = Infinity<T>();
        var prev = new T[m + 1];
        var cur = new T[m + 1];
        Array.Fill(prev, inf);
        Array.Fill(cur, inf);
        int prevLo = 0, prevHi = -1, prevLastLive = -1, curOldLo = 0, curOldHi = -1;
        bool bounded = !double.IsPositiveInfinity(ub) && restRowsReal is not null && restColsReal is not null;
        var restRows = bounded ? Array.ConvertAll(restRowsReal!, T.CreateTruncating) : null;
        var restCols = bounded ? Array.ConvertAll(restColsReal!, T.CreateTruncating) : null;
        // The bounds are sums of float costs; a hair of slack keeps rounding from pruning a cell on the boundary
        // (integer sums are exact). Unbounded: every value is live, +∞ included, as in float64.
        T everything = typeof(T) == typeof(int) ? T.CreateTruncating(int.MaxValue) : inf;
        T limit = double.IsPositiveInfinity(ub)
            ? everything
            : T.CreateTruncating(typeof(T) == typeof(int) ? ub : ub + 1e-9 * Math.Max(1, Math.Abs(ub)));
        long filled = 0, blockFilled = 0;
        // (Not when whole rows of moves for the rest would not fit one buffer: the bounded fill keeps going then.)
        bool canHandOver = typeof(T) == typeof(double) && CanInterleave(costs, keepMoves, bandLo) && handOverAfter != int.MaxValue
            && (long)n * m <= Array.MaxLength;
        int[]? rowLo = keepMoves ? new int[n] : null, rowHi = keepMoves ? new int[n] : null;
        long[]? rowOffset = keepMoves ? new long[n + 1] : null;
        // Full tables need every cell; pruned ones start at up to 16 MB and grow the buffer as rows come. Every byte
        // read is written first, so the buffer is not cleared.
        byte[] data = keepMoves ? DtwBuffers.Take<byte>((int)Math.Min((long)n * m, double.IsPositiveInfinity(ub) && bandLo is null ? Array.MaxLength : 1L << 24)) : [];
        long used = 0;
        var memo = costs.Memo<T>();
        var colKey = costs.ColumnKeys;
        var lut = tie == DtwTieOrder.DiagUpLeft ? MovesDiagUpLeft : MovesDiagLeftUp;

        for (int i = 0; i < n; i++)
        {
            int lo;
            if (i == 0)
            {
                lo = 0;
                prev[0] = T.Zero; // D[0][0] = 0: the virtual predecessor of (0, 0)
            }
            else
            {
                prev[0] = inf;
                lo = -1;
                for (int j = prevLo; j <= prevHi; j++)
                {
                    if (Live(prev[j + 1], i - 1, j)) { lo = j; break; }
                }
                if (lo < 0) break; // nothing live: (n−1, m−1) is out of reach within the bound
            }
            int end = m - 1;
            if (bandLo is not null)
            {
                if (lo < bandLo[i]) lo = bandLo[i];
                end = bandHi![i];
            }
            if (keepMoves && used + (m - lo) > data.Length)
            {
                long want = Math.Max(used + (m - lo), Math.Min((long)data.Length * 2, (long)n * m));
                if (want > Array.MaxLength) throw new FusionException($"DTW table of {n} x {m} tokens is too large", "split the text into shorter documents (fusesharp fuse split)");
                Array.Resize(ref data, (int)want);
            }
            int rowBase = costs.RowBase(i);
            ref T restColRef = ref bounded ? ref MemoryMarshal.GetArrayDataReference(restCols!) : ref Unsafe.NullRef<T>();
            int hi = lo, lastLive = -1; // hi: the next column, then the last one
            T left = inf;
            bool leftLive = false;
            // The recurrence stops at a cost not computed yet (long documents keep one row of costs): compute it, go on.
            while (!RowRecurrence(rowBase, ref MemoryMarshal.GetArrayDataReference(prev), ref MemoryMarshal.GetArrayDataReference(cur),
                ref MemoryMarshal.GetArrayDataReference(memo), ref MemoryMarshal.GetArrayDataReference(colKey), ref restColRef,
                bounded ? restRows![i + 1] : T.Zero, limit, end, prevLastLive + 1, ref hi, ref left, ref leftLive, ref lastLive))
            {
                costs.Miss<T>(rowBase, hi);
            }
            hi--;
            // Clear what the buffer held two rows back outside this row's range (and column lo - 1: row i - 2's
            // border may hold the virtual 0 of row 0).
            for (int k = curOldLo; k <= Math.Min(curOldHi, lo - 1); k++) cur[k + 1] = inf;
            for (int k = Math.Max(curOldLo, hi + 1); k <= curOldHi; k++) cur[k + 1] = inf;
            cur[lo] = inf;
            if (keepMoves)
            {
                RowMoves(ref MemoryMarshal.GetArrayDataReference(prev), ref MemoryMarshal.GetArrayDataReference(cur), ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(data), (nint)(used - lo)), lo, hi, tie, lut);
                rowLo![i] = lo;
                rowHi![i] = hi;
                rowOffset![i] = used;
                used += hi - lo + 1;
            }
            curOldLo = prevLo;
            curOldHi = prevHi;
            (prev, cur) = (cur, prev);
            prevLo = lo;
            prevHi = hi;
            prevLastLive = lastLive;
            // A bound that prunes little costs more than it saves (the bounded row loop does more per cell). Past the
            // first eighth of the rows, with over three quarters of the cells so far live, the rest of an integer table
            // is filled unbounded (four-cell scans). Still exact: pruned cells read as +∞, so every value is at least the true one, and every
            // cell the traceback needs (live under the bound) has a live predecessor chain, computed exactly.
            // A float64 table with every cost memoized hands the rows after a 16-row block with over a third of its
            // cells live (a bounded cell costs about three of FillInterleaved's) to the four-row full fill, which
            // continues from this row as it stands (+∞ outside its range): exact by the same argument.
            filled += hi - lo + 1;
            blockFilled += hi - lo + 1;
            if (canHandOver && i + 1 < n
                && (handOverAfter >= 0 ? i == handOverAfter : bounded && (i + 1) % 16 == 0 && 3 * blockFilled > 16L * m))
            {
                var above = (double[])(object)prev;
                above[0] = double.PositiveInfinity;
                return FillInterleavedFrom(costs, tie, i + 1, above, rowLo!, rowHi!, rowOffset!, data, used, out moves);
            }
            if ((i + 1) % 16 == 0) blockFilled = 0;
            if (bounded && !canHandOver && i + 1 >= Math.Max(8, n / 8) && filled > 0.75 * (i + 1) * m)
            {
                bounded = false;
                limit = everything;
            }
            if (i == n - 1)
            {
                moves = keepMoves ? new Moves { RowLo = rowLo!, RowHi = rowHi!, RowOffset = rowOffset!, Data = data } : null;
                return hi == m - 1 ? double.CreateTruncating(prev[m]) : double.PositiveInfinity;
            }
        }
        moves = null;
        return double.PositiveInfinity;

        bool Live(T value, int row, int col) =>
            bounded ? value + T.Max(restRows![row + 1], restCols![col + 1]) <= limit : value <= limit;
    }

    /// <summary>
    /// The full float64 table (every cost memoized) four rows at a time. One row is a serial chain (min, then a float64
    /// add of 3-4 cycles latency per cell); four rows staggered by one column are four independent chains: at step t,
    /// row r of the block computes column t − r from its left neighbour (its own previous value), and the cells above
    /// it (row r − 1's values of steps t − 1 and t − 2), all in registers. Each cell is the same
    /// <c>c + min(min(diag, up), left)</c> of the same operands, so every value (and the moves from the finished rows)
    /// is bit for bit that of the row-by-row fill; only the order in which independent cells are computed changes.
    /// </summary>
    private static double FillInterleaved(DtwCostMatrix costs, DtwTieOrder tie, out Moves? moves)
    {
        int n = costs.Rows, m = costs.Columns;
        if ((long)n * m > Array.MaxLength) throw new FusionException($"DTW table of {n} x {m} tokens is too large", "split the text into shorter documents (fusesharp fuse split)");
        // The virtual row above row 0: D[0][0] = 0 at its border, +∞ elsewhere.
        var above = new double[m + 1];
        Array.Fill(above, double.PositiveInfinity);
        above[0] = 0;
        return FillInterleavedFrom(costs, tie, 0, above, new int[n], new int[n], new long[n + 1], DtwBuffers.Take<byte>(n * m), 0, out moves);
    }

    /// <summary>
    /// <see cref="FillInterleaved"/> from row <paramref name="start"/> on, below
    /// the row <paramref name="startAbove"/> (shifted by one, its border +∞; a bounded fill's last row, +∞ outside its range)
    /// whose moves fill <paramref name="data"/> up to <paramref name="used"/>; the rows' moves are appended whole.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static double FillInterleavedFrom(DtwCostMatrix costs, DtwTieOrder tie, int start, double[] startAbove,
        int[] rowLo, int[] rowHi, long[] rowOffset, byte[] data, long used, out Moves? moves)
    {
        int n = costs.Rows, m = costs.Columns;
        // At most n * m (used <= start * m), which the callers keep within Array.MaxLength.
        if (used + (long)(n - start) * m > data.Length) Array.Resize(ref data, (int)(used + (long)(n - start) * m));
        // Rows shifted by one (index j + 1 holds column j; index 0 is the +∞ border).
        var rows = new double[5][];
        for (int r = 0; r < 4; r++)
        {
            rows[r] = new double[m + 1];
            Array.Fill(rows[r], double.PositiveInfinity);
        }
        rows[4] = startAbove;
        var prev = startAbove;
        var memo = costs.Memo<double>();
        ref double memoRef = ref MemoryMarshal.GetArrayDataReference(memo);
        ref int colKey = ref MemoryMarshal.GetArrayDataReference(costs.ColumnKeys);
        var lut = tie == DtwTieOrder.DiagUpLeft ? MovesDiagUpLeft : MovesDiagLeftUp;
        Span<int> bases = stackalloc int[4];
        int i0 = start;
        for (; i0 < n; i0 += 4)
        {
            int block = Math.Min(4, n - i0);
            for (int r = 0; r < block; r++) bases[r] = costs.RowBase(i0 + r);
            ref double p = ref MemoryMarshal.GetArrayDataReference(prev);
            ref double r0 = ref MemoryMarshal.GetArrayDataReference(rows[0]);
            ref double r1 = ref MemoryMarshal.GetArrayDataReference(rows[1]);
            ref double r2 = ref MemoryMarshal.GetArrayDataReference(rows[2]);
            ref double r3 = ref MemoryMarshal.GetArrayDataReference(rows[3]);
            if (block == 4)
            {
                int b0 = bases[0], b1 = bases[1], b2 = bases[2], b3 = bases[3];
                // Steps 0..2 and m..m+2 (the staggered start and end) cell by cell from the stored rows; steps 3..m−1
                // (every row of the block has a column) in registers.
                int t = 0;
                for (; t < 3; t++) StaggeredStep(t, m, ref p, ref r0, ref r1, ref r2, ref r3, ref memoRef, ref colKey, bases);
                if (m > 3)
                {
                    // Row r's latest value (column t − 1 − r) and the one before; row 3's earlier value is never read.
                    double v0 = Unsafe.Add(ref r0, t), v1 = Unsafe.Add(ref r1, t - 1), v2 = Unsafe.Add(ref r2, t - 2), v3 = Unsafe.Add(ref r3, t - 3);
                    double w0 = Unsafe.Add(ref r0, t - 1), w1 = Unsafe.Add(ref r1, t - 2), w2 = Unsafe.Add(ref r2, t - 3);
                    // Indexed by the step (nint, constant offsets fold into the addresses): row r's column t − r, its cost row.
                    ref double c0 = ref Unsafe.Add(ref memoRef, b0);
                    ref double c1 = ref Unsafe.Add(ref memoRef, b1);
                    ref double c2 = ref Unsafe.Add(ref memoRef, b2);
                    ref double c3 = ref Unsafe.Add(ref memoRef, b3);
                    for (nint step = t; step < m; step++)
                    {
                        // Bottom row first: each row reads the row above's values of the previous two steps.
                        double n3 = Cell(Unsafe.Add(ref c3, Unsafe.Add(ref colKey, step - 3)), w2, v2, v3);
                        double n2 = Cell(Unsafe.Add(ref c2, Unsafe.Add(ref colKey, step - 2)), w1, v1, v2);
                        double n1 = Cell(Unsafe.Add(ref c1, Unsafe.Add(ref colKey, step - 1)), w0, v0, v1);
                        double n0 = Cell(Unsafe.Add(ref c0, Unsafe.Add(ref colKey, step)), Unsafe.Add(ref p, step), Unsafe.Add(ref p, step + 1), v0);
                        Unsafe.Add(ref r3, step - 2) = n3;
                        Unsafe.Add(ref r2, step - 1) = n2;
                        Unsafe.Add(ref r1, step) = n1;
                        Unsafe.Add(ref r0, step + 1) = n0;
                        w2 = v2; w1 = v1; w0 = v0;
                        v3 = n3; v2 = n2; v1 = n1; v0 = n0;
                    }
                }
                for (t = Math.Max(3, m); t < m + 3; t++) StaggeredStep(t, m, ref p, ref r0, ref r1, ref r2, ref r3, ref memoRef, ref colKey, bases);
            }
            else
            {
                // The last one to three rows, one at a time.
                ref double above = ref p;
                for (int r = 0; r < block; r++)
                {
                    ref double cur = ref MemoryMarshal.GetArrayDataReference(rows[r]);
                    double left = double.PositiveInfinity;
                    for (int j = 0; j < m; j++)
                    {
                        left = Cell(Unsafe.Add(ref memoRef, bases[r] + Unsafe.Add(ref colKey, j)), Unsafe.Add(ref above, j), Unsafe.Add(ref above, j + 1), left);
                        Unsafe.Add(ref cur, j + 1) = left;
                    }
                    above = ref cur;
                }
            }
            for (int r = 0; r < block; r++)
            {
                int i = i0 + r;
                rowOffset[i] = used + (long)(i - start) * m;
                RowMoves(ref MemoryMarshal.GetArrayDataReference(r == 0 ? prev : rows[r - 1]), ref MemoryMarshal.GetArrayDataReference(rows[r]),
                    ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(data), (nint)rowOffset[i]), 0, m - 1, tie, lut);
                rowLo[i] = 0;
                rowHi[i] = m - 1;
            }
            // The block's last row is the next block's row above (its border is +∞); its buffer is reused.
            (prev, rows[block - 1]) = (rows[block - 1], prev);
            prev[0] = double.PositiveInfinity;
            rows[block - 1][0] = double.PositiveInfinity;
        }
        rowOffset[n] = used + (long)(n - start) * m;
        moves = new Moves { RowLo = rowLo, RowHi = rowHi, RowOffset = rowOffset, Data = data };
        return prev[m];
    }

    /// <summary>One staggered step of <see cref="FillInterleaved"/> cell by cell from the stored rows: row r of the block, column t − r, where it exists.</summary>
    private static void StaggeredStep(int t, int m, ref double p, ref double r0, ref double r1, ref double r2, ref double r3, ref double memo, ref int colKey, Span<int> bases)
    {
        for (int r = 0; r < 4; r++)
        {
            int j = t - r;
            if (j < 0 || j >= m) continue;
            ref double above = ref r == 0 ? ref p : ref r == 1 ? ref r0 : ref r == 2 ? ref r1 : ref r2;
            ref double cur = ref r == 0 ? ref r0 : ref r == 1 ? ref r1 : ref r == 2 ? ref r2 : ref r3;
            Unsafe.Add(ref cur, j + 1) = Cell(Unsafe.Add(ref memo, bases[r] + Unsafe.Add(ref colKey, j)), Unsafe.Add(ref above, j), Unsafe.Add(ref above, j + 1), Unsafe.Add(ref cur, j));
        }
    }

    /// <summary><c>c + min(min(diag, up), left)</c> in float64 (<c>minsd</c>: the values are never NaN).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static double Cell(double c, double diag, double up, double left) =>
        (Vector128.CreateScalarUnsafe(c) + Min(Min(Vector128.CreateScalarUnsafe(diag), Vector128.CreateScalarUnsafe(up)), Vector128.CreateScalarUnsafe(left))).ToScalar();

    /// <summary>
    /// One row of the recurrence from column <paramref name="j"/> up to <paramref name="end"/>, stopping after column
    /// <paramref name="stopAfter"/> (the previous row's last live column + 1) once the left neighbour is not live; the
    /// moves follow from the finished rows (<see cref="RowMoves{T}"/>). The chain is left -> min -> add -> left, kept in
    /// a vector register as lane 0: one pminsd/minsd and one add per cell, no branch (which neighbour wins is
    /// data-dependent; mispredicted branches dominated the cell's cost), and no call in the loop (the register
    /// allocator would keep the chain in memory across it). <paramref name="prev"/>/<paramref name="cur"/> are shifted
    /// by one (index j + 1 holds column j); <paramref name="restCol"/> is a null ref without bounds.
    /// </summary>
    /// <returns>False when it stopped at column <paramref name="j"/> because its cost is not computed yet; the state
    /// (<paramref name="left"/>, <paramref name="leftLive"/>, <paramref name="lastLive"/>) continues from there.
    /// True when the row is done: <paramref name="j"/> is one past its last column.</returns>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static bool RowRecurrence<T>(int rowBase, ref T prev, ref T cur, ref T memo, ref int colKey, ref T restCol, T restRow, T limit,
        int end, int stopAfter, ref int j, ref T left, ref bool leftLive, ref int lastLive)
        where T : struct, INumber<T>
    {
        bool bounded = !Unsafe.IsNullRef(ref restCol);
        var l = Vector128.CreateScalarUnsafe(left);
        var restRowV = Vector128.CreateScalarUnsafe(restRow);
        bool live = leftLive, done = true;
        int k = j, last = lastLive;
        if (!bounded && limit == (typeof(T) == typeof(int) ? T.CreateTruncating(int.MaxValue) : Infinity<T>()))
        {
            // Unbounded (the full table, the upper-bound band): every cell is live, the row runs to the end.
            if (typeof(T) == typeof(int) && Ssse3.IsSupported && Sse41.IsSupported)
                l = MinPlusScan(rowBase, ref Unsafe.As<T, int>(ref prev), ref Unsafe.As<T, int>(ref cur), ref Unsafe.As<T, int>(ref memo), ref colKey, end, ref k, l.AsInt32()).As<int, T>();
            for (; k <= end; k++)
            {
                T c = Unsafe.Add(ref memo, rowBase + Unsafe.Add(ref colKey, k));
                if (Missing(c)) break;
                l = Vector128.CreateScalarUnsafe(c) + Min(Min(Vector128.CreateScalarUnsafe(Unsafe.Add(ref prev, k)), Vector128.CreateScalarUnsafe(Unsafe.Add(ref prev, k + 1))), l);
                Unsafe.Add(ref cur, k + 1) = l.ToScalar();
            }
            j = k;
            left = l.ToScalar();
            leftLive = true;
            lastLive = k - 1;
            return k > end;
        }
        for (; k <= end; k++)
        {
            if (k > stopAfter && !live) break;
            T c = Unsafe.Add(ref memo, rowBase + Unsafe.Add(ref colKey, k));
            if (Missing(c))
            {
                done = false;
                break;
            }
            // min(diag, up) first: only the last min and the add wait for the left neighbour.
            var diagUp = Min(Vector128.CreateScalarUnsafe(Unsafe.Add(ref prev, k)), Vector128.CreateScalarUnsafe(Unsafe.Add(ref prev, k + 1)));
            l = Vector128.CreateScalarUnsafe(c) + Min(diagUp, l);
            T v = l.ToScalar();
            Unsafe.Add(ref cur, k + 1) = v;
            live = (bounded ? (l + Max(restRowV, Vector128.CreateScalarUnsafe(Unsafe.Add(ref restCol, k + 1)))).ToScalar() : v) <= limit;
            if (live) last = k;
        }
        j = k;
        left = l.ToScalar();
        leftLive = live;
        lastLive = last;
        return done;
    }

    /// <summary>
    /// The unbounded integer row four cells at a time, as a (min, +) scan instead of a serial chain. With
    /// <c>u_j = min(diag_j, up_j)</c>, the recurrence <c>D_j = c_j + min(u_j, D_{j−1})</c> unrolls to
    /// <c>D_j = min(D_{−1} + P_j, min_{k≤j} (u_k + c_k + … + c_j)) = P_j + min(D_{−1}, min_{k≤j} t_k)</c> with the prefix
    /// sums <c>P_j = c_0 + … + c_j</c> of the four costs and <c>t_k = u_k + c_k − P_k</c>; <c>D_{−1}</c> is the left
    /// neighbour carried from the previous four. Integer (min, +) is exact, so every value equals the serial chain's
    /// (the same minimum of the same sums). No overflow: costs are at most the longest string and a row's costs sum to
    /// below 2^29 (<see cref="DtwCostMatrix.IntegerCosts"/>), so <c>t_k ≤ u_k</c> stays below 2^31 even for the +∞ border
    /// (<see cref="DtwCostMatrix.IntInfinity"/> plus a few costs), and <c>P_j + min(…)</c> is a value the chain holds too.
    /// Stops before four cells with a cost not computed yet (the scalar loop takes over there).
    /// </summary>
    /// <returns>The last computed value (the next cell's left neighbour) in lane 0; <paramref name="k"/> is the next column.</returns>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<int> MinPlusScan(int rowBase, ref int prev, ref int cur, ref int memo, ref int colKey, int end, ref int k, Vector128<int> left)
    {
        var identity = Vector128.Create(int.MaxValue);
        var carry = Vector128.Create(left.ToScalar());
        int j = k;
        for (; j + 3 <= end; j += 4)
        {
            var c = Vector128.Create(
                Unsafe.Add(ref memo, rowBase + Unsafe.Add(ref colKey, j)),
                Unsafe.Add(ref memo, rowBase + Unsafe.Add(ref colKey, j + 1)),
                Unsafe.Add(ref memo, rowBase + Unsafe.Add(ref colKey, j + 2)),
                Unsafe.Add(ref memo, rowBase + Unsafe.Add(ref colKey, j + 3)));
            if (Vector128.LessThanAny(c, Vector128<int>.Zero)) break;
            var u = Vector128.Min(Vector128.LoadUnsafe(ref prev, (nuint)j), Vector128.LoadUnsafe(ref prev, (nuint)j + 1));
            var p = c + Sse2.ShiftLeftLogical128BitLane(c, 4);
            p += Sse2.ShiftLeftLogical128BitLane(p, 8);
            var t = u + c - p;
            // Prefix minimum: lanes shifted up by one and two, int.MaxValue shifted in.
            t = Vector128.Min(t, Ssse3.AlignRight(t, identity, 12));
            t = Vector128.Min(t, Ssse3.AlignRight(t, identity, 8));
            var d = p + Vector128.Min(t, carry);
            d.StoreUnsafe(ref cur, (nuint)j + 1);
            carry = Sse2.Shuffle(d, 0xFF);
        }
        k = j;
        return carry;
    }

    /// <summary>
    /// The traceback's move at cells lo..hi of a finished row (<paramref name="cur"/>, from <paramref name="prev"/>):
    /// the first minimum of diag / up / left in the tie order, <c>np.argmin</c>'s choice. Four cells at a time: the
    /// comparisons as lane masks, a table maps (is-diag bits, second-choice bits) to four move bytes.
    /// <paramref name="moves"/> points at column 0 of the row's move bytes.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void RowMoves<T>(ref T prev, ref T cur, ref byte moves, int lo, int hi, DtwTieOrder tie, uint[] lut)
        where T : struct, INumber<T>
    {
        bool upFirst = tie == DtwTieOrder.DiagUpLeft;
        int j = lo;
        if (Vector256.IsHardwareAccelerated)
        {
            for (; j + 3 <= hi; j += 4)
            {
                uint isDiag, second;
                if (typeof(T) == typeof(int))
                {
                    var d = Vector128.LoadUnsafe(ref Unsafe.As<T, int>(ref prev), (nuint)j);
                    var u = Vector128.LoadUnsafe(ref Unsafe.As<T, int>(ref prev), (nuint)j + 1);
                    var l = Vector128.LoadUnsafe(ref Unsafe.As<T, int>(ref cur), (nuint)j);
                    isDiag = (Vector128.LessThanOrEqual(d, u) & Vector128.LessThanOrEqual(d, l)).ExtractMostSignificantBits();
                    second = (upFirst ? Vector128.LessThanOrEqual(u, l) : Vector128.LessThanOrEqual(l, u)).ExtractMostSignificantBits();
                }
                else
                {
                    var d = Vector256.LoadUnsafe(ref Unsafe.As<T, double>(ref prev), (nuint)j);
                    var u = Vector256.LoadUnsafe(ref Unsafe.As<T, double>(ref prev), (nuint)j + 1);
                    var l = Vector256.LoadUnsafe(ref Unsafe.As<T, double>(ref cur), (nuint)j);
                    isDiag = (Vector256.LessThanOrEqual(d, u) & Vector256.LessThanOrEqual(d, l)).ExtractMostSignificantBits();
                    second = (upFirst ? Vector256.LessThanOrEqual(u, l) : Vector256.LessThanOrEqual(l, u)).ExtractMostSignificantBits();
                }
                Unsafe.WriteUnaligned(ref Unsafe.Add(ref moves, j), lut[isDiag | (second << 4)]);
            }
        }
        for (; j <= hi; j++)
        {
            T diag = Unsafe.Add(ref prev, j), up = Unsafe.Add(ref prev, j + 1), left = Unsafe.Add(ref cur, j);
            int isDiag = Bit((diag <= up) & (diag <= left));
            int second = Bit(upFirst ? up <= left : left <= up);
            Unsafe.Add(ref moves, j) = (byte)(lut[isDiag | (second << 4)] & 0xFF);
        }
    }

    /// <summary>
    /// Move bytes of four cells (cell k in byte k) from bit k = "diag is a first minimum" and bit 4 + k = "the tie order's
    /// second choice is no worse than its third" (up ≤ left for diag &gt; up &gt; left, left ≤ up for diag &gt; left &gt; up).
    /// </summary>
    private static readonly uint[] MovesDiagUpLeft = MoveTable(Up, Left), MovesDiagLeftUp = MoveTable(Left, Up);

    private static uint[] MoveTable(byte second, byte third)
    {
        var t = new uint[256];
        for (int index = 0; index < 256; index++)
            for (int k = 0; k < 4; k++)
            {
                uint move = (index >> k & 1) != 0 ? Diag : (index >> (4 + k) & 1) != 0 ? second : third;
                t[index] |= move << (8 * k);
            }
        return t;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static T Infinity<T>() where T : struct, INumber<T> =>
        typeof(T) == typeof(int) ? T.CreateTruncating(DtwCostMatrix.IntInfinity) : T.CreateTruncating(double.PositiveInfinity);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool Missing<T>(T c) where T : struct, INumber<T> =>
        typeof(T) == typeof(int) ? Unsafe.BitCast<T, int>(c) < 0 : double.IsNaN(Unsafe.BitCast<T, double>(c));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Bit(bool b) => Unsafe.BitCast<bool, byte>(b);

    /// <summary>
    /// Lane 0 of min(a, b) for values that are never NaN (costs are finite or +∞): one <c>minsd</c> / <c>pminsd</c>.
    /// (<see cref="Vector128.Min{T}(Vector128{T}, Vector128{T})"/> on float64 adds NaN and signed-zero fix-ups this
    /// table has no use for.)
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<T> Min<T>(Vector128<T> a, Vector128<T> b) where T : struct, INumber<T> =>
        typeof(T) == typeof(double) && Sse2.IsSupported ? Sse2.MinScalar(a.AsDouble(), b.AsDouble()).As<double, T>() : Vector128.Min(a, b);

    /// <summary>Lane 0 of max(a, b) for values that are never NaN, as <see cref="Min{T}"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<T> Max<T>(Vector128<T> a, Vector128<T> b) where T : struct, INumber<T> =>
        typeof(T) == typeof(double) && Sse2.IsSupported ? Sse2.MaxScalar(a.AsDouble(), b.AsDouble()).As<double, T>() : Vector128.Max(a, b);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static DtwAlignment Traceback(Moves moves, int n, int m, double total)
    {
        if (double.IsInfinity(total))
            throw new InvalidOperationException($"DTW: the end cell ({n - 1}, {m - 1}) was not reached; the pruning bound was too small");
        var baseFirst = new int[m];
        var baseLast = new int[m];
        var blendFirst = new int[n];
        var blendLast = new int[n];
        Array.Fill(baseLast, -1);
        Array.Fill(blendLast, -1);
        int i = n - 1, j = m - 1, pairs = 0;
        while (true)
        {
            // Visiting backwards: the first visit of a row/column is its last element, the latest its first.
            if (baseLast[j] < 0) baseLast[j] = i;
            baseFirst[j] = i;
            if (blendLast[i] < 0) blendLast[i] = j;
            blendFirst[i] = j;
            pairs++;
            if (i == 0 && j == 0) break;
            if (j < moves.RowLo[i] || j > moves.RowHi[i])
                throw new InvalidOperationException($"DTW traceback left the computed region at ({i}, {j})");
            switch (moves.At(i, j))
            {
                case Diag: i--; j--; break;
                case Up: i--; break;
                default: j--; break;
            }
            if (i < 0 || j < 0) throw new InvalidOperationException("DTW traceback stepped outside the table");
        }
        return new DtwAlignment(baseFirst, baseLast, blendFirst, blendLast, total, pairs);
    }

    /// <summary>
    /// The reference algorithm as written in Python: the full (n+1)×(m+1) float64 table with the cost evaluated per cell
    /// (no memo), then a traceback that reads the three neighbours from the table. Kept as the test oracle and the
    /// benchmark baseline for <see cref="Align(IReadOnlyList{string}, IReadOnlyList{string}, DtwVariant, string, string, DtwMode)"/>.
    /// </summary>
    public static DtwAlignment AlignReference(IReadOnlyList<string> blending, IReadOnlyList<string> @base, DtwVariant variant, string blendingMarker, string baseMarker)
    {
        CheckNotEmpty(blending.Count, @base.Count);
        int n = blending.Count, m = @base.Count;
        var d = new double[n + 1, m + 1];
        for (int j = 0; j <= m; j++) d[0, j] = double.PositiveInfinity;
        for (int i = 0; i <= n; i++) d[i, 0] = double.PositiveInfinity;
        d[0, 0] = 0;
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < m; j++)
            {
                double c = ReferenceCost(blending[i], @base[j], variant, blendingMarker, baseMarker);
                d[i + 1, j + 1] = c + Math.Min(Math.Min(d[i, j + 1], d[i + 1, j]), d[i, j]);
            }
        }
        var tie = variant.TieOrder();
        int ii = n - 1, jj = m - 1;
        var b2s = new List<int>[m];
        var s2b = new List<int>[n];
        for (int j = 0; j < m; j++) b2s[j] = [];
        for (int i = 0; i < n; i++) s2b[i] = [];
        int pairs = 0;
        while (ii > 0 || jj > 0)
        {
            pairs++;
            s2b[ii].Add(jj);
            b2s[jj].Add(ii);
            // A = D[1:, 1:]: A[i-1][j-1] = d[i, j].
            double diag = ii > 0 && jj > 0 ? d[ii, jj] : double.PositiveInfinity;
            double up = ii > 0 ? d[ii, jj + 1] : double.PositiveInfinity;
            double left = jj > 0 ? d[ii + 1, jj] : double.PositiveInfinity;
            double[] options = tie == DtwTieOrder.DiagUpLeft ? [diag, up, left] : [diag, left, up];
            int arg = 0;
            for (int k = 1; k < 3; k++) if (options[k] < options[arg]) arg = k;
            bool isUp = tie == DtwTieOrder.DiagUpLeft ? arg == 1 : arg == 2;
            if (arg == 0) { ii--; jj--; }
            else if (isUp) ii--;
            else jj--;
        }
        pairs++;
        s2b[0].Add(0);
        b2s[0].Add(0);
        int[] bf = new int[m], bl = new int[m], sf = new int[n], sl = new int[n];
        for (int j = 0; j < m; j++) { bf[j] = b2s[j].Min(); bl[j] = b2s[j].Max(); }
        for (int i = 0; i < n; i++) { sf[i] = s2b[i].Min(); sl[i] = s2b[i].Max(); }
        return new DtwAlignment(bf, bl, sf, sl, d[n, m], pairs);
    }

    /// <summary>One cell's cost as the reference's <c>dist_fn</c> computes it (string operations per call).</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    internal static double ReferenceCost(string s, string t, DtwVariant variant, string ms, string mt)
    {
        string aa = DtwVariants.ReplaceMarker(s, ms, ""), bb = DtwVariants.ReplaceMarker(t, mt, "");
        switch (variant)
        {
            case DtwVariant.FuseLlm:
                return Levenshtein.DistanceReference(Levenshtein.CodePoints(aa), Levenshtein.CodePoints(bb));
            case DtwVariant.FuseChatV1:
            {
                int dist = Levenshtein.DistanceReference(Levenshtein.CodePoints(aa), Levenshtein.CodePoints(bb));
                return aa.Contains(bb, StringComparison.Ordinal) || bb.Contains(aa, StringComparison.Ordinal) ? dist * 0.1 : dist;
            }
            default:
                if (Levenshtein.CodePoints(aa).Length == 0 || Levenshtein.CodePoints(bb).Length == 0)
                {
                    aa = DtwVariants.ReplaceMarker(s, ms, mt);
                    bb = t;
                }
                return Levenshtein.DistanceReference(Levenshtein.CodePoints(aa), Levenshtein.CodePoints(bb));
        }
    }

    private static void CheckNotEmpty(int n, int m)
    {
        if (n == 0 || m == 0)
            throw new FusionException($"cannot align an empty token sequence (blending {n} tokens, base {m} tokens)", "every document must have at least one token in both tokenizations");
    }
}

/// <summary>
/// Per-thread reuse of an alignment's large buffers (the cost memo and the moves: 4-12 MB for a 2048-token pair).
/// A fresh large array costs page faults on first touch and large-object-heap collections on every call; a reused one
/// is already mapped. A buffer is taken out of its thread's slot while in use (so a nested or interleaved alignment on
/// the same thread gets a new one) and put back when the alignment is done; buffers above <see cref="MaxKeptBytes"/>
/// are left to the GC. Contents are not cleared: every user writes what it reads (as with uninitialised arrays).
/// </summary>
internal static class DtwBuffers
{
    /// <summary>Largest buffer kept per thread and element type (so at most 128 MB per thread stays allocated after the
    /// alignments; a 2048-token pair's buffers are 4-12 MB).</summary>
    internal const long MaxKeptBytes = 32L << 20;

    [ThreadStatic] private static byte[]? t_bytes;
    [ThreadStatic] private static ushort[]? t_ushorts;
    [ThreadStatic] private static int[]? t_ints;
    [ThreadStatic] private static double[]? t_doubles;
    [ThreadStatic] private static int t_reused;

    /// <summary>How many kept buffers this thread has handed out again (tests).</summary>
    internal static int Reused => t_reused;

    /// <summary>A buffer of at least <paramref name="length"/> elements (uninitialised): this thread's kept one if large enough.</summary>
    internal static T[] Take<T>(int length) where T : unmanaged
    {
        var kept = Slot<T>();
        if (kept is not null && kept.Length >= length)
        {
            SetSlot<T>(null);
            t_reused++;
            return kept;
        }
        return GC.AllocateUninitializedArray<T>(length);
    }

    /// <summary>Hands a buffer back for the next alignment on this thread (kept if it is the larger one and not too large).</summary>
    internal static void Return<T>(T[]? buffer) where T : unmanaged
    {
        if (buffer is null || (long)buffer.Length * Unsafe.SizeOf<T>() > MaxKeptBytes) return;
        var kept = Slot<T>();
        if (kept is null || kept.Length < buffer.Length) SetSlot(buffer);
    }

    private static T[]? Slot<T>() =>
        typeof(T) == typeof(byte) ? (T[]?)(object?)t_bytes
        : typeof(T) == typeof(ushort) ? (T[]?)(object?)t_ushorts
        : typeof(T) == typeof(int) ? (T[]?)(object?)t_ints
        : typeof(T) == typeof(double) ? (T[]?)(object?)t_doubles
        : throw new NotSupportedException(typeof(T).Name);

    private static void SetSlot<T>(T[]? buffer)
    {
        if (typeof(T) == typeof(byte)) t_bytes = (byte[]?)(object?)buffer;
        else if (typeof(T) == typeof(ushort)) t_ushorts = (ushort[]?)(object?)buffer;
        else if (typeof(T) == typeof(int)) t_ints = (int[]?)(object?)buffer;
        else if (typeof(T) == typeof(double)) t_doubles = (double[]?)(object?)buffer;
        else throw new NotSupportedException(typeof(T).Name);
    }
}
