using System.CommandLine;
using System.Text.Json.Nodes;
using FuseSharp.Cli;
using FuseSharp.Cli.Commands;
using FuseSharp.Evaluation;
using FuseSharp.Merging;
using FuseSharp.Merging.Config;
using FuseSharp.Merging.Execution;
using FuseSharp.Merging.Methods;
using FuseSharp.Merging.Planning;
using FuseSharp.Models;
using FuseSharp.Tokenization;
using FuseSharp.Tensors;
using Xunit;

namespace FuseSharp.Tests.Merging;

/// <summary>End-to-end behaviour of the executor and the CLI: determinism, sharding, output folder, data weights, exit codes.</summary>
[Collection(ParallelismCollection.Name)]
public class ExecutionTests
{
    private static string CaseConfig(string name) => Path.Combine(TestModels.FixtureDir, name, "merge.yml");

    [Theory]
    [InlineData("ties", "density: 0.5")]
    [InlineData("dare_ties", "density: 0.6")]
    [InlineData("breadcrumbs", "density: 0.8\n      gamma: 0.05")]
    [InlineData("della", "density: 0.5\n      epsilon: 0.1")]
    public void BFloat16Inputs_DecodedInTheKernel_MergeBitIdenticalToTheSameValuesStoredAsF32(string method, string parameters)
    {
        // The merge pass decodes BF16 chunks screened by the sparsifier's pass straight from the mapped file; F32 inputs
        // holding the same values take the read-into-F32 path. Vocab 8200: the embeddings span two chunks and a tail.
        var dir = TestModels.TempDir("bf16-decode-" + method);
        static Dictionary<string, (float[] Values, long[] Shape)> Round(Dictionary<string, (float[] Values, long[] Shape)> t) =>
            t.ToDictionary(kv => kv.Key, kv => (kv.Value.Values.Select(v => BFloat16Conversion.ToSingle(BFloat16Conversion.FromSingle(v))).ToArray(), kv.Value.Shape));
        var baseModel = Round(TestModels.RandomLlama(1, vocab: 8200));
        var models = new[] { baseModel }.Concat(Enumerable.Range(2, 3).Select(k => Round(TestModels.RandomLlama(k, baseModel, 0.05f, vocab: 8200)))).ToList();
        var outputs = new List<Dictionary<string, (float[] Values, long[] Shape)>>();
        foreach (var dtype in new[] { DType.BF16, DType.F32 })
        {
            var names = models.Select((t, k) => TestModels.WriteModel(Path.Combine(dir, $"{dtype}-{k}"), t, dtype)).ToList();
            var yaml = $"merge_method: {method}\nbase_model: {names[0]}\nmodels:\n" +
                string.Concat(names.Skip(1).Select(n => $"  - model: {n}\n    parameters:\n      weight: 0.5\n      {parameters}\n")) + "dtype: float32\n";
            var output = Path.Combine(dir, $"out-{dtype}");
            using (var plan = MergePlanner.Plan(MergeConfigParser.Parse(yaml, Path.Combine(dir, "merge.yml")), new MergeOptions { Seed = 5 }))
                MergeExecutor.Run(plan, output);
            outputs.Add(TestModels.Read(output));
        }
        foreach (var (name, (values, _)) in outputs[1])
            Assert.Equal(values.Select(BitConverter.SingleToInt32Bits), outputs[0][name].Values.Select(BitConverter.SingleToInt32Bits));
    }

    private static byte[] MergeBytes(string caseName, int threads, long shardBytes = MergeOptions.DefaultShardBytes)
    {
        int saved = Parallelism.MaxThreads;
        var output = Path.Combine(TestModels.TempDir(caseName), "out");
        try
        {
            Parallelism.MaxThreads = threads;
            using var plan = MergePlanner.Plan(MergeConfigParser.ParseFile(CaseConfig(caseName)), new MergeOptions { Seed = 77, OutShardBytes = shardBytes });
            MergeExecutor.Run(plan, output);
        }
        finally
        {
            Parallelism.MaxThreads = saved;
        }
        var files = Directory.GetFiles(output, "*.safetensors").Order(StringComparer.Ordinal).ToList();
        return files.SelectMany(File.ReadAllBytes).ToArray();
    }

    [Theory]
    [InlineData("dare_ties")]
    [InlineData("della")]
    [InlineData("ties")]
    public void RandomAndSelectionMethods_GiveIdenticalBytesForAnyThreadCount(string caseName) =>
        Assert.Equal(MergeBytes(caseName, 1), MergeBytes(caseName, 4));

    [Fact]
    public void ShardedOutput_HasAnIndexAndTheSameTensors()
    {
        var output = Path.Combine(TestModels.TempDir("shards"), "out");
        using (var plan = MergePlanner.Plan(MergeConfigParser.ParseFile(CaseConfig("linear")), new MergeOptions { OutShardBytes = 30_000 }))
            MergeExecutor.Run(plan, output);
        Assert.True(File.Exists(Path.Combine(output, "model.safetensors.index.json")));
        Assert.True(Directory.GetFiles(output, "model-*-of-*.safetensors").Length > 1);
        var expected = TestModels.Read(Path.Combine(TestModels.FixtureDir, "linear", "expected", "model.safetensors"));
        var actual = TestModels.Read(output);
        Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), actual.Keys.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void OutputFolder_ConfigCardAndReport()
    {
        var output = Path.Combine(TestModels.TempDir("folder"), "out");
        using (var plan = MergePlanner.Plan(MergeConfigParser.ParseFile(CaseConfig("passthrough")), new MergeOptions()))
            MergeExecutor.Run(plan, output);
        var cfg = JsonNode.Parse(File.ReadAllText(Path.Combine(output, "config.json")))!;
        Assert.Equal(3, cfg["num_hidden_layers"]!.GetValue<int>());
        Assert.Equal("float32", cfg["torch_dtype"]!.GetValue<string>());
        var card = File.ReadAllText(Path.Combine(output, "README.md"));
        Assert.Contains("merge_method: passthrough", card, StringComparison.Ordinal);
        Assert.Contains("- fusesharp", card, StringComparison.Ordinal);
        Assert.Equal(File.ReadAllText(CaseConfig("passthrough")).TrimEnd() + "\n", File.ReadAllText(Path.Combine(output, "fusesharp_config.yml")));
        var report = JsonNode.Parse(File.ReadAllText(Path.Combine(output, "merge_report.json")))!;
        Assert.Equal("passthrough", report["merge_method"]!.GetValue<string>());
        Assert.Equal(30, report["tensors"]!.AsArray().Count);
    }

    [Fact]
    public void Report_HasDeltaNormsKeptFractionsAndConflicts()
    {
        var output = Path.Combine(TestModels.TempDir("report"), "out");
        MergeReport report;
        using (var plan = MergePlanner.Plan(MergeConfigParser.ParseFile(CaseConfig("ties")), new MergeOptions()))
            report = MergeExecutor.Run(plan, output);
        var q = report.Tensors.First(t => t.Task.Name == "model.layers.0.self_attn.q_proj.weight");
        Assert.Equal(3, q.Diagnostics.PerModel["delta_norm"].Length);
        Assert.Equal([0.5, 0.6, 0.4], q.Diagnostics.PerModel["kept_fraction"].Select(x => Math.Round(x, 2))); // int(density · 1024) / 1024
        Assert.InRange(q.Diagnostics.Scalars["sign_conflict_rate"], 0, 1);
        Assert.Contains("mean kept fraction", report.Summary(), StringComparison.Ordinal);
        var k = report.Tensors.First(t => t.Task.Name == "model.layers.1.self_attn.k_proj.weight");
        Assert.All(k.Diagnostics.PerModel["delta_norm"], n => Assert.Equal(0, n));
    }

    [Fact]
    public void LmCocktail_WeightsFromExampleData_AreSoftmaxOfTheEnginesLosses()
    {
        // The fixture's tiny Llamas (vocab 64) with a word-level tokenizer, scored by the engine on two examples.
        var root = TestModels.TempDir("cocktail");
        var folders = new List<string>();
        foreach (var name in new[] { "ft_a", "ft_b" })
        {
            var dir = Directory.CreateDirectory(Path.Combine(root, name)).FullName;
            foreach (var f in new[] { "config.json", "model.safetensors" }) File.Copy(Path.Combine(TestModels.FixtureDir, "models", name, f), Path.Combine(dir, f));
            TestModels.WriteWordLevelTokenizer(dir, ["<unk>", "<s>", "</s>", .. Enumerable.Range(3, 61).Select(i => $"w{i}")]);
            folders.Add(dir);
        }
        var data = Path.Combine(root, "examples.jsonl");
        File.WriteAllText(data, "{\"input\": \"w3 w9 w17\", \"output\": \"w40 w41\"}\n\n{\"input\": \"w5\", \"output\": \"w60 w7 w8\"}\n{\"input\": \"w11 w12\", \"output\": \"w13\"}\n");
        var yaml = $"merge_method: lm_cocktail\nmodels:\n  - model: {folders[0]}\n  - model: {folders[1]}\nexample_data: {data}\nparameters:\n  temperature: 0.05\n  batch_size: 2\n";

        var e = Assert.Throws<MergeConfigException>(() => MergePlanner.Plan(MergeConfigParser.Parse(yaml), new MergeOptions()));
        Assert.Contains("loss scorer", e.Message, StringComparison.Ordinal);

        // Independently: the first model's tokenizer for both, batches of 2, softmax(-L / T).
        var tokenizer = TokenizerLoader.Load(folders[0]);
        LossExample[] examples = [new("w3 w9 w17", "w40 w41"), new("w5", "w60 w7 w8"), new("w11 w12", "w13")];
        var losses = folders.Select(f =>
        {
            using var model = TransformerModel.Load(f);
            return ExampleLoss.Compute(model, tokenizer, examples, batchSize: 2);
        }).ToArray();
        double w0 = 1 / (1 + Math.Exp((losses[0] - losses[1]) / 0.05));
        Assert.True(Math.Abs(w0 - 0.5) > 1e-3, "the two models should score differently");

        var output = Path.Combine(root, "out");
        using (var plan = MergePlanner.Plan(MergeConfigParser.Parse(yaml), new MergeOptions { ExampleLossScorer = new ExampleLossScorer() }))
        {
            Assert.Equal(w0, plan.DataWeights![0], 9);
            Assert.Equal(1 - w0, plan.DataWeights[1], 9);
            MergeExecutor.Run(plan, output);
        }
        var a = TestModels.Read(folders[0]);
        var b = TestModels.Read(folders[1]);
        var merged = TestModels.Read(output);
        foreach (var (name, (values, _)) in merged)
            for (int i = 0; i < values.Length; i++)
                Assert.Equal(w0 * a[name].Values[i] + (1 - w0) * b[name].Values[i], values[i], 1e-6);
    }

    [Fact]
    public void Cli_ExitCodes()
    {
        static int Run(params string[] args)
        {
            var root = new RootCommand();
            root.Options.Add(CliContext.ThreadsOption);
            root.Subcommands.Add(MergeCommand.Create());
            return CliContext.Invoke(root, args);
        }
        var dir = TestModels.TempDir("cli");
        var output = Path.Combine(dir, "out");
        Assert.Equal(0, Run("merge", CaseConfig("task_arithmetic"), output, "--seed", "3"));
        Assert.True(File.Exists(Path.Combine(output, "model.safetensors")));
        Assert.Equal(0, Run("merge", CaseConfig("ties"), "--dry-run"));
        Assert.Equal(CliContext.ErrorExit, Run("merge", CaseConfig("ties"), output)); // exists, not empty
        var bad = Path.Combine(dir, "bad.yml");
        File.WriteAllText(bad, "merge_method: nope\nmodels:\n  - model: x\n");
        Assert.Equal(CliContext.ErrorExit, Run("merge", bad, Path.Combine(dir, "out2")));
        Assert.False(Directory.Exists(Path.Combine(dir, "out2")));
    }
}
