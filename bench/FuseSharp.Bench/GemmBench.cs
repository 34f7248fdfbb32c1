using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using FuseSharp.Tensors;
using FuseSharp.Tensors.Kernels;
using static FuseSharp.Bench.BenchUtil;

namespace FuseSharp.Bench;

/// <summary>
/// GEMM and GEMV against the machine's own limits, measured in the same run: the FMA peak (a register-only FMA
/// loop at the widest hardware-accelerated vector width, enough independent accumulators to cover the FMA
/// latency) and a plain memory-read bandwidth (a vector sum over a buffer far larger than L3).
/// Options: <c>--quick</c> (shorter repeats, sizes up to 2048), <c>--threads 1,2</c>, <c>--only gemm,gemv,rows,ceiling,pack,profile</c>
/// (ceiling: the micro-kernel alone on panels already packed in L1/L2; pack: the packing alone; profile: the forward
/// GEMM's time by phase; none of the three run by default),
/// <c>--sizes 512,4096</c> (K = N of the GEMM section), <c>--variants NT,NN,TN+,NT-BF16</c> (its layouts).
/// The load average is printed at the start and the end: on a busy shared machine wall-clock rates fall, and when
/// it lends fewer cores than threads the multi-thread peak falls too (a ratio above 1 says so). Every GEMM ratio
/// is therefore also given per CPU second (time the threads actually ran, against the peak measured the same way).
/// </summary>
internal static class GemmBench
{
    public static void Run(string[] args)
    {
        bool quick = args.Contains("--quick");
        double budget = quick ? 0.3 : 1.5; // seconds of repeats per measurement
        int[] threadCounts = [1, Math.Min(2, Environment.ProcessorCount)];
        int ti = Array.IndexOf(args, "--threads");
        if (ti >= 0 && ti + 1 < args.Length) threadCounts = args[ti + 1].Split(',').Select(int.Parse).ToArray();
        int oi = Array.IndexOf(args, "--only");
        string[] sections = oi >= 0 && oi + 1 < args.Length ? args[oi + 1].Split(',') : ["gemm", "gemv", "rows"];
        int[] sizes = quick ? [512, 1024, 2048] : [512, 1024, 2048, 4096];
        int si = Array.IndexOf(args, "--sizes");
        if (si >= 0 && si + 1 < args.Length) sizes = args[si + 1].Split(',').Select(int.Parse).ToArray();
        int vi = Array.IndexOf(args, "--variants");
        string[]? variantNames = vi >= 0 && vi + 1 < args.Length ? args[vi + 1].Split(',') : null;

        Console.WriteLine($"gemm: kernel {Gemm.BestKernel}, {Environment.ProcessorCount} cores, Vector512 accelerated: " +
            $"{Vector512.IsHardwareAccelerated}, Vector256: {Vector256.IsHardwareAccelerated}, load average {LoadAverage()}");
        if (sections.Contains("ceiling")) KernelCeiling(threadCounts, budget);
        if (sections.Contains("pack")) Packing(sizes, budget);
        if (sections.Contains("profile")) Profile(threadCounts, sizes, budget);
        if (sections.Contains("gemm")) GemmVersusPeak(threadCounts, sizes, budget, variantNames);
        if (sections.Contains("gemv") || sections.Contains("rows"))
        {
            // A matrix far larger than L3 (256 MiB F32, 128 MiB BF16), streamed once per call.
            int n = 16384, k = 4096;
            var w = RandomFloats((long)n * k, 3);
            var wBf16 = new ushort[w.Length];
            BFloat16Conversion.FromSingle(w, wBf16);
            if (sections.Contains("gemv")) GemvVersusRead(threadCounts, budget, n, k, w, wBf16);
            if (sections.Contains("rows")) RowsCrossover(threadCounts, budget, n, k, w);
        }
        Parallelism.MaxThreads = 0;
        Console.WriteLine($"  load average at the end: {LoadAverage()}");
    }

    /// <summary>
    /// GEMM, M = 512, K = N: forward (x·Wᵀ, transB), input gradient (dy·W, no transposes), weight gradient
    /// (dW += dyᵀ·x, transA with accumulate), forward with BF16 weights; against the FMA peak measured before and
    /// after (the larger kept, so that one busy moment does not lower the baseline). <paramref name="variantNames"/>
    /// (null: all) picks layouts by their short names: NT, NN, TN+, NT-BF16.
    /// </summary>
    private static void GemmVersusPeak(int[] threadCounts, int[] sizes, double budget, string[]? variantNames)
    {
        var peak = new Dictionary<int, double>();
        var peakCpu = new Dictionary<int, double>();
        MeasurePeak(threadCounts, peak, peakCpu);
        var (a, b, c) = Operands(sizes[^1]);
        var bBf16 = new ushort[b.Length];
        BFloat16Conversion.FromSingle(b, bBf16);
        var variants = new (string Name, bool TransA, bool TransB, bool Bf16, bool Accumulate)[]
        {
            ("NT  (forward x·Wᵀ)   ", false, true, false, false),
            ("NN  (input grad dy·W) ", false, false, false, false),
            ("TN+ (weight grad dyᵀx)", true, false, false, true),
            ("NT  BF16 W (forward)  ", false, true, true, false),
        };
        if (variantNames is not null)
            variants = variants.Where(v => variantNames.Contains(v.Name.Split(' ')[0] + (v.Bf16 ? "-BF16" : ""))).ToArray();
        var rates = new List<(string Name, int Threads, int Size, double Flops, double CpuFlops)>();
        foreach (var t in threadCounts)
        {
            Parallelism.MaxThreads = t;
            foreach (var v in variants)
            {
                foreach (var size in sizes)
                {
                    int m = 512, n = size, k = size;
                    int lda = v.TransA ? m : k, ldb = v.TransB ? k : n;
                    var time = BestWithin(budget, t, () =>
                    {
                        if (v.Bf16) Gemm.MatMulBf16(v.TransA, v.TransB, m, n, k, a, lda, bBf16, ldb, c, n, v.Accumulate);
                        else Gemm.MatMul(v.TransA, v.TransB, m, n, k, a, lda, b, ldb, c, n, v.Accumulate);
                    });
                    double flop = 2.0 * m * n * k;
                    rates.Add((v.Name, t, size, flop / time.Wall, flop / time.Cpu));
                    Console.WriteLine($"  GEMM {v.Name} t={t} M=512 K=N={size,4}: {F(flop / time.Wall / 1e9, "0.0"),6} GFLOP/s" +
                        $" (per CPU second: {F(flop / time.Cpu / 1e9, "0.0")})");
                }
            }
        }
        MeasurePeak(threadCounts, peak, peakCpu);
        foreach (var (name, t, size, flops, cpuFlops) in rates)
        {
            Ratio($"GEMM {name.Trim()} t={t} N=K={size} / FMA peak", flops / peak[t], ">=", 0.85);
            Console.WriteLine($"    per CPU second: {F(cpuFlops / peakCpu[t])} of the peak per CPU second");
        }
    }

    /// <summary>The operands of the M = 512 products up to K = N = <paramref name="maxSize"/>: A, B (the same seeds in every section) and C.</summary>
    private static (float[] A, float[] B, float[] C) Operands(int maxSize) =>
        (RandomFloats(512L * maxSize, 1), RandomFloats((long)maxSize * maxSize, 2), new float[512 * maxSize]);

    /// <summary>
    /// The ceiling of the blocked path: the production micro-kernel alone, every thread on its own panels packed once
    /// (no packing), all threads at once. Three residencies: <c>L1</c> (one A panel and one B panel, 6 + 16 KiB at
    /// KC, one C tile); <c>L2</c> (an MC x KC A block in L2, one B panel in L1, the C tiles of one column panel);
    /// <c>L3</c> (the production sweep without packing: that A block against a k block of 2048 columns of packed B,
    /// 2 MiB per thread, streamed with the production prefetch, into a C block of MC x 2048). If the threads together
    /// reach less than the target in L1/L2, the full GEMM cannot reach it on this machine; the gap from L2 to L3 is
    /// what streaming B and C costs, the gap from L3 to the GEMM section what packing and the rest cost.
    /// </summary>
    private static void KernelCeiling(int[] threadCounts, double budget)
    {
        var peak = new Dictionary<int, double>();
        var peakCpu = new Dictionary<int, double>();
        MeasurePeak(threadCounts, peak, peakCpu);
        switch (Gemm.BestKernel)
        {
            case Gemm.Kernel.Vector512: Ceiling<GemmKernel<Lanes512, Vector512<float>>>(threadCounts, budget, peak, peakCpu); break;
            case Gemm.Kernel.Vector256: Ceiling<GemmKernel<Lanes256, Vector256<float>>>(threadCounts, budget, peak, peakCpu); break;
            default: Console.WriteLine("  ceiling: no SIMD kernel on this machine"); break;
        }
    }

    private static unsafe void Ceiling<TK>(int[] threadCounts, double budget, Dictionary<int, double> peak, Dictionary<int, double> peakCpu)
        where TK : struct, IGemmMicroKernel
    {
        int mr = TK.MR, nr = TK.NR, kc = TK.KC, mc = TK.MC;
        const int Calls = 960; // kernel calls of one measured run at least (~2 ms on one core)
        var results = new List<(string Name, int Threads, double Flops, double CpuFlops)>();
        var residencies = new[]
        {
            ("L1", 1, 1, true, true, 0), ("L2", mc / mr, 1, true, true, 0), ("L3", mc / mr, 2048 / nr, true, true, 0), ("L3, ldc + 16", mc / mr, 2048 / nr, true, true, 16),
            ("L3, B streamed only", mc / mr, 2048 / nr, true, false, 0), ("L3, C streamed only", mc / mr, 2048 / nr, false, true, 0),
            ("L3, C streamed only, ldc + 16", mc / mr, 2048 / nr, false, true, 16),
        };
        foreach (var (name, aPanels, bPanels, streamB, streamC, pad) in residencies)
        {
            foreach (var t in threadCounts)
            {
                // Per thread: A panels [aPanels x kc x mr], B panels [bPanels x kc x nr] (or one when B is not
                // streamed), C [aPanels·mr, bPanels·nr] (or one column panel of it when C is not streamed).
                int ldc = streamC ? bPanels * nr + pad : nr;
                var buffers = Enumerable.Range(0, t).Select(i => (
                    A: RandomFloats((long)aPanels * kc * mr + 16, 10 + i), B: RandomFloats((long)bPanels * kc * nr + 16, 20 + i),
                    C: new float[aPanels * mr * ldc + 16])).ToArray();
                var handles = buffers.SelectMany(x => new[] { x.A, x.B, x.C })
                    .Select(x => System.Runtime.InteropServices.GCHandle.Alloc(x, System.Runtime.InteropServices.GCHandleType.Pinned)).ToList();
                try
                {
                    int sweeps = (Calls + aPanels * bPanels - 1) / (aPanels * bPanels), calls = sweeps * aPanels * bPanels;
                    void Body(int i)
                    {
                        var (a, b, c) = buffers[i];
                        fixed (float* pa = a, pb = b, pc = c)
                        {
                            // The production sweep order: B panel outer (in L1), A panels inner (from L2), and the
                            // production prefetch of the next B panel, a share with each call.
                            int lines = kc * nr / 16, share = (lines + aPanels - 1) / aPanels;
                            for (int s = 0; s < sweeps; s++)
                            {
                                for (int jp = 0; jp < bPanels; jp++)
                                {
                                    float* bPanel = streamB ? pb + (nint)jp * kc * nr : pb;
                                    float* next = streamB && jp + 1 < bPanels ? bPanel + (nint)kc * nr : null;
                                    float* cCol = streamC ? pc + jp * nr : pc;
                                    for (int ip = 0; ip < aPanels; ip++)
                                    {
                                        if (next != null && System.Runtime.Intrinsics.X86.Sse.IsSupported)
                                            for (int l = ip * share, end = Math.Min(lines, l + share); l < end; l++)
                                                System.Runtime.Intrinsics.X86.Sse.Prefetch1(next + l * 16);
                                        TK.Run(kc, pa + (nint)ip * kc * mr, bPanel, cCol + (nint)ip * mr * ldc, ldc, cCol + (nint)ip * mr * ldc, ldc);
                                    }
                                }
                            }
                        }
                    }
                    var time = BestWithin(budget, t, () =>
                    {
                        if (t == 1) Body(0);
                        else Parallel.For(0, t, new ParallelOptions { MaxDegreeOfParallelism = t }, Body);
                    });
                    double flop = 2.0 * calls * mr * nr * kc * t;
                    results.Add((name, t, flop / time.Wall, flop / time.Cpu));
                }
                finally
                {
                    foreach (var h in handles) h.Free();
                }
            }
        }
        MeasurePeak(threadCounts, peak, peakCpu);
        foreach (var (name, t, flops, cpuFlops) in results)
        {
            Console.WriteLine($"  micro-kernel {mr}x{nr}, KC {kc}, panels in {name}, t={t}: {F(flops / 1e9, "0.0")} GFLOP/s" +
                $" (per CPU second {F(cpuFlops / 1e9, "0.0")})");
            Ratio($"micro-kernel ceiling, panels in {name}, t={t} / FMA peak", flops / peak[t], ">=", 0.85);
            Console.WriteLine($"    per CPU second: {F(cpuFlops / peakCpu[t])} of the peak per CPU second");
        }
    }

    /// <summary>
    /// Where the forward GEMM's time goes (x·Wᵀ, M = 512, K = N), from the blocked path's own per-phase timings
    /// (<see cref="GemmBlocked.Probe"/>): per phase its share of the threads' time and its rate (B and A packs in floats
    /// per ns, the kernel sweeps as a fraction of one core's FMA peak), fastest and median entry. Entries are short
    /// (a kernel sweep 0.3-0.7 ms), so on a busy machine many run undisturbed while a whole call rarely does: "at p10"
    /// is the ratio the call would reach with every phase at the rate its fastest tenth of entries reached.
    /// </summary>
    private static void Profile(int[] threadCounts, int[] sizes, double budget)
    {
        var peak = new Dictionary<int, double>();
        var peakCpu = new Dictionary<int, double>();
        MeasurePeak(threadCounts, peak, peakCpu);
        var (a, b, c) = Operands(sizes[^1]);
        double core = peak[threadCounts[0]] / threadCounts[0];
        foreach (var t in threadCounts)
        {
            Parallelism.MaxThreads = t;
            foreach (var size in sizes)
            {
                int m = 512, n = size, k = size;
                Gemm.MatMul(false, true, m, n, k, a, k, b, k, c, n);
                var entries = new System.Collections.Concurrent.ConcurrentQueue<GemmBlocked.ProbeEntry>();
                GemmBlocked.Probe = entries;
                Timing time;
                try { time = BestWithin(budget, t, () => Gemm.MatMul(false, true, m, n, k, a, k, b, k, c, n)); }
                finally { GemmBlocked.Probe = null; }
                var callEntries = entries.Where(e => e.Phase == GemmBlocked.Phase.Call).ToArray();
                var phaseEntries = entries.Where(e => e.Phase != GemmBlocked.Phase.Call).ToArray();
                double flop = 2.0 * m * n * k, calls = time.Runs + 1, ticks = phaseEntries.Sum(e => (double)e.Ticks), atP10 = 0;
                var line = $"  profile NT t={t} K=N={size,4}: best wall {F(flop / time.Wall / peak[t])}, per CPU second {F(flop / time.Cpu / peakCpu[t])} of peak";
                foreach (var phase in Enum.GetValues<GemmBlocked.Phase>().Where(p => p != GemmBlocked.Phase.Call))
                {
                    var of = phaseEntries.Where(e => e.Phase == phase && e.Ticks > 0).ToArray();
                    if (of.Length == 0) continue;
                    var rates = of.Select(e => e.Work * (double)System.Diagnostics.Stopwatch.Frequency / e.Ticks).OrderDescending().ToArray();
                    double scale = phase == GemmBlocked.Phase.Kernel ? 2 / core : 1e-9; // FMAs/s -> of peak, floats/s -> floats/ns
                    line += $" | {phase} {F(of.Sum(e => (double)e.Ticks) / ticks * 100, "0.0")}%, fastest {F(rates[0] * scale)}, median {F(rates[rates.Length / 2] * scale)}";
                    atP10 += of.Sum(e => (double)e.Work) / rates[rates.Length / 10];
                }
                // The phases' seconds at p10, shared by t threads, against t cores' peak (the t-thread peak itself falls
                // when the machine lends fewer cores).
                Console.WriteLine(line + $" | at p10 {F(flop * calls / (atP10 / t) / (core * t))}");
                if (t > 1) Console.WriteLine(Timeline(callEntries, phaseEntries, t));
            }
        }
        Parallelism.MaxThreads = 0;
    }

    /// <summary>
    /// How many threads were in a timed phase during the calls (a pool thread may serve one dispatch and another the next,
    /// so this counts concurrent phases, not thread identities): the shares of the calls' wall time with all t, fewer
    /// and none busy, and the mean and median delay until t were busy at once (the helpers' start; a few descheduled
    /// calls move the mean) as a share of the call. Time with fewer than t busy is waiting: for the pool, at a barrier,
    /// for the last item; a thread descheduled inside a phase shows as a slow phase instead.
    /// </summary>
    private static string Timeline(GemmBlocked.ProbeEntry[] callEntries, GemmBlocked.ProbeEntry[] phaseEntries, int t)
    {
        var byStart = phaseEntries.OrderBy(e => e.Start).ToArray();
        var atLevel = new double[t + 2];
        double wall = 0;
        var lates = new List<double>();
        int calls = 0;
        foreach (var call in callEntries)
        {
            long end = call.Start + call.Ticks;
            if (call.Ticks <= 0) continue;
            var events = byStart.Where(e => e.Start >= call.Start && e.Start + e.Ticks <= end)
                .SelectMany(e => new[] { (At: e.Start, Step: 1), (At: e.Start + e.Ticks, Step: -1) })
                .OrderBy(e => e.At).ThenBy(e => e.Step).ToArray();
            long last = call.Start, allBusy = -1;
            int level = 0;
            foreach (var (at, step) in events)
            {
                atLevel[Math.Min(level, t + 1)] += at - last;
                last = at;
                level += step;
                if (level >= t && allBusy < 0) allBusy = at;
            }
            atLevel[0] += end - last;
            wall += call.Ticks;
            lates.Add(((allBusy < 0 ? end : allBusy) - call.Start) / (double)call.Ticks);
            calls++;
        }
        if (calls == 0) return "    timeline: no calls";
        var line = $"    timeline t={t} ({calls} calls): share of wall with";
        for (int level = t; level >= 0; level--) line += $" {level} busy {F(atLevel[level] / wall * 100, "0.0")}%,";
        lates.Sort();
        return line + $" {t} busy first after {F(lates.Average() * 100, "0.0")}% of the call (median {F(lates[lates.Count / 2] * 100, "0.0")}%)";
    }

    /// <summary>
    /// Packing alone, one thread: a forward weight (B stored [N, K], N = K = size) into the B slab's 16- or 32-wide
    /// panels, k block by k block, and the A of M = 512 rows into 6-row panels of one k block at a time, as the
    /// blocked path does; in floats per nanosecond and as a share of the GEMM's FMA time at peak (M = 512: every B
    /// value feeds 512 FMAs, every A value N).
    /// </summary>
    private static unsafe void Packing(int[] sizes, double budget)
    {
        int nr = Gemm.BestKernel == Gemm.Kernel.Vector512 ? 32 : 16, mr = 6, kcMax = Gemm.BestKernel == Gemm.Kernel.Vector512 ? 192 : 256;
        Parallelism.MaxThreads = 1;
        double fmaPerNs = 0;
        {
            var t = BestWithin(0.3, 1, () => FmaLoop(1, FmaChains<Lanes256, Vector256<float>>));
            fmaPerNs = FmaFlops(1, 8) / 2 / t.Wall / 1e9;
        }
        foreach (var size in sizes)
        {
            int n = size, k = size, m = 512;
            int kBlocks = (k + kcMax - 1) / kcMax, kc = (k + kBlocks - 1) / kBlocks, panels = (n + nr - 1) / nr;
            var b = RandomFloats((long)n * k, 6);
            var a = RandomFloats((long)m * k, 7);
            var slab = new float[(long)k * panels * nr + 64];
            var aPack = new float[(long)(m + mr - 1) / mr * mr * kc + 64];
            fixed (float* pb = b, ps = slab, pa = a, pp = aPack)
            {
                float* sb = pb, ss = ps, sa = pa, sp = pp;
                var tb = BestWithin(budget / 2, 1, () =>
                {
                    for (int jp = 0; jp < panels; jp++)
                        for (int k0 = 0; k0 < k; k0 += kc)
                        {
                            int kcq = Math.Min(kc, k - k0);
                            GemmPacking.PackTranspose(sb + (nint)jp * nr * k + k0, k, Math.Min(nr, n - jp * nr), kcq,
                                ss + (nint)k0 * panels * nr + (nint)jp * kcq * nr, nr, true);
                        }
                });
                var ta = BestWithin(budget / 2, 1, () =>
                {
                    for (int k0 = 0; k0 < k; k0 += kc)
                    {
                        int kcq = Math.Min(kc, k - k0);
                        for (int ip = 0; ip * mr < m; ip++)
                            GemmPacking.PackTranspose(sa + (nint)ip * mr * k + k0, k, Math.Min(mr, m - ip * mr), kcq, sp + (nint)ip * kcq * mr, mr, true);
                    }
                });
                double bNs = tb.Wall * 1e9 / ((double)n * k), aNs = ta.Wall * 1e9 / ((double)m * k);
                Console.WriteLine($"  pack B [{n}x{k}] -> {nr}-wide panels: {F(1 / bNs)} floats/ns (CPU {F(n * (double)k / tb.Cpu / 1e9)})," +
                    $" {F(bNs * fmaPerNs / m * 100)}% of the FMA time at M = {m};" +
                    $" pack A [{m}x{k}] -> 6-row panels: {F(1 / aNs)} floats/ns (CPU {F(m * (double)k / ta.Cpu / 1e9)}), {F(aNs * fmaPerNs / n * 100)}% per slab of N = {n}");
            }
        }
        Parallelism.MaxThreads = 0;
    }

    /// <summary>GEMV (decoding, 1 and 4 rows) in both forms, F32 and BF16, against a plain read of the same matrix.</summary>
    private static void GemvVersusRead(int[] threadCounts, double budget, int n, int k, float[] w, ushort[] wBf16)
    {
        var x = RandomFloats(4L * Math.Max(n, k), 4);
        var y = new float[4 * Math.Max(n, k)];
        foreach (var t in threadCounts)
        {
            Parallelism.MaxThreads = t;
            double read1 = w.Length * 4.0 / BestWithin(budget, t, () => ReadAll(w, t, 1)).Wall;
            double read4 = w.Length * 4.0 / BestWithin(budget, t, () => ReadAll(w, t, 4)).Wall;
            double read = Math.Max(read1, read4);
            Console.WriteLine($"  memory read, {t} thread(s): one stream {Gb(read1)}, four streams {Gb(read4)}");
            foreach (var rows in new[] { 1, 4 })
            {
                double tF32 = BestWithin(budget, t, () => Gemm.MatMul(false, true, rows, n, k, x, k, w, k, y, n)).Wall;
                double tBf16 = BestWithin(budget, t, () => Gemm.MatMulBf16(false, true, rows, n, k, x, k, wBf16, k, y, n)).Wall;
                double tAxpy = BestWithin(budget, t, () => Gemm.MatMul(false, false, rows, k, n, x, n, w, k, y, k)).Wall;
                double tAxpyBf16 = BestWithin(budget, t, () => Gemm.MatMulBf16(false, false, rows, k, n, x, n, wBf16, k, y, k)).Wall;
                Report($"GEMV m={rows} t={t} x·Wᵀ F32 ", w.Length * 4.0 / tF32, read);
                Report($"GEMV m={rows} t={t} x·Wᵀ BF16", w.Length * 2.0 / tBf16, read);
                Report($"GEMV m={rows} t={t} x·W  F32 ", w.Length * 4.0 / tAxpy, read);
                Report($"GEMV m={rows} t={t} x·W  BF16", w.Length * 2.0 / tAxpyBf16, read);
            }
        }
    }

    /// <summary>Where the streaming path stops paying: a few rows of x·Wᵀ (F32) through both paths.</summary>
    private static void RowsCrossover(int[] threadCounts, double budget, int n, int k, float[] w)
    {
        var x = RandomFloats(16L * k, 5);
        var y = new float[16 * n];
        foreach (var t in threadCounts)
        {
            foreach (var rows in new[] { 1, 2, 4, 5, 8, 12, 16 })
            {
                var line = $"  rows={rows,2} t={t} x·Wᵀ F32 [{n}x{k}]:";
                foreach (var vector in new[] { true, false })
                {
                    double sec = BestWithin(budget, t, () => Gemm.MatMul<float>(Gemm.BestKernel, t, false, true, rows, n, k, x, k, w, k, y, n, false, vector ? 16 : 0)).Wall;
                    line += $"  {(vector ? "vector" : "blocked")} {F(2.0 * rows * n * k / sec / 1e9, "0.0")} GFLOP/s ({Gb(w.Length * 4.0 / sec)})";
                }
                Console.WriteLine(line);
            }
        }
    }

    private static string LoadAverage() =>
        File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Split(' ')[0] : "n/a";

    /// <summary>
    /// Peak FMA rate per thread count (per wall second and per CPU second): many short (~2 ms) runs, best kept, so
    /// that on a shared machine some run lands in a quiet slice; Vector512 is measured too and counts when faster
    /// (it is only where accelerated).
    /// </summary>
    private static void MeasurePeak(int[] threadCounts, Dictionary<int, double> peak, Dictionary<int, double> peakCpu)
    {
        foreach (var t in threadCounts)
        {
            var t256 = BestWithin(0.3, t, () => FmaLoop(t, FmaChains<Lanes256, Vector256<float>>));
            var t512 = BestWithin(0.3, t, () => FmaLoop(t, FmaChains<Lanes512, Vector512<float>>));
            double v256 = FmaFlops(t, 8) / t256.Wall, v512 = FmaFlops(t, 16) / t512.Wall;
            peak[t] = Math.Max(peak.GetValueOrDefault(t), Math.Max(v256, v512));
            peakCpu[t] = Math.Max(peakCpu.GetValueOrDefault(t), Math.Max(FmaFlops(t, 8) / t256.Cpu, FmaFlops(t, 16) / t512.Cpu));
            Console.WriteLine($"  peak FMA, {t} thread(s): Vector256 {F(v256 / 1e9, "0.0")} GFLOP/s, Vector512 {F(v512 / 1e9, "0.0")} GFLOP/s" +
                (Vector512.IsHardwareAccelerated ? "" : " (not hardware-accelerated: emulated by two 256-bit halves)") + $" -> peak {F(peak[t] / 1e9, "0.0")}");
        }
    }

    private static void Report(string what, double bytesPerSecond, double read)
    {
        Console.WriteLine($"  {what}: {Gb(bytesPerSecond)}");
        Ratio($"{what.Trim()} / memory read", bytesPerSecond / read, ">=", 0.85);
    }

    private static float[] RandomFloats(long count, int seed)
    {
        var rng = new Random(seed);
        var values = GC.AllocateUninitializedArray<float>(checked((int)count));
        for (int i = 0; i < values.Length; i++) values[i] = (float)(rng.NextDouble() * 2 - 1);
        return values;
    }

    private const int FmaIterations = 1_000_000; // 12 FMAs per iteration: ~2 ms on one core

    private static double FmaFlops(int threads, int lanes) => 2.0 * lanes * 12 * FmaIterations * threads;

    private static void FmaLoop(int threads, Func<int, float> body)
    {
        if (threads == 1) Sink = body(FmaIterations);
        else Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, _ => Sink = body(FmaIterations));
    }

    private static float Sink;

    /// <summary>
    /// 12 independent FMA chains on registers only (latency 4 x 2 pipes needs 8), at the width of <typeparamref name="TL"/>
    /// (the GEMM micro-kernel's own lane arithmetic, so both use the same instructions).
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static unsafe float FmaChains<TL, TVec>(int iterations) where TL : struct, IGemmLanes<TVec> where TVec : unmanaged
    {
        var mul = TL.Broadcast(0.999f);
        var add = TL.Broadcast(0.001f);
        TVec a0 = TL.Broadcast(0), a1 = TL.Broadcast(1), a2 = TL.Broadcast(2), a3 = TL.Broadcast(3), a4 = TL.Broadcast(4), a5 = TL.Broadcast(5);
        TVec a6 = TL.Broadcast(6), a7 = TL.Broadcast(7), a8 = TL.Broadcast(8), a9 = TL.Broadcast(9), a10 = TL.Broadcast(10), a11 = TL.Broadcast(11);
        for (int i = 0; i < iterations; i++)
        {
            a0 = TL.MultiplyAdd(a0, mul, add); a1 = TL.MultiplyAdd(a1, mul, add); a2 = TL.MultiplyAdd(a2, mul, add);
            a3 = TL.MultiplyAdd(a3, mul, add); a4 = TL.MultiplyAdd(a4, mul, add); a5 = TL.MultiplyAdd(a5, mul, add);
            a6 = TL.MultiplyAdd(a6, mul, add); a7 = TL.MultiplyAdd(a7, mul, add); a8 = TL.MultiplyAdd(a8, mul, add);
            a9 = TL.MultiplyAdd(a9, mul, add); a10 = TL.MultiplyAdd(a10, mul, add); a11 = TL.MultiplyAdd(a11, mul, add);
        }
        var sum = TL.Add(TL.Add(TL.Add(a0, a1), TL.Add(a2, a3)), TL.Add(TL.Add(a4, a5), TL.Add(a6, a7)));
        sum = TL.Add(sum, TL.Add(TL.Add(a8, a9), TL.Add(a10, a11)));
        float* lanes = stackalloc float[TL.Lanes];
        TL.Store(sum, lanes);
        return lanes[0];
    }

    /// <summary>
    /// Best wall time and mean CPU time per thread of repeated runs within about <paramref name="budget"/> seconds (at
    /// least 3, at most 200 runs, after a warm-up): short operations get many chances to land in a quiet slice of a
    /// shared machine. CPU time leaves out the time the threads were not scheduled, so on a busy machine it shows
    /// what the code does when it runs (caches disturbed by the neighbours still count). It is the mean over all
    /// runs, not the best: the process CPU clock advances in scheduler ticks, so a millisecond run reads zero or a
    /// whole tick, and the smallest reading was biased low (2-thread rates per CPU second above the 1-thread peak).
    /// </summary>
    private static Timing BestWithin(double budget, int threads, Action body)
    {
        body();
        double wall = double.MaxValue, spent = 0;
        int runs = 0;
        var cpu0 = Environment.CpuUsage.TotalTime;
        for (; runs < 200 && (runs < 3 || spent < budget); runs++)
        {
            var sw = System.Diagnostics.Stopwatch.StartNew();
            body();
            double s = sw.Elapsed.TotalSeconds;
            wall = Math.Min(wall, s);
            spent += s;
        }
        double cpu = (Environment.CpuUsage.TotalTime - cpu0).TotalSeconds / threads / runs;
        return new Timing(wall, Math.Max(cpu, 1e-9), runs);
    }

    private readonly record struct Timing(double Wall, double Cpu, int Runs);

    /// <summary>Reads every float of <paramref name="data"/> once: each thread its contiguous share, as 1 or 4 sequential streams.</summary>
    private static void ReadAll(float[] data, int threads, int streams)
    {
        if (threads == 1) Sink = Streams(data, 0, data.Length, streams);
        else Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads },
            t => Sink = Streams(data, (int)((long)data.Length * t / threads), (int)((long)data.Length * (t + 1) / threads), streams));
    }

    private static float Streams(float[] data, int start, int end, int streams)
    {
        if (streams == 1) return Sum(data, start, end);
        int len = (end - start) / 4 / 64 * 64;
        return Sum4(data, start, len) + Sum(data, start + 4 * len, end);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe float Sum4(float[] data, int start, int len)
    {
        fixed (float* p0 = &data[start])
        {
            float* p = p0, q = p0 + len, r = q + len, u = r + len, stop = p0 + len;
            Vector256<float> s0 = default, s1 = default, s2 = default, s3 = default, s4 = default, s5 = default, s6 = default, s7 = default;
            for (; p < stop; p += 16, q += 16, r += 16, u += 16)
            {
                s0 += Vector256.Load(p); s1 += Vector256.Load(p + 8); s2 += Vector256.Load(q); s3 += Vector256.Load(q + 8);
                s4 += Vector256.Load(r); s5 += Vector256.Load(r + 8); s6 += Vector256.Load(u); s7 += Vector256.Load(u + 8);
            }
            return Vector256.Sum(s0 + s1 + s2 + s3 + s4 + s5 + s6 + s7);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe float Sum(float[] data, int start, int end)
    {
        if (start >= end) return 0;
        fixed (float* p0 = &data[start])
        {
            float* p = p0, stop = p0 + (end - start);
            Vector256<float> s0 = default, s1 = default, s2 = default, s3 = default, s4 = default, s5 = default, s6 = default, s7 = default;
            for (; p + 64 <= stop; p += 64)
            {
                s0 += Vector256.Load(p); s1 += Vector256.Load(p + 8); s2 += Vector256.Load(p + 16); s3 += Vector256.Load(p + 24);
                s4 += Vector256.Load(p + 32); s5 += Vector256.Load(p + 40); s6 += Vector256.Load(p + 48); s7 += Vector256.Load(p + 56);
            }
            float s = Vector256.Sum(s0 + s1 + s2 + s3 + s4 + s5 + s6 + s7);
            for (; p < stop; p++) s += *p;
            return s;
        }
    }
}
