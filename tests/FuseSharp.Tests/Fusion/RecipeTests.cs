using System.Text.Json.Nodes;
using FuseSharp.Fusion;
using FuseSharp.Fusion.Recipes;
using FuseSharp.Models;
using FuseSharp.Tensors;
using FuseSharp.Tokenization.Training;
using FuseSharp.Training;
using Xunit;

namespace FuseSharp.Tests.Fusion;

/// <summary>
/// <c>fuse run</c> end to end at toy scale: tiny llama models with three different trained tokenizers, a FuseLLM
/// recipe run stage by stage and interrupted inside training, a FuseChat recipe ending in an SCE merge, and every
/// output loaded by the forward engine.
/// </summary>
public sealed class RecipeTests : ScratchFolderTest
{
    private static readonly string[] Words = ["the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran", "far", "away", "from", "home"];

    private static string Prose(int i) => string.Join(' ', Enumerable.Range(0, 6 + i % 5).Select(j => Words[(i * 7 + j * 3) % Words.Length])) + ".";

    private static string Sum(int i) => $"{i % 17} + {i % 5 + 3} = {i % 17 + i % 5 + 3}.";

    /// <summary>A tokenizer trained on the corpus, in its own folder.</summary>
    private string Tokenizer(string name, TokenizerKind kind, int vocab, IEnumerable<string> texts)
    {
        var dir = Scratch($"tok-{name}");
        var trained = TokenizerTrainer.Train(texts, new TokenizerTrainingOptions
        {
            Kind = kind,
            VocabSize = vocab,
            SpecialTokens = ["<unk>", "<s>", "</s>"],
            UnkToken = kind == TokenizerKind.ByteLevelBpe ? null : "<unk>",
            BosToken = "<s>",
            EosToken = "</s>",
        });
        trained.Save(dir);
        return dir;
    }

    /// <summary>A randomly initialised tiny llama with the tokenizer's vocabulary, tokenizer files copied in.</summary>
    private string Model(string name, string tokenizer, int seed)
    {
        var dir = Scratch(name);
        var tok = FuseSharp.Fusion.Text.FusionTokenizers.Load(tokenizer);
        var arch = ArchitectureRegistry.Get("llama");
        var raw = new JsonObject
        {
            ["model_type"] = "llama",
            ["hidden_size"] = 16,
            ["intermediate_size"] = 32,
            ["num_hidden_layers"] = 1,
            ["num_attention_heads"] = 2,
            ["num_key_value_heads"] = 1,
            ["max_position_embeddings"] = 64,
            ["vocab_size"] = tok.VocabSize,
            ["tie_word_embeddings"] = false,
            ["initializer_range"] = 0.5,
        };
        var (config, spec) = ModelInitializer.PrepareConfig(arch, raw, DType.F32);
        ModelInitializer.WriteFolder(dir, arch, config, spec, seed, DType.F32);
        foreach (var f in Directory.GetFiles(tokenizer)) File.Copy(f, Path.Combine(dir, Path.GetFileName(f)));
        return dir;
    }

    private (string Target, string S1, string S2) Models(IReadOnlyList<string> texts)
    {
        var tt = Tokenizer("t", TokenizerKind.SentencePieceBpe, 90, texts);
        var t1 = Tokenizer("s1", TokenizerKind.ByteLevelBpe, 300, texts);
        return (Model("target", tt, 1), Model("s1", t1, 2), Model("s2", tt, 3));
    }

    private const string TwoSources = """
        target: target
        sources:
          - {name: s1, model: s1}
          - {name: s2, model: s2}
        """;

    private static string Train(int steps) => $"""
        train:
          steps: {steps}
          batch_size: 2
          lr: 0.05
          weight_decay: 0
          warmup_ratio: 0
          save_steps: 2
        """;

    [Fact]
    public void FuseLlmRecipeRunsStageByStageResumesAfterAKillAndItsModelsLoad()
    {
        var texts = Enumerable.Range(0, 24).Select(i => i % 2 == 0 ? Prose(i) : Sum(i)).ToList();
        var (target, s1, s2) = Models(texts);
        File.WriteAllLines(Scratch("corpus.jsonl"), texts.Select(t => new JsonObject { ["text"] = t + " " + t }.ToJsonString()));
        File.WriteAllLines(Scratch("prose.jsonl"), Enumerable.Range(50, 4).Select(i => new JsonObject { ["text"] = Prose(i) }.ToJsonString()));
        File.WriteAllLines(Scratch("sums.jsonl"), Enumerable.Range(50, 4).Select(i => new JsonObject { ["text"] = Sum(i) }.ToJsonString()));
        var yaml = $"""
            kind: fusellm
            {TwoSources}
            corpus:
              path: corpus.jsonl
            split:
              block_size: 40
              margin: 8
            represent:
              top_k: 4
              max_length: 64
              rows_per_part: 8
            pack:
              block_size: 24
            {Train(6)}
            evaluate:
              block_size: 32
              held_out:
                - name: prose
                  path: prose.jsonl
                - name: sums
                  path: sums.jsonl
            """;
        File.WriteAllText(Scratch("recipe.yml"), yaml);
        var recipe = FusionRecipe.Load(Scratch("recipe.yml"));
        var outDir = Scratch("run");
        var runner = new RecipeRunner(recipe, outDir, TrainableTransformer.Loader());
        Assert.Equal(["split", "represent-target", "represent-s1", "represent-s2", "vocab-map-s1", "align-s1", "align-s2", "pack", "fuse", "train-fused", "train-clm", "evaluate"],
            runner.Stages.Select(s => s.Name));

        // Stage by stage up to the alignment of the first source.
        Assert.Null(runner.Run(until: "align-s1"));
        Assert.True(runner.IsDone("align-s1"));
        Assert.False(runner.IsDone("align-s2"));
        var alignedAt = File.GetLastWriteTimeUtc(Path.Combine(outDir, "aligned", "s1", "manifest.json"));

        // Killed inside the fused training, after its first checkpoint.
        using (var cts = new CancellationTokenSource())
        {
            int runs = 0;
            var killing = new RecipeRunner(recipe, outDir, f => new CallbackModel(TrainableTransformer.Load(f), () => { if (++runs == 4) cts.Cancel(); }));
            Assert.ThrowsAny<OperationCanceledException>(() => killing.Run(cancel: cts.Token));
        }
        Assert.True(runner.IsDone("fuse"));
        Assert.False(runner.IsDone("train-fused"));
        Assert.NotNull(new CheckpointManager(Path.Combine(outDir, "train", "fused")).Latest());

        // The rerun resumes: done stages are not redone, the training continues from its checkpoint.
        var results = new RecipeRunner(recipe, outDir, TrainableTransformer.Loader()).Run();
        Assert.Equal(alignedAt, File.GetLastWriteTimeUtc(Path.Combine(outDir, "aligned", "s1", "manifest.json")));
        Assert.NotNull(results);
        Assert.Equal(["target", "clm", "fused", "s1", "s2"], results!.Models);
        Assert.Equal(["prose", "sums"], results.Sets);
        Assert.All(results.Scores, s => Assert.True(s.BitsPerByte > 0 && double.IsFinite(s.BitsPerByte)));
        Assert.Contains("| fused | FuseLLM |", results.Table(), StringComparison.Ordinal);
        Assert.NotEqual(results.Mean("target"), results.Mean("fused"));

        // The fused training equals an uninterrupted run of the same data and options.
        var log = File.ReadLines(Path.Combine(outDir, "train", "fused", TrainingLog.FileName)).Select(StepRecord.Parse).OfType<StepRecord>().ToList();
        Assert.Equal(Enumerable.Range(1, 6).Select(i => (long)i), log.Select(r => r.Step));
        Assert.All(log, r => Assert.NotNull(r.FusionLoss));

        // Outputs load in the forward engine and score text.
        foreach (var m in new[] { "fused", "clm" })
        {
            using var model = TransformerModel.Load(Path.Combine(outDir, "train", m));
            var loss = new NextTokenLoss();
            model.Forward(TokenBatch.RightPadded([[1, 5, 6, 7]]), loss);
            Assert.True(double.IsFinite(loss.Mean));
        }

        // A finished run reruns as a no-op; another recipe is refused in the same folder.
        Assert.NotNull(new RecipeRunner(recipe, outDir, _ => throw new InvalidOperationException("nothing should train")).Run());
        File.WriteAllText(Scratch("recipe.yml"), yaml.Replace("top_k: 4", "top_k: 5", StringComparison.Ordinal));
        var e = Assert.Throws<FusionException>(() => new RecipeRunner(FusionRecipe.Load(Scratch("recipe.yml")), outDir, TrainableTransformer.Loader()).Run());
        Assert.Contains("different recipe", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void FuseChatRecipeTrainsPairwiseTargetsAndMergesThemWithSce()
    {
        var texts = Enumerable.Range(0, 16).Select(i => i % 2 == 0 ? Prose(i) : Sum(i)).ToList();
        var (target, s1, s2) = Models(texts.Append("User: Assistant:").ToList());
        File.WriteAllLines(Scratch("chat.jsonl"), Enumerable.Range(0, 12).Select(i => new JsonObject
        {
            ["conversations"] = new JsonArray(
                new JsonObject { ["from"] = "human", ["value"] = Prose(i) },
                new JsonObject { ["from"] = "gpt", ["value"] = Sum(i) }),
        }.ToJsonString()));
        File.WriteAllLines(Scratch("sums.jsonl"), Enumerable.Range(50, 3).Select(i => new JsonObject { ["text"] = Sum(i) }.ToJsonString()));
        File.WriteAllText(Scratch("chat.yml"), $"""
            kind: fusechat
            {TwoSources}
            corpus:
              path: chat.jsonl
              template:
                user: "User: "
                assistant: "Assistant: "
            represent:
              top_k: 4
              max_length: 64
            {Train(2)}
            merge:
              method: sce
            evaluate:
              block_size: 32
              held_out:
                - name: sums
                  path: sums.jsonl
            """);
        var runner = new RecipeRunner(FusionRecipe.Load(Scratch("chat.yml")), Scratch("chat-run"), TrainableTransformer.Loader());
        Assert.Equal(["represent-target", "represent-s1", "represent-s2", "vocab-map-s1", "align-s1", "align-s2", "filter-nan-s1", "fuse-s1", "train-s1", "filter-nan-s2", "fuse-s2", "train-s2", "merge", "evaluate"],
            runner.Stages.Select(s => s.Name));
        var results = runner.Run();
        Assert.NotNull(results);
        Assert.Equal(["target", "target-s1", "target-s2", "merged", "s1", "s2"], results!.Models);
        // s2 shares the target's tokenizer: its rows are copied, not aligned.
        var aligned = JsonNode.Parse(File.ReadAllText(Path.Combine(runner.Out, "aligned", "s2", "manifest.json")))!;
        Assert.Contains("copy", aligned.ToJsonString(), StringComparison.OrdinalIgnoreCase);
        // FuseChat's mask: the fusion loss counts response positions only.
        var log = File.ReadLines(Path.Combine(runner.Out, "train", "s1", TrainingLog.FileName)).Select(StepRecord.Parse).OfType<StepRecord>().ToList();
        Assert.Equal(2, log.Count);
        using var merged = TransformerModel.Load(runner.FinalModel);
        Assert.True(File.Exists(Path.Combine(runner.FinalModel, "tokenizer.json")));
        // SCE: the pivot plus a weighted mean of the sign-consistent deltas, so every merged element lies between the
        // pivot and the pairwise targets' deltas; the merge moved the pivot.
        using var t = FuseSharp.IO.SafetensorsModel.Open(target);
        using var m = FuseSharp.IO.SafetensorsModel.Open(runner.FinalModel);
        using var p1 = FuseSharp.IO.SafetensorsModel.Open(Path.Combine(runner.Out, "train", "s1"));
        using var p2 = FuseSharp.IO.SafetensorsModel.Open(Path.Combine(runner.Out, "train", "s2"));
        foreach (var name in new[] { "lm_head.weight", "model.embed_tokens.weight", "model.layers.0.mlp.down_proj.weight" })
        {
            float[] theta = Floats(t, name), fusedMerge = Floats(m, name), d1 = Floats(p1, name), d2 = Floats(p2, name);
            Assert.NotEqual(theta, fusedMerge);
            for (int i = 0; i < theta.Length; i++)
            {
                float a = d1[i] - theta[i], b = d2[i] - theta[i], got = fusedMerge[i] - theta[i];
                Assert.InRange(got, Math.Min(0, Math.Min(a, b)) - 1e-6f, Math.Max(0, Math.Max(a, b)) + 1e-6f);
            }
        }
    }

    [Fact]
    public void FuseLlmRecipeWithSameTokenizerSourcesMergesThemAndScoresTheirEnsemble()
    {
        // FuseLLM's Table-7 setting: sources with the target's tokenizer and architecture, copied instead of aligned,
        // merged by weight averaging (task arithmetic, normalized equal weights) and ensembled by mean probability.
        var texts = Enumerable.Range(0, 12).Select(i => i % 2 == 0 ? Prose(i) : Sum(i)).ToList();
        var tt = Tokenizer("t", TokenizerKind.SentencePieceBpe, 90, texts);
        var (target, s1, s2) = (Model("target", tt, 1), Model("s1", tt, 2), Model("s2", tt, 3));
        File.WriteAllLines(Scratch("corpus.jsonl"), texts.Select(t => new JsonObject { ["text"] = t }.ToJsonString()));
        File.WriteAllLines(Scratch("sums.jsonl"), Enumerable.Range(50, 3).Select(i => new JsonObject { ["text"] = Sum(i) }.ToJsonString()));
        File.WriteAllText(Scratch("same.yml"), $$"""
            kind: fusellm
            {{TwoSources}}
            corpus: {path: corpus.jsonl}
            split: {block_size: 40, margin: 8}
            represent: {top_k: 4, max_length: 64}
            pack: {block_size: 24}
            {{Train(1)}}
              clm_baseline: false
            merge:
              method: task_arithmetic
              parameters: {weight: 1.0, normalize: true}
            evaluate:
              block_size: 32
              ensemble: true
              held_out: [{name: sums, path: sums.jsonl}]
            """);
        var runner = new RecipeRunner(FusionRecipe.Load(Scratch("same.yml")), Scratch("same-run"), TrainableTransformer.Loader());
        Assert.Equal(["split", "represent-target", "represent-s1", "represent-s2", "align-s1", "align-s2", "pack", "fuse", "train-fused", "merge", "evaluate"],
            runner.Stages.Select(s => s.Name));
        var results = runner.Run()!;
        Assert.Equal(["target", "fused", "merged", "s1", "s2", "ensemble"], results.Models);
        // Weight averaging: every merged element is the mean of the sources' elements.
        using var m = FuseSharp.IO.SafetensorsModel.Open(Path.Combine(runner.Out, "merged"));
        using var a = FuseSharp.IO.SafetensorsModel.Open(s1);
        using var b = FuseSharp.IO.SafetensorsModel.Open(s2);
        float[] merged = Floats(m, "model.layers.0.mlp.down_proj.weight"), x = Floats(a, "model.layers.0.mlp.down_proj.weight"), y = Floats(b, "model.layers.0.mlp.down_proj.weight");
        for (int i = 0; i < merged.Length; i++) Assert.Equal((x[i] + y[i]) / 2, merged[i], 5);
        // The mean of probabilities scores better than the mean of the models' log-probabilities (Jensen).
        Assert.True(results.Get("ensemble", "sums") < (results.Get("s1", "sums") + results.Get("s2", "sums")) / 2);
    }

    [Fact]
    public void BadRecipesNameTheProblem()
    {
        File.WriteAllText(Scratch("bad.yml"), "kind: fusellm\ntarget: nowhere\nsources:\n  - name: a\n    model: nowhere\ncorpus:\n  path: c.jsonl\ntrian:\n  steps: 3\n");
        var e = Assert.Throws<FusionException>(() => FusionRecipe.Load(Scratch("bad.yml")));
        Assert.Contains("bad.yml:8: trian is not a recipe option", e.Message, StringComparison.Ordinal);
        File.WriteAllText(Scratch("bad.yml"), "kind: fusellm\ntarget: nowhere\nsources:\n  - name: a\n    model: nowhere\ncorpus:\n  path: c.jsonl\ntrain:\n  lr: fast\n");
        e = Assert.Throws<FusionException>(() => FusionRecipe.Load(Scratch("bad.yml")));
        Assert.Contains("bad.yml:9: train.lr must be a number", e.Message, StringComparison.Ordinal);
        File.WriteAllText(Scratch("bad.yml"), "kind: fusellm\ntarget: nowhere\nsources:\n  - name: a\n    model: nowhere\ncorpus:\n  path: c.jsonl\n");
        e = Assert.Throws<FusionException>(() => FusionRecipe.Load(Scratch("bad.yml")));
        Assert.Contains("model folder", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void CliListsStagesAndFailsCleanly()
    {
        var texts = Enumerable.Range(0, 6).Select(Prose).ToList();
        var (target, s1, _) = Models(texts);
        File.WriteAllLines(Scratch("corpus.jsonl"), texts.Select(t => new JsonObject { ["text"] = t }.ToJsonString()));
        File.WriteAllText(Scratch("r.yml"), "target: target\nsources:\n  - {name: s1, model: s1}\ncorpus: {path: corpus.jsonl}\n");
        var r = Cli.CliRunner.Run("fuse", "run", Scratch("r.yml"), Scratch("out"), "--list");
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("todo  split", r.Stdout, StringComparison.Ordinal);
        Assert.Contains("todo  train-clm", r.Stdout, StringComparison.Ordinal);
        File.WriteAllText(Scratch("bad.yml"), "target: target\nsources:\n  - {name: s1, model: s1}\ncorpus: {path: corpus.jsonl}\ntrain: {stpes: 3}\n");
        Cli.CliRunner.AssertCleanFailure(Cli.CliRunner.Run("fuse", "run", Scratch("bad.yml"), Scratch("out2")), "train.stpes is not a recipe option");
        Cli.CliRunner.AssertCleanFailure(Cli.CliRunner.Run("fuse", "train", "--model", target, "--out", Scratch("t")), "no input");
        Cli.CliRunner.AssertCleanFailure(Cli.CliRunner.Run("fuse", "train", "--model", target, "--data", Scratch("nowhere"), "--out", Scratch("t")), "nowhere");
    }

    [Fact]
    public void SummaryOverRunsIsMeanAndSampleStandardDeviation()
    {
        static RecipeResults Run(double a, double b) => new([new HeldOutScore("fused", "FuseLLM", "x", a, 10, 10), new HeldOutScore("fused", "FuseLLM", "y", b, 10, 10)]);
        var table = RecipeResults.SummaryTable([Run(1, 3), Run(2, 4), Run(3, 8)]);
        // x: 1, 2, 3 -> 2 ± 1; y: 3, 4, 8 -> 5 ± sqrt(7); means over sets 2, 3, 5.5 -> 3.5 ± sqrt(3.25).
        Assert.Contains($"| fused | FuseLLM | 2.0000 ± 1.0000 | 5.0000 ± {Math.Sqrt(7):0.0000} | 3.5000 ± {Math.Sqrt(3.25):0.0000} |", table, StringComparison.Ordinal);
    }

    private static float[] Floats(FuseSharp.IO.SafetensorsModel model, string name)
    {
        var values = new float[model.GetEntry(name).ElementCount];
        model.ReadSingle(name, values);
        return values;
    }
}
