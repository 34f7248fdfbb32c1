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
/// multiplication", TOMS 2008; the BLIS loop nest). op(A) is cut into row blocks of at most MC rows, each packed per
/// k block of KC into MR-wide panels; op(B) into column slabs of at most <see cref="SlabFloats"/> floats, each packed
/// (K x NC) into NR-wide panels split by k blocks. Per slab, C is cut into work items, a row block by a run of
/// column panels: an item runs, per k block, the micro-kernel over every (B micro-panel, A micro-panel) pair, the B
/// micro-panel in L1 while the A block's panels stream from L2. When op(A) is small enough (<see cref="PackedAFloats"/>)
/// it is packed once for all slabs and items; otherwise each item packs its own A blocks.
/// With one k block, edge tiles (rows &lt; MR or columns &lt; NR) run the full kernel into a stack tile and copy the
/// valid part; with 4 or more (C overwritten), every tile's partial sums live in a per-thread C block of whole tiles
/// and the last k block's kernel call adds them in and writes C (edge tiles through the stack tile).
/// <para>
/// Threads: the whole call is one dispatch. Its work items (the A packs and the first slab's B packs, then per slab
/// its compute items, then the next slab's B packs, ...) are claimed one after the other from a counter; an item
/// starts once every item of the stages before it is done (a slab's panels must be packed before its items read them,
/// and its items done before the next slab overwrites them). The caller starts at once and the helpers join when the
/// pool wakes them, so nobody waits for a helper to start, a late or descheduled thread takes fewer items, and the
/// waits at stage ends last at most one item. Every C tile sees the same kernel calls in the same order whoever runs
/// it, so the bits do not depend on the thread count. Measured on Zen 3 (2 cores, load 15-17, M = 512 x·Wᵀ, the
/// bench's profile timeline) against two Parallel.For per slab with one rectangle of C per thread: share of the wall
/// time with both threads busy at K = N 512 / 1024 / 4096: 7-12% / 43-60% / 60-77% -> 19-23% / 71-73% / 83-87%, with
/// none busy 14-16% -> 2-5% at 512. Two slab buffers (packing the next slab while the last items of this one run)
/// measured the same at 4096 (per CPU second 0.78 vs 0.79 over 11 alternated runs), so one buffer.
/// </para>
/// </summary>
internal static unsafe class GemmBlocked
{
    /// <summary>Largest packed B slab (floats): 16 MiB, half the L3 of the machines this is tuned on.</summary>
    public const long SlabFloats = 4L << 20;

    /// <summary>Largest op(A) packed once for the whole call (floats, 16 MiB); beyond, each work item packs its own A blocks.</summary>
    public const long PackedAFloats = 4L << 20;

    /// <summary>Per-thread work below which another thread costs more than it saves (FMAs; ~25 µs of one core, several times the cost of starting one).</summary>
    private const long FmasPerThread = 1L << 20;

    /// <summary>Compute items per slab and thread aimed at: enough that the last one to finish keeps the others waiting little.</summary>
    private const int ItemsPerThread = 8;

    /// <summary>Fewest B panels of a compute item: its A block, fetched into L2 per k block, feeds at least 8 panels.</summary>
    private const int MinItemPanels = 8;

    /// <summary>The phases <see cref="Probe"/> times; <see cref="Call"/> is the whole call, on the calling thread.</summary>
    internal enum Phase { PackB, PackA, Kernel, Call }

    /// <summary>One timed phase: the managed thread that ran it, its start and duration in <see cref="Stopwatch"/> ticks and its work.</summary>
    internal readonly record struct ProbeEntry(Phase Phase, int Thread, long Start, long Ticks, long Work);

    /// <summary>
    /// When set (the benchmark's profile), each thread adds one entry per phase it runs: a B pack item (work: floats
    /// packed), one A block's pack (floats) and the kernel sweep over one A block and k block (FMAs), and the caller
    /// one entry per call (work: FMAs). Short entries show the rates of undisturbed runs on a busy machine; starts
    /// and threads give each call's timeline (how many threads were busy when).
    /// </summary>
    internal static ConcurrentQueue<ProbeEntry>? Probe;

    private static long Stamp() => Probe is null ? 0 : Stopwatch.GetTimestamp();

    private static void Record(Phase phase, long start, long work) =>
        Probe?.Enqueue(new ProbeEntry(phase, Environment.CurrentManagedThreadId, start, Stopwatch.GetTimestamp() - start, work));

    public static void Run<TK, TB>(in GemmArgs<TB> x, int threads, bool simd, long slabFloats = SlabFloats, bool bufferC = true,
        long packedAFloats = PackedAFloats)
        where TK : struct, IGemmMicroKernel where TB : unmanaged
    {
        long callStart = Stamp();
        threads = (int)Math.Clamp((long)x.M * x.N * x.K / FmasPerThread, 1, threads);
        var job = new Job<TK, TB>(x, threads, simd, slabFloats, bufferC, packedAFloats);
        using (var slab = GemmBuffers.Rent(GemmBuffers.Slot.B, job.SlabSize))
        using (var packedA = GemmBuffers.Rent(GemmBuffers.Slot.PackedA, job.PackedASize))
        {
            job.Slab = slab.Pointer;
            job.PackedA = packedA.Pointer;
            job.Run(Math.Min(threads, job.Items) - 1);
        }
        Record(Phase.Call, callStart, (long)x.M * x.N * x.K);
    }

    /// <summary>One call: its blocking, its work items in stages, and the counters the threads share.</summary>
    private sealed class Job<TK, TB> : ClaimedWork where TK : struct, IGemmMicroKernel where TB : unmanaged
    {
        private readonly GemmArgs<TB> x;
        private readonly bool _simd, _buffered;
        private readonly int _threads, _kc, _kBlocks, _slabPanels, _slabs, _mcMax, _rowBlocks, _packBItems;

        /// <summary>Floats from one packed A block to the next (whole cache lines, with room for a transposing pack's spill: blocks are packed at once).</summary>
        private readonly nint _aBlockStride;

        /// <summary>First item of each stage: stage 0 packs A (when packed once) and slab 0's B; stage 2s + 1 computes slab s; 2s + 2 packs slab s + 1.</summary>
        private readonly int[] _stageStart;

        /// <summary>Column parts of a compute item per slab (all slabs but the last have the same width).</summary>
        private readonly int[] _colParts;

        public float* Slab, PackedA;

        public Job(in GemmArgs<TB> args, int threads, bool simd, long slabFloats, bool bufferC, long packedAFloats)
        {
            x = args;
            _threads = threads;
            _simd = simd;
            int nr = TK.NR, mr = TK.MR;

            // k blocks of (nearly) equal size, at most KC.
            int kBlocks = (x.K + TK.KC - 1) / TK.KC;
            _kc = (x.K + kBlocks - 1) / kBlocks;
            _kBlocks = (x.K + _kc - 1) / _kc;

            // Column slabs of equal width (a multiple of NR), so that a slab holds at most slabFloats.
            int nPanelsAll = (x.N + nr - 1) / nr;
            int maxSlabPanels = (int)Math.Clamp(slabFloats / ((long)x.K * nr), 1, nPanelsAll);
            _slabs = (nPanelsAll + maxSlabPanels - 1) / maxSlabPanels;
            _slabPanels = (nPanelsAll + _slabs - 1) / _slabs;

            // Row blocks of (nearly) equal size, multiples of MR, at most MC.
            _rowBlocks = (x.M + TK.MC - 1) / TK.MC;
            _mcMax = ((x.M + _rowBlocks - 1) / _rowBlocks + mr - 1) / mr * mr;
            _rowBlocks = (x.M + _mcMax - 1) / _mcMax;
            // One thread packs A per item: right after packing, the A block is in its L2 (packed once, it comes back from
            // L3 for every item; measured on Zen 3, M = 512, 1 thread: 4-8% slower per CPU second at K = N = 512-1024).
            _aBlockStride = ((nint)_mcMax * _kc + GemmPacking.Slack + 15) & ~(nint)15;
            long aFloats = (long)_rowBlocks * _kBlocks * _aBlockStride;
            PackedASize = threads > 1 && aFloats <= packedAFloats ? aFloats : 0;
            SlabSize = (long)x.K * _slabPanels * nr + GemmPacking.Slack;

            // Overwriting C with 4 or more k blocks, the partial sums go to a C block of whole tiles in this thread's
            // buffer and reach C only with the last k block (its kernel call reads the buffered tile and writes C, no copy
            // pass): C rows ldc apart share cache sets whenever ldc is a power of two (every N = 2^k), so the C tiles
            // revisited every k block conflict with each other and with the A block and B panel in L1/L2 (the bench's
            // ceiling: streaming C at ldc 2048 costs 3-15% of the kernel's rate, at ldc 2048 + 16 about 1%). Same
            // additions in the same order, so the same bits. Measured on Zen 3 (M = 512, per CPU second, 1 and 2
            // threads): forward x·Wᵀ at K = N = 2048 about 5% faster on 1 thread, 2 threads within noise; with 2 k
            // blocks (K = 512) a final copy cost more than it saved (1-7% slower), and without the copy buffering
            // measured the same (kernel sweep rates at K = 512, 1-2 threads, alternated 3 times), hence direct below
            // 4; when accumulating, copying the old C in as well made the weight gradient slower, hence direct too.
            _buffered = bufferC && !x.Accumulate && x.K > 3 * TK.KC;

            // B pack items: runs of whole panels, a few per thread and slab.
            _packBItems = Math.Min(_slabPanels, 4 * threads);

            // Compute items: every row block by column parts of at least MinItemPanels panels, about ItemsPerThread per
            // thread and slab; one part when each item packs its own A (a part more would pack the A block again).
            _colParts = new int[_slabs];
            _stageStart = new int[2 * _slabs + 1];
            int aItems = PackedASize > 0 ? _rowBlocks * _kBlocks : 0, next = 0;
            for (int s = 0; s < _slabs; s++)
            {
                int panels = SlabPanels(s);
                _stageStart[2 * s] = next;
                next += (s == 0 ? aItems : 0) + Math.Min(panels, _packBItems);
                int wanted = PackedASize > 0 ? (ItemsPerThread * threads + _rowBlocks - 1) / _rowBlocks : 1;
                _colParts[s] = Math.Clamp(wanted, 1, Math.Max(1, panels / MinItemPanels));
                _stageStart[2 * s + 1] = next;
                next += _rowBlocks * _colParts[s];
            }
            _stageStart[^1] = next;
        }

        /// <summary>Floats of the packed B slab and of op(A) packed once (0: packed per item).</summary>
        public long SlabSize { get; }

        public long PackedASize { get; }

        public override int Items => _stageStart[^1];

        private int SlabPanels(int s) => Math.Min(_slabPanels, (x.N + TK.NR - 1) / TK.NR - s * _slabPanels);

        /// <summary>One thread: claims items in order until none is left, each once the stages before it are done.</summary>
        public override void Execute()
        {
            int items = Items, stage = 0;
            for (int item = Claim(); item < items; item = Claim())
            {
                while (_stageStart[stage + 1] <= item) stage++;
                WaitForDone(_stageStart[stage]);
                Complete(item, stage);
            }
        }

        protected override void Work(int item, int stage) => Item(stage, item - _stageStart[stage]);

        private void Item(int stage, int local)
        {
            int s = stage / 2;
            if (stage % 2 == 1)
            {
                int ib = local % _rowBlocks, part = local / _rowBlocks, panels = SlabPanels(s);
                Compute(s, ib, panels * part / _colParts[s], panels * (part + 1) / _colParts[s], local);
                return;
            }
            if (s == 0 && PackedA != null)
            {
                int aItems = _rowBlocks * _kBlocks;
                if (local < aItems)
                {
                    int ib = local % _rowBlocks, k0 = local / _rowBlocks * _kc;
                    PackA(ib, k0, PackedABlock(ib, k0));
                    return;
                }
                local -= aItems;
            }
            int slabPanels = SlabPanels(s), parts = Math.Min(slabPanels, _packBItems);
            PackB(s, slabPanels * local / parts, slabPanels * (local + 1) / parts);
        }

        /// <summary>Row block <paramref name="ib"/>'s packed A for the k block from <paramref name="k0"/>: block (ib, q) at + (ib * kBlocks + q) * stride.</summary>
        private float* PackedABlock(int ib, int k0) => PackedA + ((nint)ib * _kBlocks + k0 / _kc) * _aBlockStride;

        /// <summary>Packs row block <paramref name="ib"/> of op(A), k block from <paramref name="k0"/>, into MR-row panels at <paramref name="dst"/> (panel ip at + ip * kcq * MR).</summary>
        private void PackA(int ib, int k0, float* dst)
        {
            long start = Stamp();
            int mr = TK.MR, ic = ib * _mcMax, mc = Math.Min(_mcMax, x.M - ic), kcq = Math.Min(_kc, x.K - k0);
            if (x.TransA)
            {
                GemmPacking.PackCopy(x.A + k0 * x.Lda + ic, x.Lda, mc, kcq, dst, mr, (nint)kcq * mr, _simd);
            }
            else
            {
                for (int ip = 0; ip * mr < mc; ip++)
                {
                    int row = ic + ip * mr, rows = Math.Min(mr, x.M - row);
                    GemmPacking.PackTranspose(x.A + row * x.Lda + k0, x.Lda, rows, kcq, dst + (nint)ip * kcq * mr, mr, _simd);
                }
            }
            Record(Phase.PackA, start, (long)mc * kcq);
        }

        /// <summary>
        /// Packs B panels [p0, p1) of slab <paramref name="s"/> for every k block: block q starts at slab + k0 * panels * NR,
        /// panel jp of it at + jp * kcq * NR. Stored [N, K] (transB), a panel is NR whole rows: packed over all k blocks in
        /// turn so each row is read start to end; stored [K, N], each k block is swept row by row across the panels.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void PackB(int s, int p0, int p1)
        {
            // Items packed at once must not write into each other: a transposing pack spills past a panel unless its
            // width is a multiple of 8 (GemmPacking).
            Debug.Assert(TK.NR % 8 == 0);
            long start = Stamp();
            int nr = TK.NR, panels = SlabPanels(s), jc = s * _slabPanels * nr, nc = Math.Min(_slabPanels * nr, x.N - jc);
            if (x.TransB)
            {
                for (int jp = p0; jp < p1; jp++)
                {
                    int col = jc + jp * nr, cols = Math.Min(nr, nc - jp * nr);
                    for (int k0 = 0; k0 < x.K; k0 += _kc)
                    {
                        int kcq = Math.Min(_kc, x.K - k0);
                        float* dst = Slab + (nint)k0 * panels * nr + (nint)jp * kcq * nr;
                        GemmPacking.PackTranspose(x.B + col * x.Ldb + k0, x.Ldb, cols, kcq, dst, nr, _simd);
                    }
                }
            }
            else
            {
                for (int k0 = 0; k0 < x.K; k0 += _kc)
                {
                    int kcq = Math.Min(_kc, x.K - k0);
                    float* dst = Slab + (nint)k0 * panels * nr + (nint)p0 * kcq * nr;
                    int col = jc + p0 * nr, cols = Math.Min(nc, p1 * nr) - p0 * nr;
                    GemmPacking.PackCopy(x.B + k0 * x.Ldb + col, x.Ldb, cols, kcq, dst, nr, (nint)kcq * nr, _simd);
                }
            }
            Record(Phase.PackB, start, (long)(Math.Min(nc, p1 * nr) - p0 * nr) * x.K);
        }

        /// <summary>
        /// Compute item <paramref name="local"/> of slab <paramref name="s"/>: row block <paramref name="ib"/> of C by
        /// the slab's panels [jp0, jp1), every k block in turn.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void Compute(int s, int ib, int jp0, int jp1, int local)
        {
            int mr = TK.MR, nr = TK.NR, panels = SlabPanels(s), jc = s * _slabPanels * nr, nc = Math.Min(_slabPanels * nr, x.N - jc);
            int ic = ib * _mcMax, mc = Math.Min(_mcMax, x.M - ic), aPanels = (mc + mr - 1) / mr;
            using var aLease = GemmBuffers.Rent(GemmBuffers.Slot.A, PackedA == null ? (long)_mcMax * _kc + GemmPacking.Slack : 0);
            float* tile = stackalloc float[mr * nr];
            // The buffered C block: tile (ip, jp) at cBuf + ((jp - jp0) * mcMax + ip * MR) * NR, rows NR apart.
            using var cLease = GemmBuffers.Rent(GemmBuffers.Slot.C, _buffered ? (long)(jp1 - jp0) * _mcMax * nr : 0);
            float* cBuf = cLease.Pointer;

            // The item this thread most likely takes next (the others take the ones in between), whose first A block
            // is fetched ahead during the last k block (the next slab's first ones after the last item of a slab).
            int guess = local + _threads, count = _rowBlocks * _colParts[s];
            int guessIb = guess < count || s + 1 < _slabs ? guess % count % _rowBlocks : -1;

            for (int k0 = 0; k0 < x.K; k0 += _kc)
            {
                int kcq = Math.Min(_kc, x.K - k0);
                float* aPack;
                if (PackedA != null)
                {
                    aPack = PackedABlock(ib, k0);
                }
                else
                {
                    aPack = aLease.Pointer;
                    PackA(ib, k0, aPack);
                }
                long start = Stamp();

                // The next A block (the next k block, else the first one of the likely next item) is fetched into L2 a
                // share with each kernel call: packed, so that the sweep does not wait for it from L3; else its source, so
                // that its packing reads from L2 instead of waiting on L3 or memory with a few rows in flight (measured on
                // Zen 3, M = 512, under load: A pack 1.2-1.8 -> 1.8-3.3 floats/ns median, 3.2-4.5 -> 5.9-6.8 best).
                var ahead = default(LineWalk);
                if (Sse.IsSupported)
                {
                    int nk0 = k0 + _kc, nib = ib;
                    if (nk0 >= x.K) (nk0, nib) = (0, guessIb);
                    if (nib >= 0)
                    {
                        int nic = nib * _mcMax, nmc = Math.Min(_mcMax, x.M - nic), nkc = Math.Min(_kc, x.K - nk0);
                        ahead = PackedA != null ? new LineWalk(PackedABlock(nib, nk0), 0, 1, (nmc + mr - 1) / mr * mr * nkc)
                            : x.TransA ? new LineWalk(x.A + nk0 * x.Lda + nic, x.Lda, nkc, nmc)
                            : new LineWalk(x.A + nic * x.Lda + nk0, x.Lda, nmc, nkc);
                    }
                }
                int calls = (jp1 - jp0) * aPanels, aheadShare = (ahead.MaxLines + calls - 1) / calls;

                bool accumulate = x.Accumulate || k0 > 0;
                float* bBlock = Slab + (nint)k0 * panels * nr;
                for (int jp = jp0; jp < jp1; jp++)
                {
                    float* bPanel = bBlock + (nint)jp * kcq * nr;
                    int cols = Math.Min(nr, nc - jp * nr);
                    float* cCol = x.C + jc + jp * nr;
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
                        int row = ic + ip * mr, rows = Math.Min(mr, x.M - row);
                        float* cTile = cCol + row * x.Ldc;
                        if (_buffered)
                        {
                            float* bufTile = cBuf + ((nint)(jp - jp0) * _mcMax + ip * mr) * nr, from = k0 > 0 ? bufTile : null;
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
