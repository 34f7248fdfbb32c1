using System.Diagnostics;
using System.Runtime.InteropServices;
using FuseSharp.IO;
using FuseSharp.Tensors;

namespace FuseSharp.Bench;

/// <summary>
/// Safetensors I/O against the machine's own limits, measured in the same run:
/// (1) opening a sharded model touches only headers: open+list time for a 2 GB and a 20 MB model with the same
///     tensor names, ratio ~ 1;
/// (2) reading every tensor BF16 -> F32 from cached files vs a plain array copy (bytes read + written per second),
///     target >= 0.5;
/// (3) writing a 2 GB sharded model vs a plain sequential write of the same bytes, target >= 0.7.
/// Options: --gb N (model size, default 2), --dir PATH (scratch folder, default the system temp folder).
/// </summary>
internal static class IoBench
{
    public static void Run(string[] args)
    {
        double gb = 2;
        string root = Path.GetTempPath();
        for (int i = 0; i < args.Length - 1; i++)
        {
            if (args[i] == "--gb") gb = double.Parse(args[i + 1], System.Globalization.CultureInfo.InvariantCulture);
            if (args[i] == "--dir") root = args[i + 1];
        }
        var dir = Path.Combine(root, "fusesharp-iobench-" + Environment.ProcessId);
        Directory.CreateDirectory(dir);
        try
        {
            Measure(dir, gb);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static double Time(Action a)
    {
        var sw = Stopwatch.StartNew();
        a();
        return sw.Elapsed.TotalSeconds;
    }

    /// <summary>Flushes dirty pages so the next write measurement starts from a clean page cache.</summary>
    private static void Sync()
    {
        try
        {
            using var p = Process.Start(new ProcessStartInfo("sync") { UseShellExecute = false });
            p?.WaitForExit();
        }
        catch (System.ComponentModel.Win32Exception)
        {
        }
    }

    /// <summary>Llama-shaped BF16 tensors (d=2048, ffn 5632, vocab 32000) with as many layers as fit <paramref name="bytes"/>.</summary>
    private static List<TensorSpec> LlamaSpecs(double bytes, int d = 2048, int ffn = 5632, int vocab = 32000)
    {
        var specs = new List<TensorSpec> { new("model.embed_tokens.weight", DType.BF16, new Shape(vocab, d)), new("lm_head.weight", DType.BF16, new Shape(vocab, d)), new("model.norm.weight", DType.BF16, new Shape(d)) };
        long layerBytes = 2L * (4L * d * d + 3L * d * ffn + 2L * d);
        int layers = Math.Max(1, (int)((bytes - specs.Sum(s => s.ByteLength)) / layerBytes));
        for (int l = 0; l < layers; l++)
        {
            foreach (var p in new[] { "q_proj", "k_proj", "v_proj", "o_proj" }) specs.Add(new($"model.layers.{l}.self_attn.{p}.weight", DType.BF16, new Shape(d, d)));
            specs.Add(new($"model.layers.{l}.mlp.gate_proj.weight", DType.BF16, new Shape(ffn, d)));
            specs.Add(new($"model.layers.{l}.mlp.up_proj.weight", DType.BF16, new Shape(ffn, d)));
            specs.Add(new($"model.layers.{l}.mlp.down_proj.weight", DType.BF16, new Shape(d, ffn)));
            specs.Add(new($"model.layers.{l}.input_layernorm.weight", DType.BF16, new Shape(d)));
            specs.Add(new($"model.layers.{l}.post_attention_layernorm.weight", DType.BF16, new Shape(d)));
        }
        return specs;
    }

    private static void Measure(string dir, double gb)
    {
        Console.WriteLine($"io: threads {Parallelism.MaxThreads}, scratch {dir}");
        var specs = LlamaSpecs(gb * 1e9);
        long total = specs.Sum(s => s.ByteLength);
        Console.WriteLine($"  model: {specs.Count} BF16 tensors, {total / 1e9:0.00} GB, shards of 1 GB");

        // Source bytes: a 64 MB pattern the writer streams from (what a merge hands over tensor by tensor).
        var pattern = new byte[64 << 20];
        new Random(1).NextBytes(pattern);

        // ---- (3) write: sharded writer vs plain sequential FileStream of the same bytes ----
        // Each run starts from the same state: previous output deleted and dirty pages flushed (sync), so neither
        // side is throttled by the other's writeback. Runs alternate; best of 2 each.
        var big = Path.Combine(dir, "big");
        var plain = Path.Combine(dir, "plain.bin");
        void WriteModel()
        {
            using var w = ShardedSafetensorsWriter.Create(big, specs, 1L << 30);
            foreach (var s in specs)
            {
                for (long off = 0; off < s.ByteLength; off += pattern.Length)
                    w.Write(s.Name, pattern.AsSpan(0, (int)Math.Min(pattern.Length, s.ByteLength - off)), off);
            }
            w.Commit();
        }
        // The baseline is the faster of two plain sequential writes: a FileStream, and a preallocated handle.
        void WritePlain()
        {
            using var fs = new FileStream(plain, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
            for (long off = 0; off < total; off += pattern.Length)
                fs.Write(pattern, 0, (int)Math.Min(pattern.Length, total - off));
        }
        void WritePlainPreallocated()
        {
            using var h = File.OpenHandle(plain, FileMode.Create, FileAccess.Write, FileShare.None, FileOptions.None, preallocationSize: total);
            for (long off = 0; off < total; off += pattern.Length)
                RandomAccess.Write(h, pattern.AsSpan(0, (int)Math.Min(pattern.Length, total - off)), off);
        }
        double tWrite = double.MaxValue, tPlain = double.MaxValue;
        for (int rep = 0; rep < 2; rep++)
        {
            if (File.Exists(plain)) File.Delete(plain);
            if (Directory.Exists(big)) Directory.Delete(big, true);
            Directory.CreateDirectory(big);
            Sync();
            tPlain = Math.Min(tPlain, Time(WritePlain));
            File.Delete(plain);
            Sync();
            tPlain = Math.Min(tPlain, Time(WritePlainPreallocated));
            File.Delete(plain);
            Directory.Delete(big, true);
            Directory.CreateDirectory(big);
            Sync();
            tWrite = Math.Min(tWrite, Time(WriteModel));
        }
        Console.WriteLine($"  write: safetensors {BenchUtil.Gb(total / tWrite)}, plain sequential write {BenchUtil.Gb(total / tPlain)}");
        BenchUtil.Ratio("write throughput / plain write", tPlain / tWrite, ">=", 0.7);

        // ---- (1) header-only open: time independent of model size ----
        var small = Path.Combine(dir, "small");
        Directory.CreateDirectory(small);
        var smallSpecs = specs.Select(s => new TensorSpec(s.Name, s.DType, new Shape(s.Shape.Rank == 1 ? [16] : [16, 16]))).ToList();
        using (var w = ShardedSafetensorsWriter.Create(small, smallSpecs, smallSpecs.Sum(s => s.ByteLength) / 3 + 1))
        {
            foreach (var s in smallSpecs) w.Write(s.Name, pattern.AsSpan(0, (int)s.ByteLength));
            w.Commit();
        }
        double Open(string path) => BenchUtil.BestOf(20, () =>
        {
            using var m = SafetensorsModel.Open(path);
            if (m.Tensors.Count != specs.Count) throw new InvalidOperationException("tensor count");
        });
        double tSmall = Open(small), tBig = Open(big);
        Console.WriteLine($"  open+list {specs.Count} tensors: {(long)smallSpecs.Sum(s => s.ByteLength) / 1024} KiB model {tSmall * 1e3:0.00} ms, {total / 1e9:0.0} GB model {tBig * 1e3:0.00} ms");
        BenchUtil.Ratio("open time big / small (size-independent)", tBig / tSmall, "<=", 1.5);

        // ---- (2) read every tensor BF16 -> F32 on cached files vs a plain array copy ----
        using var model = SafetensorsModel.Open(big);
        foreach (var f in model.Files) File.ReadAllBytes(f.FilePath).AsSpan(0, 1).Clear(); // warm the page cache
        long maxElems = specs.Max(s => s.Shape.ElementCount);
        var dst = GC.AllocateUninitializedArray<float>(checked((int)maxElems), pinned: true);
        const int Chunk = 1 << 20;
        double tRead = BenchUtil.BestOf(3, () =>
        {
            foreach (var s in specs)
            {
                var t = model.GetTensor(s.Name);
                long n = t.ElementCount;
                int chunks = (int)((n + Chunk - 1) / Chunk);
                Parallel.For(0, chunks, Parallelism.Options, c =>
                {
                    long start = (long)c * Chunk;
                    int len = (int)Math.Min(Chunk, n - start);
                    unsafe
                    {
                        var src = new ReadOnlySpan<ushort>((ushort*)t.Pointer + start, len);
                        BFloat16Conversion.ToSingle(src, dst.AsSpan((int)start, len));
                    }
                });
            }
        });
        long elems = specs.Sum(s => s.Shape.ElementCount);
        double readBw = elems * 6.0 / tRead; // 2 bytes read + 4 written per element

        var a = GC.AllocateUninitializedArray<byte>(1 << 30, pinned: true);
        var b = GC.AllocateUninitializedArray<byte>(1 << 30, pinned: true);
        a.AsSpan().Fill(1);
        b.AsSpan().Fill(2);
        double tCopy = BenchUtil.BestOf(3, () =>
        {
            int chunks = a.Length / (4 << 20);
            Parallel.For(0, chunks, Parallelism.Options, c => a.AsSpan(c * (4 << 20), 4 << 20).CopyTo(b.AsSpan(c * (4 << 20), 4 << 20)));
        });
        double copyBw = 2.0 * a.Length / tCopy; // read + write
        Console.WriteLine($"  read BF16->F32: {BenchUtil.Gb(readBw)} moved ({elems * 2 / tRead / 1e9:0.00} GB/s of BF16 input); plain array copy {BenchUtil.Gb(copyBw)} moved");
        BenchUtil.Ratio("BF16->F32 read / memory bandwidth", readBw / copyBw, ">=", 0.5);
        GC.KeepAlive(dst);
    }
}
