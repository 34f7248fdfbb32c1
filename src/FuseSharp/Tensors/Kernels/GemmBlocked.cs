using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.X86;

namespace FuseSharp.Tensors.Kernels;

/// <summary>The operands of one GEMM call, as raw pointers (see <see cref="Gemm"/> for the shapes).</summary>
internal readonly unsafe struct GemmArgs<TB> where TB : unmanaged
{
    public readonly bool TransA, TransB, Accumulate;
    public readonly int M, N, K;
    public readonly float* A;
    public readonly TB* B;
    public readonly float* C;
    public readonly nint Lda, Ldb, Ldc;

    public GemmArgs(bool transA, bool transB, int m, int n, int k, float* a, nint lda, TB* b, nint ldb, float* c, nint ldc, bool accumulate)
    {
        TransA = transA; TransB = transB; M = m; N = n; K = k;
        A = a; Lda = lda; B = b; Ldb = ldb; C = c; Ldc = ldc; Accumulate = accumulate;
    }
}

/// <summary>
/// Cache-blocked GEMM around a micro-kernel (Goto and van de Geijn, "Anatomy of high-performance matrix
/// multiplication", TOMS 2008; the BLIS loop nest). For each slab of NC columns of op(B): the whole slab
/// (K x NC) is packed once into NR-wide panels, split by k blocks of KC (cooperatively by all threads); then
/// every thread takes its own rectangle of C (row panels, and column panels when rows are scarce) and, per block
/// of MC rows and per k block, packs that A block into MR-wide panels (in its L2) and runs the micro-kernel over
/// every (B micro-panel, A micro-panel) pair: the B micro-panel stays in L1 while the A panels stream from L2.
/// With one k block, edge tiles (rows &lt; MR or columns &lt; NR) run the full kernel into a stack tile and copy the
/// valid part; with 4 or more (C overwritten), every tile's partial sums live in a per-thread C block of whole tiles
/// and the last k block's kernel call adds them in and writes C (edge tiles through the stack tile).
/// </summary>
internal static unsafe class GemmBlocked
{
    /// <summary>Largest packed B slab (floats): 16 MiB, half the L3 of the machines this is tuned on.</summary>
    public const long SlabFloats = 4L << 20;

    /// <summary>Per-thread work below which another thread costs more than it saves (FMAs; ~25 µs of one core, several times the cost of starting one).</summary>
    private const long FmasPerThread = 1L << 20;

    /// <summary>The phases <see cref="Probe"/> times; <see cref="Call"/> is the whole call, on the calling thread.</summary>
    internal enum Phase { PackB, PackA, Kernel, Call }

    /// <summary>One timed phase: the managed thread that ran it, its start and duration in <see cref="Stopwatch"/> ticks and its work.</summary>
    internal readonly record struct ProbeEntry(Phase Phase, int Thread, long Start, long Ticks, long Work);

    /// <summary>
    /// When set (the benchmark's profile), each thread adds one entry per phase it runs: a thread's share of a slab's B
    /// pack (work: floats packed), one A block's pack (floats) and the kernel sweep over one A block and k block (FMAs),
    /// and the caller one entry per call (work: FMAs). Short entries show the rates of undisturbed runs on a busy
    /// machine; starts and threads give each call's timeline (when a thread started, waited, finished).
    /// </summary>
    internal static ConcurrentQueue<ProbeEntry>? Probe;

    private static long Stamp() => Probe is null ? 0 : Stopwatch.GetTimestamp();

    private static void Record(Phase phase, long start, long work) =>
        Probe?.Enqueue(new ProbeEntry(phase, Environment.CurrentManagedThreadId, start, Stopwatch.GetTimestamp() - start, work));

    public static void Run<TK, TB>(in GemmArgs<TB> x, int threads, bool simd, long slabFloats = SlabFloats, bool bufferC = true)
        where TK : struct, IGemmMicroKernel where TB : unmanaged
    {
        int nr = TK.NR, m = x.M, n = x.N, k = x.K;

        // k blocks of (nearly) equal size, at most KC.
        int kBlocks = (k + TK.KC - 1) / TK.KC;
        int kc = (k + kBlocks - 1) / kBlocks;

        // Column slabs of equal width (a multiple of NR), so that a slab holds at most SlabFloats.
        int nPanelsAll = (n + nr - 1) / nr;
        int maxSlabPanels = (int)Math.Clamp(slabFloats / ((long)k * nr), 1, nPanelsAll);
        int slabs = (nPanelsAll + maxSlabPanels - 1) / maxSlabPanels;
        int slabPanels = (nPanelsAll + slabs - 1) / slabs;

        threads = (int)Math.Clamp((long)m * n * k / FmasPerThread, 1, threads);
        long callStart = Stamp();
        using var slab = GemmBuffers.Rent(GemmBuffers.Slot.B, (long)k * slabPanels * nr + GemmPacking.Slack);
        var job = new SlabJob<TK, TB>(x, slab.Pointer, kc, simd, bufferC);
        for (int jc = 0; jc < n; jc += slabPanels * nr)
        {
            job.Jc = jc;
            job.Nc = Math.Min(slabPanels * nr, n - jc);
            job.MoreSlabs = jc + job.Nc < n;
            int panels = (job.Nc + nr - 1) / nr;
            job.Plan(threads);
            if (job.Threads == 1)
            {
                job.PackB(0, panels);
                job.Compute(0);
            }
            else
            {
                Parallel.For(0, job.Threads, Parallelism.Options, job.PackPart);
                Parallel.For(0, job.Threads, Parallelism.Options, job.Compute);
            }
        }
        Record(Phase.Call, callStart, (long)m * n * k);
    }

    /// <summary>One slab of columns: its packed B (shared) and the split of C among threads.</summary>
    private sealed class SlabJob<TK, TB>(GemmArgs<TB> x, float* slab, int kc, bool simd, bool bufferC)
        where TK : struct, IGemmMicroKernel where TB : unmanaged
    {
        public int Jc, Nc, Threads;

        /// <summary>Whether another slab follows this one (its first A blocks are this one's again).</summary>
        public bool MoreSlabs;
        private int _rowItems, _colItems;

        /// <summary>
        /// Splits C into Threads = rowItems x colItems rectangles of whole panels, choosing the split (and, when the
        /// panels are few, fewer threads) that minimises the largest item. Splitting rows shares the packed B slab at
        /// no cost; splitting columns makes every column part pack the same A rows again, so the cost of an item is
        /// its FMAs per k plus 8 FMA-equivalents per packed A value.
        /// </summary>
        public void Plan(int threads)
        {
            int rowPanels = (x.M + TK.MR - 1) / TK.MR, colPanels = (Nc + TK.NR - 1) / TK.NR;
            long best = long.MaxValue;
            for (int t = Math.Min(threads, rowPanels * colPanels); t >= 1; t--)
            {
                for (int rows = 1; rows <= t; rows++)
                {
                    int cols = t / rows;
                    if (rows * cols != t || rows > rowPanels || cols > colPanels) continue;
                    long itemRows = (long)(rowPanels + rows - 1) / rows * TK.MR;
                    long itemCols = (long)(colPanels + cols - 1) / cols * TK.NR;
                    long cost = itemRows * itemCols + 8 * itemRows;
                    if (cost < best) (best, _rowItems, _colItems) = (cost, rows, cols);
                }
            }
            Threads = _rowItems * _colItems;
        }

        /// <summary>Thread <paramref name="t"/>'s share of the B panels.</summary>
        public void PackPart(int t)
        {
            // Shares packed at once must not write into each other: a transposing pack spills past a panel unless its
            // width is a multiple of 8 (GemmPacking).
            Debug.Assert(TK.NR % 8 == 0);
            int panels = (Nc + TK.NR - 1) / TK.NR;
            PackB(panels * t / Threads, panels * (t + 1) / Threads);
        }

        /// <summary>
        /// Packs B panels [p0, p1) of the slab for every k block: block q starts at slab + k0 * panels * NR, panel jp
        /// of it at + jp * kcq * NR. Stored [N, K] (transB), a panel is NR whole rows: packed over all k blocks in
        /// turn so each row is read start to end; stored [K, N], each k block is swept row by row across the panels.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void PackB(int p0, int p1)
        {
            long start = Stamp();
            int nr = TK.NR, panels = (Nc + nr - 1) / nr;
            if (x.TransB)
            {
                for (int jp = p0; jp < p1; jp++)
                {
                    int col = Jc + jp * nr, cols = Math.Min(nr, Nc - jp * nr);
                    for (int k0 = 0; k0 < x.K; k0 += kc)
                    {
                        int kcq = Math.Min(kc, x.K - k0);
                        float* dst = slab + (nint)k0 * panels * nr + (nint)jp * kcq * nr;
                        GemmPacking.PackTranspose(x.B + col * x.Ldb + k0, x.Ldb, cols, kcq, dst, nr, simd);
                    }
                }
            }
            else
            {
                for (int k0 = 0; k0 < x.K; k0 += kc)
                {
                    int kcq = Math.Min(kc, x.K - k0);
                    float* dst = slab + (nint)k0 * panels * nr + (nint)p0 * kcq * nr;
                    int col = Jc + p0 * nr, cols = Math.Min(Nc, p1 * nr) - p0 * nr;
                    GemmPacking.PackCopy(x.B + k0 * x.Ldb + col, x.Ldb, cols, kcq, dst, nr, (nint)kcq * nr, simd);
                }
            }
            Record(Phase.PackB, start, (long)(Math.Min(Nc, p1 * nr) - p0 * nr) * x.K);
        }

        /// <summary>Thread <paramref name="t"/>'s rectangle of C: packs its A blocks and runs the micro-kernel.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Compute(int t)
        {
            int mr = TK.MR, nr = TK.NR, panels = (Nc + nr - 1) / nr, rowPanels = (x.M + mr - 1) / mr;
            int ri = t / _colItems, ci = t % _colItems;
            int row0 = rowPanels * ri / _rowItems * mr, row1 = Math.Min(x.M, rowPanels * (ri + 1) / _rowItems * mr);
            int jp0 = panels * ci / _colItems, jp1 = panels * (ci + 1) / _colItems;

            // Row blocks of (nearly) equal size, multiples of MR, at most MC.
            int rowBlocks = (row1 - row0 + TK.MC - 1) / TK.MC;
            int mcMax = ((row1 - row0 + rowBlocks - 1) / rowBlocks + mr - 1) / mr * mr;
            using var aLease = GemmBuffers.Rent(GemmBuffers.Slot.A, (long)mcMax * kc + GemmPacking.Slack);
            float* aPack = aLease.Pointer;
            float* tile = stackalloc float[mr * nr];
            // Overwriting C with 4 or more k blocks, the partial sums go to a C block of whole tiles in this thread's
            // buffer (tile (ip, jp) at cBuf + ((jp - jp0) * mcMax + ip * MR) * NR, rows NR apart) and reach C only
            // with the last k block (its kernel call reads the buffered tile and writes C, no copy pass): C rows ldc apart share cache sets whenever ldc is a power of two (every
            // N = 2^k), so the C tiles revisited every k block conflict with each other and with the A block and B
            // panel in L1/L2 (the bench's ceiling: streaming C at ldc 2048 costs 3-15% of the kernel's rate, at ldc 2048 + 16 about 1%). Same
            // additions in the same order, so the same bits. Measured on Zen 3 (M = 512, per CPU second, 1 and 2
            // threads): forward x·Wᵀ at K = N = 2048 about 5% faster on 1 thread, 2 threads within noise; with 2 k
            // blocks (K = 512) a final copy cost more than it saved (1-7% slower), and without the copy buffering
            // measured the same (kernel sweep rates at K = 512, 1-2 threads, alternated 3 times), hence direct below
            // 4; when accumulating, copying the old C in as well made the weight gradient slower, hence direct too.
            bool buffered = bufferC && !x.Accumulate && x.K > 3 * TK.KC;
            using var cLease = GemmBuffers.Rent(GemmBuffers.Slot.C, buffered ? (long)(jp1 - jp0) * mcMax * nr : 0);
            float* cBuf = cLease.Pointer;

            for (int ic = row0; ic < row1; ic += mcMax)
            {
                int mc = Math.Min(mcMax, row1 - ic), aPanels = (mc + mr - 1) / mr;
                for (int k0 = 0; k0 < x.K; k0 += kc)
                {
                    int kcq = Math.Min(kc, x.K - k0);
                    long start = Stamp();
                    if (x.TransA)
                    {
                        GemmPacking.PackCopy(x.A + k0 * x.Lda + ic, x.Lda, mc, kcq, aPack, mr, (nint)kcq * mr, simd);
                    }
                    else
                    {
                        for (int ip = 0; ip < aPanels; ip++)
                        {
                            int row = ic + ip * mr, rows = Math.Min(mr, row1 - row);
                            GemmPacking.PackTranspose(x.A + row * x.Lda + k0, x.Lda, rows, kcq, aPack + (nint)ip * kcq * mr, mr, simd);
                        }
                    }

                    Record(Phase.PackA, start, (long)mc * kcq);
                    start = Stamp();

                    // The source of the next A block (the next k block, else the next row block, else this thread's first
                    // block again in the next slab) is fetched into L2 a share with each kernel call, so that its packing
                    // reads from L2 instead of waiting on L3 or memory with a few rows in flight (measured on Zen 3, M = 512,
                    // under load: A pack 1.2-1.8 -> 1.8-3.3 floats/ns median, 3.2-4.5 -> 5.9-6.8 best).
                    var ahead = default(LineWalk);
                    if (Sse.IsSupported)
                    {
                        int nk0 = k0 + kc, nic = ic;
                        if (nk0 >= x.K) (nk0, nic) = (0, ic + mcMax);
                        if (nic >= row1 && MoreSlabs) nic = row0;
                        if (nic < row1)
                        {
                            int nmc = Math.Min(mcMax, row1 - nic), nkc = Math.Min(kc, x.K - nk0);
                            ahead = x.TransA
                                ? new LineWalk(x.A + nk0 * x.Lda + nic, x.Lda, nkc, nmc)
                                : new LineWalk(x.A + nic * x.Lda + nk0, x.Lda, nmc, nkc);
                        }
                    }
                    int calls = (jp1 - jp0) * aPanels, aheadShare = (ahead.MaxLines + calls - 1) / calls;

                    bool accumulate = x.Accumulate || k0 > 0;
                    float* bBlock = slab + (nint)k0 * panels * nr;
                    for (int jp = jp0; jp < jp1; jp++)
                    {
                        float* bPanel = bBlock + (nint)jp * kcq * nr;
                        int cols = Math.Min(nr, Nc - jp * nr);
                        float* cCol = x.C + Jc + jp * nr;
                        // The next B micro-panel follows this one: fetch a share of its lines into L2 with each kernel
                        // call, so the sweep does not wait for it once a k block of the slab has left the caches
                        // (measured on Zen 3 under load: +3-7% at N = 1024-2048, neutral at 512). L2, not L1: the
                        // remaining calls still need every line of the current panel.
                        int lines = kcq * nr / 16, share = (lines + aPanels - 1) / aPanels;
                        float* next = jp + 1 < jp1 ? bPanel + (nint)kcq * nr : null;
                        for (int ip = 0; ip < aPanels; ip++)
                        {
                            if (next != null && Sse.IsSupported)
                                for (int l = ip * share, end = Math.Min(lines, l + share); l < end; l++) Sse.Prefetch1(next + l * 16);
                            if (!ahead.Done) ahead.Prefetch(aheadShare);
                            float* aPanel = aPack + (nint)ip * kcq * mr;
                            int row = ic + ip * mr, rows = Math.Min(mr, row1 - row);
                            float* cTile = cCol + row * x.Ldc;
                            if (buffered)
                            {
                                float* bufTile = cBuf + ((nint)(jp - jp0) * mcMax + ip * mr) * nr, from = k0 > 0 ? bufTile : null;
                                if (k0 + kcq < x.K) TK.Run(kcq, aPanel, bPanel, from, nr, bufTile, nr);
                                else if (rows == mr && cols == nr) TK.Run(kcq, aPanel, bPanel, from, nr, cTile, x.Ldc);
                                else
                                {
                                    TK.Run(kcq, aPanel, bPanel, from, nr, tile, nr);
                                    CopyTile(tile, nr, cTile, x.Ldc, rows, cols);
                                }
                            }
                            else if (rows == mr && cols == nr)
                            {
                                TK.Run(kcq, aPanel, bPanel, accumulate ? cTile : null, x.Ldc, cTile, x.Ldc);
                            }
                            else
                            {
                                TK.Run(kcq, aPanel, bPanel, null, 0, tile, nr);
                                for (int i = 0; i < rows; i++)
                                {
                                    float* src = tile + i * nr, dst = cTile + i * x.Ldc;
                                    if (accumulate) for (int j = 0; j < cols; j++) dst[j] += src[j];
                                    else for (int j = 0; j < cols; j++) dst[j] = src[j];
                                }
                            }
                        }
                    }
                    Record(Phase.Kernel, start, (long)aPanels * TK.MR * kcq * (jp1 - jp0) * TK.NR);
                }
            }
        }

        /// <summary>
        /// Walks the cache lines of <c>rows</c> rows of <c>length</c> floats, <c>ld</c> floats apart, row by row (a row's
        /// lines: from the line of its first float to that of its last), fetching them into L2 a few at a time (a
        /// prefetch never faults). No division per line: the walk is part of every kernel call's overhead.
        /// </summary>
        private struct LineWalk
        {
            private readonly nint _ld;
            private readonly int _length;
            private float* _row;
            private int _rowsLeft;
            private nint _line, _last;

            public LineWalk(float* start, nint ld, int rows, int length)
            {
                (_ld, _length, _rowsLeft) = (ld, length, length > 0 ? rows : 0);
                _row = start;
                _line = (nint)start & ~(nint)63;
                _last = (nint)(start + length - 1) & ~(nint)63;
            }

            /// <summary>At most this many lines (a row of L floats spans at most (L + 14) / 16 + 1).</summary>
            public readonly int MaxLines => _rowsLeft * ((_length + 14) / 16 + 1);

            public readonly bool Done => _rowsLeft == 0;

            /// <summary>Fetches the next <paramref name="count"/> lines (fewer at the end).</summary>
            public void Prefetch(int count)
            {
                for (; count > 0 && _rowsLeft > 0; count--)
                {
                    Sse.Prefetch1((void*)_line);
                    if (_line != _last)
                    {
                        _line += 64;
                    }
                    else if (--_rowsLeft > 0)
                    {
                        _row += _ld;
                        _line = (nint)_row & ~(nint)63;
                        _last = (nint)(_row + _length - 1) & ~(nint)63;
                    }
                }
            }
        }

        /// <summary>Copies the top-left <paramref name="rows"/> x <paramref name="cols"/> of a tile (the rest of the destination is left as it is).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void CopyTile(float* src, nint lds, float* dst, nint ldd, int rows, int cols)
        {
            if (cols == TK.NR)
            {
                // A constant size: the JIT copies each row with a few vector moves instead of a call.
                for (int i = 0; i < rows; i++, src += lds, dst += ldd) Unsafe.CopyBlockUnaligned(dst, src, (uint)(TK.NR * sizeof(float)));
                return;
            }
            for (int i = 0; i < rows; i++, src += lds, dst += ldd)
                new ReadOnlySpan<float>(src, cols).CopyTo(new Span<float>(dst, cols));
        }
    }
}
