using System.Diagnostics;
using System.Globalization;
using System.Runtime.Intrinsics;
using System.Text.Json.Nodes;
using FuseSharp.Models;
using FuseSharp.Models.Weights;
using FuseSharp.Tensors;
using FuseSharp.Tensors.Kernels;

namespace FuseSharp.Bench;

/// <summary>
/// The transformer engine on a GPT-2-small-sized Llama (d 768, 12 layers, 12 heads, SwiGLU 2048, vocab 32000),
/// generated here:
/// <list type="bullet">
/// <item>forward throughput at batch 4 x 512, FP32: tokens/s, GFLOP/s (matmul and causal attention FLOPs), and the
/// fraction of a plain GEMM's rate measured in the same run (target ≥ 0.70); also the share of the forward spent in
/// the model's own GEMM shapes;</item>
/// <item>decoding at batch 1 with the KV cache: tokens/s and weight bytes per token / time against a plain parallel read
/// of memory measured in the same run (target ≥ 0.60), for F32 and for BF16 weights;</item>
/// <item>a BF16 checkpoint loaded from disk: anonymous (heap) memory growth vs the F32 size of its weights (the
/// weights must stay memory-mapped: growth well under the F32 size), and file-backed resident memory.</item>
/// </list>
/// Options: <c>--batch B --seq T --repeats N --decode-steps S --quick --decode-only</c> (quick: 1 x 128, fewer steps;
/// decode-only: the BF16 checkpoint and decoding, no forward throughput).
/// </summary>
internal static class ForwardBench
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static void Run(string[] args)
    {
        int batch = Arg(args, "--batch", 4), seq = Arg(args, "--seq", 512), repeats = Arg(args, "--repeats", 3), steps = Arg(args, "--decode-steps", 32);
        if (args.Contains("--quick")) { batch = 1; seq = 128; repeats = 1; steps = 8; }
        var config = new JsonObject
        {
            ["hidden_size"] = 768, ["intermediate_size"] = 2048, ["num_hidden_layers"] = 12, ["num_attention_heads"] = 12,
            ["num_key_value_heads"] = 12, ["vocab_size"] = 32000, ["max_position_embeddings"] = 2048, ["rms_norm_eps"] = 1e-5,
        };
        var arch = ArchitectureRegistry.Get("llama");
        Console.WriteLine($"forward: Llama d=768 L=12 H=12 ffn=2048 V=32000; batch {batch} x {seq}; threads {Parallelism.MaxThreads}; " +
            $"Vector512 {Vector512.IsHardwareAccelerated}, Vector256 {Vector256.IsHardwareAccelerated}");

        Console.WriteLine($"  memory read bandwidth (parallel, 512 MiB): {BenchUtil.Gb(ReadBandwidth())}");

        // BF16 checkpoint first, so the process's peak memory belongs to it.
        Bf16Checkpoint(arch, config, steps);

        var (_, spec) = ModelInitializer.PrepareConfig(arch, config, DType.F32);
        var sw = Stopwatch.StartNew();
        using var source = new TensorWeightSource(ModelInitializer.CreateWeights(arch, spec, 0.02, seed: 1), ownsTensors: true);
        using var model = TransformerModel.Create(arch, spec, source);
        Console.WriteLine($"  model: {arch.Parameters(spec).Sum(p => p.ElementCount) / 1e6:0.0} M parameters, initialised in {sw.Elapsed.TotalSeconds:0.0} s");

        if (!args.Contains("--decode-only")) Throughput(model, spec, batch, seq, repeats);
        DecodeF32(model, steps);
    }

    private static void Throughput(TransformerModel model, TransformerSpec spec, int batch, int seq, int repeats)
    {
        var rng = new Random(5);
        var ids = Enumerable.Range(0, batch * seq).Select(_ => rng.Next(32000)).ToArray();
        var tokens = new TokenBatch(batch, seq, ids);
        var sink = new NextTokenLoss(); // every position through the output projection, no (B, T, V) copy kept
        // The machine is shared: baselines are measured right before and after what they compare with, best kept.
        // Forward, plain GEMM and the model's own GEMMs alone are timed in alternation, best of each kept.
        double gemmRate = 0, forward = double.MaxValue, ownGemms = double.MaxValue;
        var gemms = ModelGemms(model, batch * seq);
        model.Forward(tokens, sink);
        gemms();
        for (int r = 0; r < repeats; r++)
        {
            gemmRate = Math.Max(gemmRate, GemmRate(batch * seq, 1));
            forward = Math.Min(forward, Time(() => model.Forward(tokens, sink)));
            ownGemms = Math.Min(ownGemms, Time(gemms));
        }
        double flops = ForwardFlops(spec, batch, seq);
        double rate = flops / forward;
        Console.WriteLine($"  forward {batch}x{seq}: {BenchUtil.F(forward, "0.000")} s, {BenchUtil.F(batch * seq / forward, "0")} tokens/s, " +
            $"{BenchUtil.F(rate / 1e9, "0.0")} GFLOP/s ({BenchUtil.F(flops / 1e9, "0.0")} GFLOP incl. causal attention); loss {BenchUtil.F(sink.Mean, "0.000")}");
        Console.WriteLine($"  plain GEMM [{batch * seq} x 768] x [768 x 2048]: {BenchUtil.F(gemmRate / 1e9, "0.0")} GFLOP/s");
        Console.WriteLine($"  the model's GEMMs alone (same shapes): {BenchUtil.F(ownGemms, "0.000")} s = {BenchUtil.F(100 * ownGemms / forward, "0")}% of the forward");
        BenchUtil.Ratio("forward GFLOP/s / GEMM GFLOP/s", rate / gemmRate, ">=", 0.70);
    }

    /// <summary>Decoding with the KV cache, F32 weights.</summary>
    private static void DecodeF32(TransformerModel model, int steps) => ReportDecode("F32", "decode F32 (batch 1, KV cache)", model, MeasureDecode(model, steps));

    /// <summary>A decode's tokens/s (best of two), the step's matrix-vector products alone (best of five) and the read probes right around them.</summary>
    private readonly record struct DecodeRun(double TokensPerSecond, double OwnGemvs, double ReadBefore, double ReadAfter);

    private static DecodeRun MeasureDecode(TransformerModel model, int steps)
    {
        double before = ReadBandwidth();
        double tps = Decode(model, steps);
        var gemvs = ModelGemms(model, 1);
        double ownGemvs = double.MaxValue;
        for (int r = 0; r < 5; r++) ownGemvs = Math.Min(ownGemvs, Time(gemvs));
        tps = Math.Max(tps, Decode(model, steps));
        return new DecodeRun(tps, ownGemvs, before, ReadBandwidth());
    }

    /// <summary>
    /// The decode's tokens/s and weight bandwidth, then its weight bandwidth against the read probes taken right before
    /// and right after it (the machine is shared: its load changes between the parts of this suite): each printed, the
    /// target checked against the higher.
    /// </summary>
    private static void ReportDecode(string weights, string label, TransformerModel model, DecodeRun run)
    {
        double bytes = model.Weights.BytesPerToken, weightBw = bytes * run.TokensPerSecond;
        Console.WriteLine($"  {label}: {BenchUtil.F(run.TokensPerSecond, "0.0")} tokens/s, {BenchUtil.Gb(weightBw)} of weights; " +
            $"the step's matrix-vector products alone: {BenchUtil.F(1000 * run.OwnGemvs, "0.0")} ms = {BenchUtil.F(100 * run.OwnGemvs * run.TokensPerSecond, "0")}% of a step " +
            $"({BenchUtil.Gb(bytes / run.OwnGemvs)})");
        Console.WriteLine($"  memory read bandwidth right before / after the {weights} decode: {BenchUtil.Gb(run.ReadBefore)} / {BenchUtil.Gb(run.ReadAfter)}; " +
            $"decode fraction against each {BenchUtil.F(weightBw / run.ReadBefore)} / {BenchUtil.F(weightBw / run.ReadAfter)}");
        BenchUtil.Ratio($"decode {weights} weight bandwidth / read bandwidth", weightBw / Math.Max(run.ReadBefore, run.ReadAfter), ">=", 0.60);
    }

    private static void Bf16Checkpoint(Architecture arch, JsonObject config, int steps)
    {
        var dir = Path.Combine(Path.GetTempPath(), $"fusesharp-bench-bf16-{Environment.ProcessId}");
        try
        {
            var (cfg, spec) = ModelInitializer.PrepareConfig(arch, config, DType.BF16);
            ModelInitializer.WriteFolder(dir, arch, cfg, spec, seed: 1, DType.BF16, overwrite: true);
            long fileBytes = new FileInfo(Path.Combine(dir, "model.safetensors")).Length;
            long f32Bytes = arch.Parameters(spec).Sum(p => p.ElementCount) * 4;
            GC.Collect();
            var before = Memory();
            using var model = TransformerModel.Load(dir);
            var run = MeasureDecode(model, steps);
            var prompt = new TokenBatch(1, 128, Enumerable.Range(0, 128).Select(i => i * 7 % 32000).ToArray());
            model.Forward(prompt, new LastLogits());
            var after = Memory();
            Console.WriteLine($"  BF16 checkpoint: {BenchUtil.F(fileBytes / 1048576.0, "0")} MiB on disk (F32 would be {BenchUtil.F(f32Bytes / 1048576.0, "0")} MiB)");
            ReportDecode("BF16", "decode BF16", model, run);
            Console.WriteLine($"  memory while running it: heap (anonymous) +{BenchUtil.F((after.Anon - before.Anon) / 1048576.0, "0")} MiB, " +
                $"file-backed resident {BenchUtil.F(after.File / 1048576.0, "0")} MiB, peak resident {BenchUtil.F(after.Peak / 1048576.0, "0")} MiB");
            BenchUtil.Ratio("BF16 heap growth / F32 weight size (weights stay mapped)", (after.Anon - before.Anon) / (double)f32Bytes, "<=", 0.5);
        }
        finally
        {
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
        }
    }

    /// <summary>Tokens per second decoding <paramref name="steps"/> tokens after a 16-token prompt; best per-token time of two runs.</summary>
    private static double Decode(TransformerModel model, int steps)
    {
        double best = double.MaxValue;
        for (int run = 0; run < 2; run++)
        {
            using var cache = model.CreateCache(1, 16 + steps + 1);
            var last = new LastLogits();
            model.Forward(new TokenBatch(1, 16, Enumerable.Range(1, 16).ToArray()), last, cache);
            var sw = Stopwatch.StartNew();
            int next = 1;
            for (int s = 0; s < steps; s++)
            {
                model.Forward(new TokenBatch(1, 1, [next]), last, cache);
                next = System.Numerics.Tensors.TensorPrimitives.IndexOfMax(last.Row(0));
            }
            best = Math.Min(best, sw.Elapsed.TotalSeconds / steps);
        }
        return 1 / best;
    }

    /// <summary>2·(matmul parameters)·tokens plus causal attention (QKᵀ and PV over the visible half).</summary>
    private static double ForwardFlops(TransformerSpec s, int batch, int seq)
    {
        double d = s.HiddenSize, hd = s.NumHeads * s.HeadDim, kvd = s.NumKvHeads * s.HeadDim, i = s.IntermediateSize;
        double perLayer = d * (hd + 2 * kvd) + hd * d + 3 * d * i;
        double matmul = 2 * (s.NumLayers * perLayer + d * s.VocabSize) * batch * seq;
        double attention = s.NumLayers * s.NumHeads * batch * 2.0 * 2 * s.HeadDim * (seq * (seq + 1) / 2.0);
        return matmul + attention;
    }

    /// <summary>Rate of a plain GEMM shaped like the MLP's up projection, best of N.</summary>
    private static double GemmRate(int m, int repeats) => 2.0 * m * 768 * 2048 / BenchUtil.BestOf(repeats, MlpShapedGemm(m));

    /// <summary>A plain GEMM [m x 768] x [768 x 2048]ᵀ (the MLP's up projection) on fixed operands.</summary>
    internal static Action MlpShapedGemm(int m)
    {
        const int k = 768, n = 2048;
        var a = new float[m * k];
        var b = new float[n * k];
        var c = new float[m * n];
        for (int i = 0; i < a.Length; i++) a[i] = (i % 7) * 0.01f;
        for (int i = 0; i < b.Length; i++) b[i] = (i % 5) * 0.01f;
        return () => Gemm.MatMul(false, true, m, n, k, a, k, b, k, c, n);
    }

    /// <summary>The forward's own GEMMs (same shapes, weights and output chunking), to run alone.</summary>
    private static unsafe Action ModelGemms(TransformerModel model, int rows)
    {
        var s = model.Spec;
        int d = s.HiddenSize, w = s.QkvWidth, hd = s.NumHeads * s.HeadDim, inter = s.IntermediateSize;
        var x = new float[(long)rows * Math.Max(Math.Max(d, hd), 2 * inter)];
        for (int i = 0; i < x.Length; i++) x[i] = (i % 13 - 6) * 0.01f; // not zeros: a kernel may skip zero multipliers
        var y = new float[(long)rows * Math.Max(Math.Max(w, 2 * inter), 2048)];
        int chunk = (int)Math.Clamp((64L << 20) / (4L * s.VocabSize), 1, rows);
        var logits = new float[(long)chunk * s.VocabSize];
        return () =>
        {
            fixed (float* px = x, py = y, pl = logits)
            {
                foreach (var l in model.Weights.Layers)
                {
                    l.Qkv.Forward(px, rows, d, py, w, false);
                    l.Output.Forward(px, rows, hd, py, d, true);
                    l.Up!.Forward(px, rows, d, py, 2 * inter, false);
                    l.Down!.Forward(px, rows, 2 * inter, py, d, true);
                }
                for (int r = 0; r < rows; r += chunk) model.Weights.LmHead.Forward(px, Math.Min(chunk, rows - r), d, pl, s.VocabSize, false);
            }
        };
    }

    private static double Time(Action body)
    {
        var sw = Stopwatch.StartNew();
        body();
        return sw.Elapsed.TotalSeconds;
    }

    /// <summary>Bytes per second of a parallel sum over 512 MiB (far beyond the caches), best of 5.</summary>
    private static unsafe double ReadBandwidth()
    {
        const long bytes = 512L << 20;
        using var storage = new NativeStorage(bytes, zero: true);
        float* p = (float*)storage.Pointer;
        long n = bytes / 4;
        int threads = Parallelism.MaxThreads;
        double t = BenchUtil.BestOf(9, () =>
        {
            var sums = new float[threads];
            Parallel.For(0, threads, Parallelism.Options, th =>
            {
                long start = n * th / threads, end = n * (th + 1) / threads;
                // Four independent accumulators: the loop is bound by loads, not by the latency of the adds.
                Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
                for (long i = start; i + 32 <= end; i += 32)
                {
                    a0 += Vector256.Load(p + i);
                    a1 += Vector256.Load(p + i + 8);
                    a2 += Vector256.Load(p + i + 16);
                    a3 += Vector256.Load(p + i + 24);
                }
                sums[th] = Vector256.Sum(a0 + a1 + a2 + a3);
            });
            if (sums.Sum() != 0) throw new InvalidOperationException("unexpected sum");
        });
        return bytes / t;
    }

    internal static (long Anon, long File, long Peak) Memory()
    {
        long Get(string key)
        {
            foreach (var line in File.ReadLines("/proc/self/status"))
                if (line.StartsWith(key + ":", StringComparison.Ordinal))
                    return long.Parse(line[(key.Length + 1)..].Trim().Split(' ')[0], Inv) * 1024;
            return 0;
        }
        return OperatingSystem.IsLinux() ? (Get("RssAnon"), Get("RssFile"), Get("VmHWM")) : (Environment.WorkingSet, 0, Environment.WorkingSet);
    }

    internal static int Arg(string[] args, string name, int fallback)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], Inv) : fallback;
    }
}
