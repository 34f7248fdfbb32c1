using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace FuseSharp.Tensors.Kernels;

/// <summary>
/// Matrix times a few vectors (decoding: 1 to <see cref="MaxRows"/> rows), where the matrix is read once and the run
/// time is the time to stream it from memory; packing would read it twice. Computes, for <c>i &lt; rows</c> and
/// <c>j &lt; cols</c>:
/// <c>y(i, j) (+)= Σ_p x[i * ldx + p] · w(j, p)</c>, with <c>y(i, j)</c> at <c>y[i * ysx + j * ysw]</c> and
/// <list type="bullet">
/// <item>dot form, <c>w(j, p) = w[j * ldw + p]</c> (a Linear weight [N, K]): R rows of w (4 for 1-2 vectors, 2 for
/// 3-4) against every x at once, R x rows independent FMA chains, each w vector loaded once;</item>
/// <item>axpy form, <c>w(j, p) = w[p * ldw + j]</c>: y accumulates in a buffer spanning the thread's whole column
/// range (so w is read in long contiguous runs: DRAM pages and the prefetchers want that) while R rows of w at a
/// time stream past, each w vector loaded once for every x.</item>
/// </list>
/// The kernels take 1 to 4 vectors; more are done in groups of 4. Threads claim ranges of j one after the other
/// (several matrices sharing the vectors can go in one call, see <see cref="Segment"/>). Vector256 is enough
/// to saturate memory bandwidth even where Vector512 exists; the scalar form is the fallback without 256-bit SIMD.
/// </summary>
internal static unsafe class GemmVector
{
    /// <summary>Most rows (vectors) the dispatcher sends here; beyond, packing W for the blocked path pays off.</summary>
    public const int MaxRows = 8;

    /// <summary>Largest axpy column chunk (floats per vector): 4 x 8192 accumulators (128 KiB) stay in L2.</summary>
    private const int MaxChunk = 8192;

    /// <summary>Matrix values per thread below which one more thread costs more than it saves.</summary>
    private const long ValuesPerThread = 1L << 17;

    /// <summary>
    /// Bytes of w per work item of the dot form: threads claim items one after the other, so a thread that starts
    /// late (a pool thread waking up, or descheduled on a busy machine) takes fewer and nobody waits for it; small
    /// enough to balance (a few microseconds each), large enough that claiming costs nothing and each thread still
    /// streams long runs. Also at most the L2 block that every group of 4 vectors runs over before moving on.
    /// </summary>
    private const int ChunkBytes = 64 << 10;

    /// <summary>
    /// One matrix of a product of the same vectors with several matrices (a linear layer stored as several tensors,
    /// e.g. Llama's q, k and v): <see cref="Cols"/> rows (dot form) or columns (axpy form) of <see cref="W"/>
    /// (element type of the call) with leading dimension <see cref="Ldw"/>, results j at <c>Y[i * ysx + j * ysw]</c>.
    /// </summary>
    internal readonly struct Segment(void* w, nint ldw, int cols, float* y)
    {
        public readonly void* W = w;
        public readonly nint Ldw = ldw;
        public readonly int Cols = cols;
        public readonly float* Y = y;
    }

    public static void Run<TW>(int threads, bool simd, int rows, int cols, int k, float* x, nint ldx,
        TW* w, nint ldw, bool dotForm, float* y, nint ysx, nint ysw, bool accumulate) where TW : unmanaged
    {
        var segment = new Segment(w, ldw, cols, y);
        Run<TW>(threads, simd, rows, k, x, ldx, new ReadOnlySpan<Segment>(&segment, 1), dotForm, ysx, ysw, accumulate);
    }

    /// <summary>
    /// The same <paramref name="rows"/> vectors x against every matrix of <paramref name="segments"/> in one parallel
    /// dispatch (a decoding step's products take tens of microseconds each, so dispatches and the wait for the
    /// slowest thread count). Every result is computed by the same code as with one segment per call, whatever the
    /// thread count: the work items (whole groups of 4 rows of w in the dot form; in the axpy form one range of
    /// whole 16-column groups per thread and segment, so that no two threads write the same cache line of a y row)
    /// never change what a result sums or in which order.
    /// </summary>
    public static void Run<TW>(int threads, bool simd, int rows, int k, float* x, nint ldx, ReadOnlySpan<Segment> segments,
        bool dotForm, nint ysx, nint ysw, bool accumulate) where TW : unmanaged
    {
        long values = 0;
        foreach (var s in segments) values += (long)s.Cols * k;
        threads = (int)Math.Clamp(values / ValuesPerThread, 1, threads);
        int unit = dotForm ? 4 : 16;
        int itemRows = dotForm ? (int)Math.Clamp(ChunkBytes / ((long)k * sizeof(TW)) / unit * unit, unit, 1 << 20) : 0;
        var firstItem = new int[segments.Length + 1];
        for (int i = 0; i < segments.Length; i++)
        {
            int units = (segments[i].Cols + unit - 1) / unit;
            firstItem[i + 1] = firstItem[i] + (dotForm ? (segments[i].Cols + itemRows - 1) / itemRows : Math.Min(threads, units));
        }
        threads = Math.Min(threads, firstItem[^1]);
        if (threads == 0) return;
        var job = new Job<TW>(simd, rows, k, x, ldx, segments.ToArray(), firstItem, itemRows, dotForm, ysx, ysw, accumulate);
        // Claimed items (ClaimedWork): nobody waits for a pool thread to wake up (tens of microseconds, as long as a
        // whole product of a decoding step); helpers that stay for the next product (Team) mostly need no waking.
        Team.Run(job, threads - 1);
    }

    /// <summary>
    /// Pool threads that help with one product after another. A decoding step is a chain of ~50 products of tens to
    /// hundreds of microseconds each, with norms and attention in between on the calling thread; a pool thread woken
    /// for each product joins late (tens of microseconds on a quiet machine, milliseconds on a busy one), so the caller
    /// streams much of each product alone. Here a helper that finished its items waits (spinning, yielding to other
    /// threads) up to <see cref="StayTicks"/> for the next product and joins it at once; the caller queues a new
    /// helper only when fewer are waiting than the product wants. Which thread runs an item never changes a result,
    /// and the caller always finishes every unclaimed item itself, so a helper that misses a product only costs time.
    /// </summary>
    private static class Team
    {
        /// <summary>How long an idle helper waits for the next product: longer than the gaps within a decoding step and between steps.</summary>
        private static readonly long StayTicks = System.Diagnostics.Stopwatch.Frequency / 500; // 2 ms

        /// <summary>The latest product offered to helpers and how many may join it.</summary>
        private sealed class Offer(ClaimedWork job, int helpers)
        {
            public readonly ClaimedWork Job = job;
            public readonly int Helpers = helpers;
            public int Joined;
        }

        private static Offer? s_offer;
        private static int s_waiting;

        /// <summary>Runs <paramref name="job"/> on the calling thread and up to <paramref name="helpers"/> helpers; returns once all items are done.</summary>
        public static void Run(ClaimedWork job, int helpers)
        {
            if (helpers > 0)
            {
                // A full fence (not a plain store): the count of waiting helpers read next must not be one from before
                // the offer was visible, or a helper that is just leaving could miss it while the caller counted on it.
                Interlocked.Exchange(ref s_offer, new Offer(job, helpers));
                // Helpers that are waiting take the offer; queue the missing ones (each then waits for later products).
                for (int have = Volatile.Read(ref s_waiting); have < helpers; have = Volatile.Read(ref s_waiting))
                    if (Interlocked.CompareExchange(ref s_waiting, have + 1, have) == have)
                        ThreadPool.UnsafeQueueUserWorkItem(static _ => Help(), (object?)null, preferLocal: false);
            }
            job.Run(0);
        }

        /// <summary>A helper: joins every new offer that still wants a helper, leaves after <see cref="StayTicks"/> without one.</summary>
        private static void Help()
        {
            Offer? seen = null;
            long idleSince = System.Diagnostics.Stopwatch.GetTimestamp();
            var spin = new SpinWait();
            while (true)
            {
                var offer = Volatile.Read(ref s_offer);
                if (offer != seen && offer is not null)
                {
                    seen = offer;
                    if (Interlocked.Increment(ref offer.Joined) <= offer.Helpers) offer.Job.Execute();
                    idleSince = System.Diagnostics.Stopwatch.GetTimestamp();
                    spin.Reset();
                    continue;
                }
                if (System.Diagnostics.Stopwatch.GetTimestamp() - idleSince < StayTicks)
                {
                    spin.SpinOnce(sleep1Threshold: -1);
                    continue;
                }
                Interlocked.Decrement(ref s_waiting);
                // An offer made while this helper was still counted as waiting: take it rather than leave it to the caller alone.
                offer = Volatile.Read(ref s_offer);
                if (offer == seen || offer is null || Volatile.Read(ref offer.Joined) >= offer.Helpers) return;
                Interlocked.Increment(ref s_waiting);
                idleSince = System.Diagnostics.Stopwatch.GetTimestamp();
            }
        }
    }

    /// <summary>Compile-time vector counts: the JIT specialises each kernel per count and drops the unused chains.</summary>
    private interface ICount { static abstract int Value { get; } }
    private readonly struct One : ICount { public static int Value => 1; }
    private readonly struct Two : ICount { public static int Value => 2; }
    private readonly struct Three : ICount { public static int Value => 3; }
    private readonly struct Four : ICount { public static int Value => 4; }

    private sealed class Job<TW>(bool simd, int rows, int k, float* x, nint ldx, Segment[] segments, int[] firstItem, int itemRows,
        bool dotForm, nint ysx, nint ysw, bool accumulate) : ClaimedWork where TW : unmanaged
    {
        public override int Items => firstItem[^1];

        /// <summary>One thread: claims work items until none is left, always holding the next one so its rows can be prefetched.</summary>
        public override void Execute()
        {
            int items = Items;
            for (int current = Claim(), next; current < items; current = next)
            {
                next = Claim();
                Complete(current, next < items ? next : -1);
            }
        }

        /// <summary>Segment and range [j0, j1) of work item <paramref name="item"/>.</summary>
        private (int Segment, int J0, int J1) Range(int item)
        {
            int s = 0;
            while (item >= firstItem[s + 1]) s++;
            int local = item - firstItem[s], cols = segments[s].Cols;
            if (dotForm) return (s, local * itemRows, Math.Min(cols, (local + 1) * itemRows));
            // Axpy form: the segment's 16-column groups in one contiguous range per thread.
            int parts = firstItem[s + 1] - firstItem[s], units = (cols + 15) / 16;
            return (s, (int)((long)units * local / parts) * 16, Math.Min(cols, (int)((long)units * (local + 1) / parts) * 16));
        }

        protected override void Work(int item, int nextItem)
        {
            var (s, j0, j1) = Range(item);
            if (j0 >= j1) return;
            var seg = segments[s];
            TW* w = (TW*)seg.W;
            if (!simd)
            {
                if (dotForm) DotScalar(w, seg.Ldw, seg.Y, j0, j1);
                else AxpyScalar(w, seg.Ldw, seg.Y, j0, j1);
                return;
            }
            // Where the rows after this item's last group are: the next item this thread will work on.
            byte* after = null;
            if (dotForm && nextItem >= 0)
            {
                var (ns, nj0, _) = Range(nextItem);
                after = (byte*)((TW*)segments[ns].W + nj0 * segments[ns].Ldw);
            }
            // More than 4 vectors: groups of 4, each over the item's rows of w (at most ChunkBytes: still in L2 for
            // the next group, so w comes from memory once); the axpy form streams w per group.
            for (int g = 0; g < rows; g += 4)
            {
                float* xg = x + g * ldx, yg = seg.Y + g * ysx;
                switch (Math.Min(4, rows - g))
                {
                    case 1: if (dotForm) Dot<One>(w, seg.Ldw, j0, j1, xg, yg, after); else Axpy<One>(w, seg.Ldw, j0, j1, xg, yg); break;
                    case 2: if (dotForm) Dot<Two>(w, seg.Ldw, j0, j1, xg, yg, after); else Axpy<Two>(w, seg.Ldw, j0, j1, xg, yg); break;
                    case 3: if (dotForm) Dot<Three>(w, seg.Ldw, j0, j1, xg, yg, after); else Axpy<Three>(w, seg.Ldw, j0, j1, xg, yg); break;
                    default: if (dotForm) Dot<Four>(w, seg.Ldw, j0, j1, xg, yg, after); else Axpy<Four>(w, seg.Ldw, j0, j1, xg, yg); break;
                }
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private void Put(float* dst, float value) => *dst = accumulate ? *dst + value : value;

        /// <summary>
        /// Dot form, rows j in [j0, j1): groups of 4 rows of w (as 2 x 2 when there are 3-4 vectors), then single rows.
        /// Chains: x_i · w_r for every i and r of the group, 8 floats of k per step; the k tail is scalar.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void Dot<TX>(TW* w, nint ldw, int j0, int j1, float* xg, float* yg, byte* after) where TX : struct, ICount
        {
            int j = j0;
            for (; j + 4 <= j1; j += 4)
            {
                // The rows to prefetch while this group runs: the next group, or after the last one the next item's.
                byte* ahead = j + 4 < j1 ? (byte*)(w + (j + 4) * ldw) : after;
                if (TX.Value <= 2) DotBlock<TX, Four>(w, ldw, j, xg, yg, ahead);
                else
                {
                    DotBlock<TX, Two>(w, ldw, j, xg, yg, (byte*)(w + (j + 2) * ldw));
                    DotBlock<TX, Two>(w, ldw, j + 2, xg, yg, ahead);
                }
            }
            for (; j < j1; j++) DotBlock<TX, One>(w, ldw, j, xg, yg, null);
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void DotBlock<TX, TR>(TW* w, nint ldw, int j, float* xg, float* yg, byte* next) where TX : struct, ICount where TR : struct, ICount
        {
            int nx = TX.Value, nr = TR.Value;
            TW* w0 = w + j * ldw, w1 = w0 + ldw, w2 = w1 + ldw, w3 = w2 + ldw;
            float* x0 = xg, x1 = x0 + ldx, x2 = x1 + ldx, x3 = x2 + ldx;
            Vector256<float> a00 = default, a01 = default, a02 = default, a03 = default, a10 = default, a11 = default, a12 = default, a13 = default;
            Vector256<float> a20 = default, a21 = default, a22 = default, a23 = default, a30 = default, a31 = default, a32 = default, a33 = default;
            int p = 0, kk = k;
            // The next group's rows (from next: contiguous when ldw = k), one step's worth of bytes per step, so they
            // are in cache when the group starts: with short rows (k of a few thousand) the hardware prefetchers see
            // many short streams and stop at every 4 KiB page, and the stream ran at half the read bandwidth (BF16, k = 768).
            // Past the end of w the hint is harmless: prefetches never fault.
            bool prefetch = Sse.IsSupported && nr > 1 && next != null;
            int stepBytes = 8 * nr * sizeof(TW);
            var spread = SpreadBf16();
            for (; p + 8 <= kk; p += 8)
            {
                if (prefetch)
                {
                    byte* ahead = next + (nint)(p / 8) * stepBytes;
                    Sse.Prefetch0(ahead);
                    if (stepBytes > 64) Sse.Prefetch0(ahead + 64);
                }
                var v0 = LoadW(w0 + p, spread);
                var v1 = nr > 1 ? LoadW(w1 + p, spread) : default;
                var v2 = nr > 2 ? LoadW(w2 + p, spread) : default;
                var v3 = nr > 2 ? LoadW(w3 + p, spread) : default;
                Chains(nr, Vector256.Load(x0 + p), v0, v1, v2, v3, ref a00, ref a01, ref a02, ref a03);
                if (nx > 1) Chains(nr, Vector256.Load(x1 + p), v0, v1, v2, v3, ref a10, ref a11, ref a12, ref a13);
                if (nx > 2) Chains(nr, Vector256.Load(x2 + p), v0, v1, v2, v3, ref a20, ref a21, ref a22, ref a23);
                if (nx > 3) Chains(nr, Vector256.Load(x3 + p), v0, v1, v2, v3, ref a30, ref a31, ref a32, ref a33);
            }
            float* yj = yg + j * ysw;
            FinishRow(nr, yj, x0, w0, ldw, p, a00, a01, a02, a03);
            if (nx > 1) FinishRow(nr, yj + ysx, x1, w0, ldw, p, a10, a11, a12, a13);
            if (nx > 2) FinishRow(nr, yj + 2 * ysx, x2, w0, ldw, p, a20, a21, a22, a23);
            if (nx > 3) FinishRow(nr, yj + 3 * ysx, x3, w0, ldw, p, a30, a31, a32, a33);
        }

        /// <summary>
        /// The byte shuffle that turns 8 BF16 values, loaded into both 128-bit lanes, into their 8 F32 values: lane 0
        /// takes values 0-3, lane 1 values 4-7, each into the high half of its 32 bits (low half zero). Same floats
        /// in the same lanes as <see cref="GemmPacking.Load8{T}"/>, with one vector operation instead of two (widen,
        /// shift): decoding a BF16 model is bound by this conversion as much as by memory.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector256<byte> SpreadBf16() => Vector256.Create(
            (byte)0x80, 0x80, 0, 1, 0x80, 0x80, 2, 3, 0x80, 0x80, 4, 5, 0x80, 0x80, 6, 7,
            0x80, 0x80, 8, 9, 0x80, 0x80, 10, 11, 0x80, 0x80, 12, 13, 0x80, 0x80, 14, 15);

        /// <summary>8 values of w as F32 (BF16 through <paramref name="spread"/>, see <see cref="SpreadBf16"/>).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector256<float> LoadW(TW* p, Vector256<byte> spread)
        {
            if (typeof(TW) == typeof(float)) return Vector256.Load((float*)p);
            if (Avx2.IsSupported) return Avx2.Shuffle(Avx2.BroadcastVector128ToVector256((byte*)p), spread).AsSingle();
            return GemmPacking.Load8(p);
        }

        /// <summary>One step of the chains of one x row: chain r += x · (row r of w); the JIT keeps them in registers.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void Chains(int nr, Vector256<float> xv, Vector256<float> v0, Vector256<float> v1, Vector256<float> v2, Vector256<float> v3,
            ref Vector256<float> c0, ref Vector256<float> c1, ref Vector256<float> c2, ref Vector256<float> c3)
        {
            c0 = Vector256.MultiplyAddEstimate(xv, v0, c0);
            if (nr > 1) c1 = Vector256.MultiplyAddEstimate(xv, v1, c1);
            if (nr > 2)
            {
                c2 = Vector256.MultiplyAddEstimate(xv, v2, c2);
                c3 = Vector256.MultiplyAddEstimate(xv, v3, c3);
            }
        }

        /// <summary>The <paramref name="nr"/> results of one x row: chain r belongs to row r of w.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private void FinishRow(int nr, float* yi, float* xi, TW* w0, nint ld, int p,
            Vector256<float> c0, Vector256<float> c1, Vector256<float> c2, Vector256<float> c3)
        {
            Finish(yi, xi, w0, p, c0);
            if (nr > 1) Finish(yi + ysw, xi, w0 + ld, p, c1);
            if (nr > 2)
            {
                Finish(yi + 2 * ysw, xi, w0 + 2 * ld, p, c2);
                Finish(yi + 3 * ysw, xi, w0 + 3 * ld, p, c3);
            }
        }

        /// <summary>Horizontal sum of one chain plus the scalar k tail from <paramref name="p"/>.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private void Finish(float* dst, float* xi, TW* wr, int p, Vector256<float> chain)
        {
            float s = Vector256.Sum(chain);
            for (; p < k; p++) s += xi[p] * GemmPacking.ToSingle(wr, p);
            Put(dst, s);
        }

        /// <summary>
        /// Axpy form, columns [j0, j1) in chunks of at most <see cref="MaxChunk"/>: acc_i += Σ_r x_i[p + r]·w[p + r, :]
        /// over R = 4 rows of w per pass (2 for 3-4 vectors), then the chunk goes to y.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void Axpy<TX>(TW* w, nint ldw, int j0, int j1, float* xg, float* yg) where TX : struct, ICount
        {
            int nx = TX.Value;
            int chunk = Math.Min(MaxChunk, j1 - j0);
            using var lease = GemmBuffers.Rent(GemmBuffers.Slot.A, (long)nx * chunk);
            float* acc = lease.Pointer;
            for (int jj = j0; jj < j1; jj += chunk)
            {
                int cw = Math.Min(chunk, j1 - jj);
                new Span<float>(acc, nx * chunk).Clear();
                int p = 0;
                if (nx <= 2)
                {
                    for (; p + 4 <= k; p += 4) AxpyBlock<TX, Four>(w, ldw, acc, chunk, cw, p, jj, xg);
                }
                for (; p + 2 <= k; p += 2) AxpyBlock<TX, Two>(w, ldw, acc, chunk, cw, p, jj, xg);
                for (; p < k; p++) AxpyBlock<TX, One>(w, ldw, acc, chunk, cw, p, jj, xg);
                for (int i = 0; i < nx; i++)
                {
                    float* a = acc + i * chunk, yi = yg + i * ysx + jj * ysw;
                    for (int v = 0; v < cw; v++) Put(yi + v * ysw, a[v]);
                }
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void AxpyBlock<TX, TR>(TW* w, nint ldw, float* acc, int chunk, int cw, int p, int jj, float* xg) where TX : struct, ICount where TR : struct, ICount
        {
            int nx = TX.Value, nr = TR.Value;
            TW* w0 = w + p * ldw + jj, w1 = w0 + ldw, w2 = w1 + ldw, w3 = w2 + ldw;
            float* x0 = xg + p, x1 = x0 + ldx, x2 = x1 + ldx, x3 = x2 + ldx;
            float* acc0 = acc, acc1 = acc0 + chunk, acc2 = acc1 + chunk, acc3 = acc2 + chunk;
            Vector256<float> b00 = Vector256.Create(x0[0]), b01 = nr > 1 ? Vector256.Create(x0[1]) : default;
            Vector256<float> b02 = nr > 2 ? Vector256.Create(x0[2]) : default, b03 = nr > 2 ? Vector256.Create(x0[3]) : default;
            Vector256<float> b10 = nx > 1 ? Vector256.Create(x1[0]) : default, b11 = nx > 1 && nr > 1 ? Vector256.Create(x1[1]) : default;
            Vector256<float> b12 = nx > 1 && nr > 2 ? Vector256.Create(x1[2]) : default, b13 = nx > 1 && nr > 2 ? Vector256.Create(x1[3]) : default;
            Vector256<float> b20 = nx > 2 ? Vector256.Create(x2[0]) : default, b21 = nx > 2 && nr > 1 ? Vector256.Create(x2[1]) : default;
            Vector256<float> b30 = nx > 3 ? Vector256.Create(x3[0]) : default, b31 = nx > 3 && nr > 1 ? Vector256.Create(x3[1]) : default;
            var spread = SpreadBf16();
            int v = 0;
            for (; v + 8 <= cw; v += 8)
            {
                var v0 = LoadW(w0 + v, spread);
                var v1 = nr > 1 ? LoadW(w1 + v, spread) : default;
                var v2 = nr > 2 ? LoadW(w2 + v, spread) : default;
                var v3 = nr > 2 ? LoadW(w3 + v, spread) : default;
                var s = Vector256.MultiplyAddEstimate(b00, v0, Vector256.Load(acc0 + v));
                if (nr > 1) s = Vector256.MultiplyAddEstimate(b01, v1, s);
                if (nr > 2) s = Vector256.MultiplyAddEstimate(b03, v3, Vector256.MultiplyAddEstimate(b02, v2, s));
                s.Store(acc0 + v);
                if (nx > 1)
                {
                    s = Vector256.MultiplyAddEstimate(b10, v0, Vector256.Load(acc1 + v));
                    if (nr > 1) s = Vector256.MultiplyAddEstimate(b11, v1, s);
                    if (nr > 2) s = Vector256.MultiplyAddEstimate(b13, v3, Vector256.MultiplyAddEstimate(b12, v2, s));
                    s.Store(acc1 + v);
                }
                if (nx > 2)
                {
                    s = Vector256.MultiplyAddEstimate(b20, v0, Vector256.Load(acc2 + v));
                    if (nr > 1) s = Vector256.MultiplyAddEstimate(b21, v1, s);
                    s.Store(acc2 + v);
                }
                if (nx > 3)
                {
                    s = Vector256.MultiplyAddEstimate(b30, v0, Vector256.Load(acc3 + v));
                    if (nr > 1) s = Vector256.MultiplyAddEstimate(b31, v1, s);
                    s.Store(acc3 + v);
                }
            }
            // Column tail (only at the end of the matrix: ranges are whole 16-column groups): same order, scalar.
            for (; v < cw; v++)
            {
                for (int i = 0; i < nx; i++)
                {
                    float* xi = x0 + i * ldx;
                    float s = acc[i * chunk + v];
                    for (int r = 0; r < nr; r++) s = MathF.FusedMultiplyAdd(xi[r], GemmPacking.ToSingle(w0 + r * ldw, v), s);
                    acc[i * chunk + v] = s;
                }
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void DotScalar(TW* w, nint ldw, float* y, int j0, int j1)
        {
            for (int j = j0; j < j1; j++)
            {
                TW* wj = w + j * ldw;
                for (int i = 0; i < rows; i++)
                {
                    float* xi = x + i * ldx;
                    float s = 0;
                    for (int p = 0; p < k; p++) s += xi[p] * GemmPacking.ToSingle(wj, p);
                    Put(y + i * ysx + j * ysw, s);
                }
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void AxpyScalar(TW* w, nint ldw, float* y, int j0, int j1)
        {
            for (int i = 0; i < rows; i++)
            {
                float* xi = x + i * ldx;
                for (int j = j0; j < j1; j++) Put(y + i * ysx + j * ysw, 0);
                for (int p = 0; p < k; p++)
                {
                    TW* wp = w + p * ldw;
                    float xv = xi[p];
                    for (int j = j0; j < j1; j++) y[i * ysx + j * ysw] += xv * GemmPacking.ToSingle(wp, j);
                }
            }
        }
    }
}
