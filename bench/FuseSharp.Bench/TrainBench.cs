using System.Diagnostics;
using System.Text.Json.Nodes;
using FuseSharp.Models;
using FuseSharp.Models.Weights;
using FuseSharp.Tensors;
using FuseSharp.Tensors.Kernels;
using FuseSharp.Training;
using FuseSharp.Training.Data;

namespace FuseSharp.Bench;

/// <summary>
/// Training throughput (issue 6) on a d=768, 12-layer Llama (12 heads, SwiGLU 2048, vocab 32000), batch 4 x 512:
/// one optimizer step (forward, backward, clipping, AdamW) timed best of N, achieved FLOP/s counting
/// <c>6 x params x tokens</c> (params: the matrices, layers and head; the embedding lookup is no matmul and causal
/// attention is left out, so the count is conservative) as a fraction of a plain GEMM's rate measured in alternation
/// in the same run over the same FLOP count (target &gt;= 0.50); the same with gradient checkpointing; memory of parameters, gradients, AdamW
/// moments and activations for both.
/// Options: <c>--batch B --seq T --repeats N --quick</c> (quick: 1 x 128, one repeat).
/// </summary>
internal static class TrainBench
{
    public static void Run(string[] args)
    {
        int batch = ForwardBench.Arg(args, "--batch", 4), seq = ForwardBench.Arg(args, "--seq", 512), repeats = ForwardBench.Arg(args, "--repeats", 1);
        if (args.Contains("--quick")) { batch = 1; seq = 128; repeats = 1; }
        var raw = new JsonObject
        {
            ["hidden_size"] = 768, ["intermediate_size"] = 2048, ["num_hidden_layers"] = 12, ["num_attention_heads"] = 12,
            ["num_key_value_heads"] = 12, ["vocab_size"] = 32000, ["max_position_embeddings"] = 2048, ["rms_norm_eps"] = 1e-5,
            ["tie_word_embeddings"] = false,
        };
        var arch = ArchitectureRegistry.Get("llama");
        var (config, spec) = ModelInitializer.PrepareConfig(arch, raw, DType.F32);
        Console.WriteLine($"train: Llama d=768 L=12 H=12 ffn=2048 V=32000; batch {batch} x {seq}; threads {Parallelism.MaxThreads}");
        long matmulParams = arch.Parameters(spec).Where(p => p.Shape.Length == 2 && p.Role != ParameterRole.Embedding).Sum(p => p.ElementCount);
        var rng = new Random(3);
        var examples = Enumerable.Range(0, batch).Select(_ => TrainingExample.LanguageModeling(Enumerable.Range(0, seq).Select(_ => rng.Next(32000)).ToArray())).ToList();
        var micro = MicroBatch.Collate(examples, 0);
        long tokens = (long)batch * seq;
        double flops = 6.0 * matmulParams * tokens;

        // Checkpointing first: the process peak (VmHWM) only grows, so each mode's peak is then its own.
        foreach (bool checkpointing in new[] { true, false })
        {
            using var source = new TensorWeightSource(ModelInitializer.CreateWeights(arch, spec, 0.02, seed: 1), ownsTensors: true);
            using var model = TrainableTransformer.Create(config, source, new TrainableTransformerOptions { GradientCheckpointing = checkpointing });
            using var adam = new AdamW(model.Parameters, new AdamWOptions(0.9, 0.95, 1e-8, 0.1));
            var objective = new TrainingObjective();
            double loss = 0;
            void Step()
            {
                var losses = objective.Begin([micro]);
                model.Run(micro, losses[0], backward: true);
                loss = objective.Summarize(losses).Total;
                GradientClipping.ClipByGlobalNorm(model.Gradients, 1.0);
                adam.Step(model.Gradients, 1e-4);
                model.Gradients.Clear();
            }
            Step(); // warm-up: buffers and packed weights
            // The baseline does the step's FLOP count as repeated plain GEMMs, so both take about as long and see the
            // same load on a shared machine; the two alternate, best of each kept.
            double gemmRate = 0, step = double.MaxValue;
            int m = (int)Math.Min(tokens, 2048);
            int gemms = (int)Math.Max(1, Math.Round(flops / (2.0 * m * 768 * 2048)));
            for (int r = 0; r < repeats; r++)
            {
                var sw = Stopwatch.StartNew();
                Step();
                step = Math.Min(step, sw.Elapsed.TotalSeconds);
                gemmRate = Math.Max(gemmRate, GemmRate(m, gemms));
            }
            double rate = flops / step;
            long state = model.Parameters.ByteLength * 4; // parameters, gradients, two AdamW moments
            string mode = checkpointing ? "with gradient checkpointing" : "without checkpointing";
            Console.WriteLine($"  step {mode}: {BenchUtil.F(step, "0.000")} s, {BenchUtil.F(tokens / step, "0")} tokens/s, {BenchUtil.F(rate / 1e9, "0.0")} GFLOP/s " +
                $"(6 x {BenchUtil.F(matmulParams / 1e6, "0.0")} M matrix params x {tokens} tokens); loss {BenchUtil.F(loss, "0.000")}");
            Console.WriteLine($"  plain GEMM [{m} x 768] x [768 x 2048], {gemms} in a row: {BenchUtil.F(gemmRate / 1e9, "0.0")} GFLOP/s");
            Console.WriteLine($"  memory {mode}: parameters + gradients + AdamW moments {BenchUtil.F(state / 1048576.0, "0")} MiB, " +
                $"activations and scratch {BenchUtil.F(model.ActivationBytes / 1048576.0, "0")} MiB, process peak resident {BenchUtil.F(ForwardBench.Memory().Peak / 1048576.0, "0")} MiB");
            BenchUtil.Ratio($"training FLOP/s / GEMM FLOP/s ({(checkpointing ? "checkpointing, 8/6 of the work done" : "plain")})", rate / gemmRate, ">=", checkpointing ? 0.375 : 0.50);
        }
    }

    /// <summary>FLOP/s of <paramref name="count"/> plain GEMMs [m x 768] x [768 x 2048] in a row (the engine's GEMM at a Llama MLP shape).</summary>
    private static double GemmRate(int m, int count)
    {
        var gemm = ForwardBench.MlpShapedGemm(m);
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < count; i++) gemm();
        return 2.0 * m * 768 * 2048 * count / sw.Elapsed.TotalSeconds;
    }
}
