using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using FuseSharp.IO;
using FuseSharp.Merging;
using FuseSharp.Merging.Config;
using FuseSharp.Merging.Execution;
using FuseSharp.Merging.Kernels;
using FuseSharp.Merging.Planning;
using FuseSharp.Tensors;

namespace FuseSharp.Bench;

/// <summary>
/// The merge engine against the machine's I/O: synthetic Llama-shaped BF16 models (a base and three fine-tunes,
/// ~0.47B parameters each by default) are generated once, then each method's wall time is divided by the time to
/// read all its inputs once (converted to F32) plus write its output once, measured in the same run on the same
/// files. Peak anonymous memory (RssAnon: mapped input pages excluded) is sampled during each merge and compared
/// with (models + 2) × largest tensor in F32 + 300 MB.
/// Options: --layers N (24) --hidden H (1024) --intermediate I (4096) --vocab V (32000) --repeats R (2)
/// --methods a,b,... --dir DIR (default /tmp/fusesharp-bench-merge) --threads N. <c>--decide [--rounds R]</c> instead times
/// the mask kernels alone on one thread (DELLA's per-row decisions, DARE's mask with its kept Σ|Δ|), CPU ns per element.
/// </summary>
internal static class MergeBench
{
    private static readonly (string Method, double Target, bool TwoModels, string Parameters)[] Cases =
    [
        ("linear", 1.5, false, "weight: 0.25"),
        ("task_arithmetic", 1.5, false, "weight: 0.3"),
        ("slerp", 1.5, true, ""),
        ("ties", 2.5, false, "weight: 0.5\n      density: 0.5"),
        ("dare_ties", 2.5, false, "weight: 0.5\n      density: 0.5"),
        ("breadcrumbs", 2.5, false, "weight: 0.5\n      density: 0.9\n      gamma: 0.01"),
        ("della", 2.5, false, "weight: 0.5\n      density: 0.5\n      epsilon: 0.1"),
        ("sce", 2.5, false, ""),
        ("widen", 2.5, false, ""),
    ];

    public static void Run(string[] args)
    {
        int layers = Arg(args, "--layers", 24), hidden = Arg(args, "--hidden", 1024), inter = Arg(args, "--intermediate", 4096), vocab = Arg(args, "--vocab", 32000);
        int repeats = Arg(args, "--repeats", 3);
        int threads = Arg(args, "--threads", 0);
        if (threads > 0) Parallelism.MaxThreads = threads;
        if (args.Contains("--decide"))
        {
            DecideBench(Arg(args, "--rounds", 15));
            return;
        }
        var dir = ArgS(args, "--dir") ?? Path.Combine(Path.GetTempPath(), "fusesharp-bench-merge");
        var methods = ArgS(args, "--methods")?.Split(',').ToHashSet() ?? Cases.Select(c => c.Method).ToHashSet();
        Console.WriteLine($"merge: synthetic Llama, {layers} layers, hidden {hidden}, intermediate {inter}, vocab {vocab}, BF16; {Parallelism.MaxThreads} threads; {dir}");

        var names = new[] { "base", "ft1", "ft2", "ft3" };
        var sw = Stopwatch.StartNew();
        foreach (var (n, k) in names.Select((n, k) => (n, k))) Generate(Path.Combine(dir, n), k, layers, hidden, inter, vocab);
        long modelBytes;
        long largest;
        using (var m = SafetensorsModel.Open(Path.Combine(dir, "base")))
        {
            modelBytes = m.TotalBytes;
            largest = m.Tensors.Max(t => t.ElementCount) * 4;
            Console.WriteLine($"  models ready in {BenchUtil.F(sw.Elapsed.TotalSeconds, "0.0")} s: {m.ParameterCount / 1e9:0.000}B parameters, {modelBytes / 1e9:0.00} GB each, largest tensor {largest / 1e6:0.0} MB in F32");
        }

        // The machine is shared and its load swings, so each method is measured interleaved with its baseline
        // (baseline, merge, baseline, merge, ...) and the best of each is compared; process CPU time (user + system)
        // is reported as a second, load-independent view of the same ratio.
        foreach (var (method, target, two, parameters) in Cases.Where(c => methods.Contains(c.Method)))
        {
            int count = two ? 2 : 4;
            var paths = names.Take(count).Select(n => Path.Combine(dir, n)).ToList();
            var yaml = Config(method, dir, names.Take(count).ToList(), parameters);
            var config = MergeConfigParser.Parse(yaml, Path.Combine(dir, $"{method}.yml"));
            long peak = 0, predicted = 0;
            double bestMerge = double.MaxValue, bestBase = double.MaxValue, cpuMerge = double.MaxValue, cpuBase = double.MaxValue;
            for (int r = 0; r < repeats; r++)
            {
                var (wb, cb) = Timed(() => ReadAndWrite(paths, Path.Combine(dir, "baseline-out")));
                bestBase = Math.Min(bestBase, wb);
                cpuBase = Math.Min(cpuBase, cb);
                var output = Path.Combine(dir, $"out-{method}");
                if (Directory.Exists(output)) Directory.Delete(output, true);
                GC.Collect();
                using var sampler = new RssAnonSampler();
                var (wm, cm) = Timed(() =>
                {
                    using var plan = MergePlanner.Plan(config, new MergeOptions { Overwrite = true });
                    predicted = plan.PredictedPeakBytes(Parallelism.MaxThreads);
                    MergeExecutor.Run(plan, output);
                });
                bestMerge = Math.Min(bestMerge, wm);
                cpuMerge = Math.Min(cpuMerge, cm);
                peak = Math.Max(peak, sampler.Stop());
                Directory.Delete(output, true);
            }
            long bound = (count + 2) * largest + (300L << 20);
            // The in-process peak includes whatever the runtime kept from earlier cases; a fresh `fusesharp merge`
            // process gives the peak a user sees (when the CLI is built).
            long cliPeak = CliPeak(Path.Combine(dir, $"{method}.yml"), yaml, Path.Combine(dir, $"out-{method}-cli"));
            if (cliPeak > 0) peak = cliPeak;
            Console.WriteLine($"  {method} ({count} models): merge {BenchUtil.F(bestMerge)} s wall / {BenchUtil.F(cpuMerge)} s CPU; read {count * modelBytes / 1e9:0.00} GB + write {modelBytes / 1e9:0.00} GB: {BenchUtil.F(bestBase)} s wall / {BenchUtil.F(cpuBase)} s CPU; peak RssAnon {peak / 1e6:0} MB{(cliPeak > 0 ? " (fusesharp merge process)" : " (in-process)")} (bound {bound / 1e6:0} MB, predicted {predicted / 1e6:0} MB)");
            BenchUtil.Ratio($"{method} wall / (read inputs + write output)", bestMerge / bestBase, "<=", target);
            Console.WriteLine($"  cpu-time ratio {method}: {BenchUtil.F(cpuMerge / cpuBase)}");
            BenchUtil.Ratio($"{method} peak RssAnon / bound", (double)peak / bound, "<=", 1.0);
        }
    }

    /// <summary>Runs the built CLI on the config and samples its RssAnon; 0 when the CLI has not been built.</summary>
    private static long CliPeak(string configPath, string yaml, string output)
    {
        var cli = Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "..", "..", "FuseSharp.Cli", "release", "FuseSharp.Cli.dll"));
        if (!File.Exists(cli)) return 0;
        File.WriteAllText(configPath, yaml);
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in new[] { cli, "merge", configPath, output, "--overwrite" }) psi.ArgumentList.Add(a);
        if (Parallelism.MaxThreads != Environment.ProcessorCount)
        {
            psi.ArgumentList.Add("--threads");
            psi.ArgumentList.Add(Parallelism.MaxThreads.ToString(CultureInfo.InvariantCulture));
        }
        using var p = Process.Start(psi)!;
        _ = p.StandardOutput.ReadToEndAsync();
        _ = p.StandardError.ReadToEndAsync();
        long peak = 0;
        var status = $"/proc/{p.Id}/status";
        while (!p.HasExited)
        {
            try
            {
                foreach (var line in File.ReadLines(status))
                    if (line.StartsWith("RssAnon:", StringComparison.Ordinal))
                        peak = Math.Max(peak, long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024);
            }
            catch (IOException)
            {
                break;
            }
            Thread.Sleep(5);
        }
        p.WaitForExit();
        if (Directory.Exists(output)) Directory.Delete(output, true);
        return p.ExitCode == 0 ? peak : 0;
    }

    private static (double Wall, double Cpu) Timed(Action body)
    {
        var proc = Process.GetCurrentProcess();
        var cpu0 = proc.TotalProcessorTime;
        var sw = Stopwatch.StartNew();
        body();
        double wall = sw.Elapsed.TotalSeconds;
        proc.Refresh();
        return (wall, (proc.TotalProcessorTime - cpu0).TotalSeconds);
    }

    private static string Config(string method, string dir, List<string> models, string parameters)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new System.Text.StringBuilder();
        sb.AppendLine(inv, $"merge_method: {method}");
        sb.AppendLine(inv, $"base_model: {Path.Combine(dir, models[0])}");
        sb.AppendLine("models:");
        foreach (var m in models.Skip(1))
        {
            sb.AppendLine(inv, $"  - model: {Path.Combine(dir, m)}");
            if (parameters.Length > 0) sb.AppendLine(inv, $"    parameters:\n      {parameters}");
        }
        if (method == "linear") sb.AppendLine(inv, $"  - model: {Path.Combine(dir, models[0])}\n    parameters:\n      weight: 0.25");
        if (method == "slerp") sb.AppendLine("parameters:\n  t: 0.4");
        if (method == "sce") sb.AppendLine("parameters:\n  select_topk: 0.1");
        sb.AppendLine("dtype: bfloat16");
        return sb.ToString();
    }

    /// <summary>The reference cost: every input tensor read once into F32, and an output of one model's size written once.</summary>
    private static void ReadAndWrite(List<string> paths, string output)
    {
        var models = paths.Select(SafetensorsModel.Open).ToList();
        try
        {
            double sink = 0;
            foreach (var m in models)
                foreach (var t in m.Tensors)
                {
                    var tensor = m.GetTensor(t.Name);
                    var s = Chunked.Reduce(t.ElementCount, 1, default, (start, length, sc, acc) =>
                    {
                        var buf = sc.Get(0, length);
                        var bytes = tensor.Storage.Bytes(tensor.ByteOffset + start * 2, length * 2);
                        DTypeConversion.ToSingle(DType.BF16, bytes, buf);
                        acc[0] += buf[0];
                    });
                    sink += s[0];
                }
            if (Directory.Exists(output)) Directory.Delete(output, true);
            Directory.CreateDirectory(output);
            var specs = models[0].Tensors.Select(t => new TensorSpec(t.Name, DType.BF16, t.Shape)).ToList();
            using (var w = ShardedSafetensorsWriter.Create(output, specs, MergeOptions.DefaultShardBytes))
            {
                foreach (var t in models[0].Tensors)
                    Chunked.For(t.ElementCount, default, (_, start, length, sc) =>
                    {
                        var buf = sc.Get(0, length);
                        buf.Fill((float)sink);
                        w.WriteSingle(t.Name, buf, start);
                    });
                w.Commit();
            }
            Directory.Delete(output, true);
        }
        finally
        {
            foreach (var m in models) m.Dispose();
        }
    }

    /// <summary>Writes a synthetic Llama (BF16): model k = the base plus a small model-specific delta (k = 0 is the base).</summary>
    private static void Generate(string folder, int k, int layers, int hidden, int inter, int vocab)
    {
        var stamp = Path.Combine(folder, $".bench-{layers}-{hidden}-{inter}-{vocab}");
        if (File.Exists(stamp)) return;
        if (Directory.Exists(folder)) Directory.Delete(folder, true);
        Directory.CreateDirectory(folder);
        var specs = new List<TensorSpec> { new("model.embed_tokens.weight", DType.BF16, new Shape(vocab, hidden)) };
        for (int l = 0; l < layers; l++)
        {
            string p = $"model.layers.{l}.";
            specs.Add(new(p + "input_layernorm.weight", DType.BF16, new Shape(hidden)));
            foreach (var q in new[] { "q_proj", "k_proj", "v_proj", "o_proj" }) specs.Add(new(p + $"self_attn.{q}.weight", DType.BF16, new Shape(hidden, hidden)));
            specs.Add(new(p + "post_attention_layernorm.weight", DType.BF16, new Shape(hidden)));
            specs.Add(new(p + "mlp.gate_proj.weight", DType.BF16, new Shape(inter, hidden)));
            specs.Add(new(p + "mlp.up_proj.weight", DType.BF16, new Shape(inter, hidden)));
            specs.Add(new(p + "mlp.down_proj.weight", DType.BF16, new Shape(hidden, inter)));
        }
        specs.Add(new("model.norm.weight", DType.BF16, new Shape(hidden)));
        specs.Add(new("lm_head.weight", DType.BF16, new Shape(vocab, hidden)));
        using (var w = ShardedSafetensorsWriter.Create(folder, specs, MergeOptions.DefaultShardBytes))
        {
            foreach (var s in specs)
            {
                bool norm = s.Shape.Rank == 1;
                var baseRng = new CounterRandom(1, s.Name, 0);
                var ftRng = new CounterRandom(2, s.Name, k);
                Chunked.For(s.Shape.ElementCount, default, (_, start, length, sc) =>
                {
                    var buf = sc.Get(0, length);
                    for (int j = 0; j < length; j++)
                    {
                        long e = start + j;
                        float b = norm ? 1f + 0.1f * (baseRng.NextSingle(e) - 0.5f) : 0.04f * (baseRng.NextSingle(e) - 0.5f);
                        buf[j] = k == 0 ? b : b + 0.004f * (ftRng.NextSingle(e) - 0.5f);
                    }
                    w.WriteSingle(s.Name, buf, start);
                });
            }
            w.Commit();
        }
        var cfg = new JsonObject
        {
            ["architectures"] = new JsonArray("LlamaForCausalLM"),
            ["model_type"] = "llama",
            ["hidden_size"] = hidden,
            ["intermediate_size"] = inter,
            ["num_hidden_layers"] = layers,
            ["num_attention_heads"] = hidden / 64,
            ["num_key_value_heads"] = hidden / 64,
            ["vocab_size"] = vocab,
            ["tie_word_embeddings"] = false,
            ["torch_dtype"] = "bfloat16",
        };
        File.WriteAllText(Path.Combine(folder, "config.json"), cfg.ToJsonString());
        File.WriteAllText(stamp, "");
    }

    /// <summary>
    /// DELLA's per-row keep decisions alone (<see cref="DellaRow.Decide"/>, one thread) on rows like the bench's: |Δ| of
    /// BF16 fine-tunes (base ±0.02, fine-tune offsets ±0.002, both rounded to BF16, so |Δ| repeats a few values), density
    /// 0.5, ε 0.1, at the bench's row lengths; CPU nanoseconds per element, best of <paramref name="rounds"/>.
    /// </summary>
    private static void DecideBench(int rounds)
    {
        Console.WriteLine("merge --decide: DellaRow.Decide on BF16-like |Δ| rows, density 0.5, ε 0.1, 1 thread, best of " + rounds.ToString(CultureInfo.InvariantCulture));
        foreach (int cols in new[] { 1024, 2816, 4096 })
        {
            int rows = Math.Max(1, (1 << 18) / cols);
            var values = new float[rows * cols];
            var b0 = new CounterRandom(1, "decide", 0);
            var f0 = new CounterRandom(2, "decide", 1);
            for (int e = 0; e < values.Length; e++)
            {
                float b = BFloat16Conversion.ToSingle(BFloat16Conversion.FromSingle(0.04f * (b0.NextSingle(e) - 0.5f)));
                float f = BFloat16Conversion.ToSingle(BFloat16Conversion.FromSingle(b + 0.004f * (f0.NextSingle(e) - 0.5f)));
                values[e] = MathF.Abs(f - b);
            }
            var rng = new UniformStream(new CounterRandom(3, "decide", 1));
            var prob = DellaRow.Probability.Of(0.4, 0.2 / (cols - 1));
            var keep = new ulong[(values.Length + 63) / 64];
            double best = double.MaxValue;
            long kept = 0;
            long Round()
            {
                long k = 0;
                for (int row = 0; row < rows; row++)
                    k += DellaRow.Decide(values.AsSpan(row * cols, cols), (long)row * cols, rng, prob, keep.AsSpan(row * cols / 64, (cols + 63) / 64), out _, out _);
                return k;
            }
            WarmUp(() => Round());
            for (int r = 0; r < rounds; r++)
            {
                var t0 = Process.GetCurrentProcess().TotalProcessorTime;
                kept = Round();
                best = Math.Min(best, (Process.GetCurrentProcess().TotalProcessorTime - t0).TotalSeconds);
            }
            Console.WriteLine($"  row {cols}: {BenchUtil.F(best * 1e9 / values.Length, "0.00")} ns/element (kept {kept / (double)values.Length:0.0000})");
        }
        // DARE's mask with the kept Σ|Δ| (its L1 rescale): separate passes (per-element draws compared, then the masked
        // sum) against the one-pass kernel, alternated.
        {
            int n = Chunked.Size, chunks = 16;
            var d = new float[n * chunks];
            var b0 = new CounterRandom(4, "dare", 0);
            for (int e = 0; e < d.Length; e++) d[e] = 0.004f * (b0.NextSingle(e) - 0.5f);
            var rng = new UniformStream(new CounterRandom(3, "dare", 1));
            uint t = Sparsify.KeepThreshold(0.5);
            var words = new ulong[n / 64];
            double bestSeparate = double.MaxValue, bestFused = double.MaxValue, s1 = 0, s2 = 0;
            double Separate()
            {
                double sum = 0;
                for (int c = 0; c < chunks; c++)
                {
                    Array.Clear(words);
                    for (int j = 0; j < n; j++) if (rng.At((long)c * n + j) < t) words[j >> 6] |= 1UL << (j & 63);
                    sum += TaskVectorKernels.MaskedSumOfMagnitudes(d.AsSpan(c * n, n), words);
                }
                return sum;
            }
            double Fused()
            {
                double sum = 0;
                for (int c = 0; c < chunks; c++) sum += Sparsify.FillBernoulli(rng, (long)c * n, t, d.AsSpan(c * n, n), words);
                return sum;
            }
            WarmUp(() =>
            {
                Separate();
                Fused();
            });
            for (int r = 0; r < rounds; r++)
            {
                var t0 = Process.GetCurrentProcess().TotalProcessorTime;
                s1 += Separate();
                var t1 = Process.GetCurrentProcess().TotalProcessorTime;
                s2 += Fused();
                var t2 = Process.GetCurrentProcess().TotalProcessorTime;
                bestSeparate = Math.Min(bestSeparate, (t1 - t0).TotalSeconds);
                bestFused = Math.Min(bestFused, (t2 - t1).TotalSeconds);
            }
            Console.WriteLine($"  DARE mask + kept sum: separate passes {BenchUtil.F(bestSeparate * 1e9 / d.Length, "0.00")} ns/element, one pass {BenchUtil.F(bestFused * 1e9 / d.Length, "0.00")} ({(s1 == s2 ? "same sums" : "SUMS DIFFER")})");
        }
    }

    /// <summary>
    /// Untimed rounds, with pauses for the runtime's background tier-1 compiles: without them the first timed rounds run
    /// Tier-0 or on-stack-replacement code (a kernel's loop spilled to the stack), which under load can be all of them.
    /// </summary>
    private static void WarmUp(Action round)
    {
        for (int w = 0; w < 3; w++)
        {
            for (int k = 0; k < 12; k++) round();
            Thread.Sleep(200);
        }
    }

    private static int Arg(string[] args, string name, int fallback)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
    }

    private static string? ArgS(string[] args, string name)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }

    /// <summary>Samples this process's RssAnon (from /proc/self/status) every 5 ms on a background thread; <see cref="Stop"/> returns the peak in bytes.</summary>
    private sealed class RssAnonSampler : IDisposable
    {
        private readonly Thread _thread;
        private volatile bool _stop;
        private long _peak;

        public RssAnonSampler()
        {
            _peak = Read();
            _thread = new Thread(() =>
            {
                while (!_stop)
                {
                    _peak = Math.Max(_peak, Read());
                    Thread.Sleep(5);
                }
            }) { IsBackground = true };
            _thread.Start();
        }

        public long Stop()
        {
            _stop = true;
            _thread.Join();
            return Math.Max(_peak, Read());
        }

        public void Dispose() => _stop = true;

        private static long Read()
        {
            foreach (var line in File.ReadLines("/proc/self/status"))
                if (line.StartsWith("RssAnon:", StringComparison.Ordinal))
                    return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
            return 0;
        }
    }
}
