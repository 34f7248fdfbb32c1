using System.Diagnostics;
using System.Text.Json.Nodes;
using FuseSharp.Models;
using FuseSharp.Tensors;
using FuseSharp.Training;
using FuseSharp.Training.Data;
using Xunit;

namespace FuseSharp.Tests.Training;

/// <summary>
/// End to end on real text: a freshly initialised tiny Llama (the engine's init-model weights) trained by the
/// <see cref="Trainer"/> through <see cref="TrainableTransformer"/> on 12,000 characters of tinyshakespeare must reach a
/// held-out loss well below the unigram cross-entropy of the held-out characters: it has learned context, not only
/// letter frequencies. A sanity test (about two seconds), not a timed one.
/// </summary>
public class ShakespeareSanityTests
{
    [Fact]
    public void TinyLlama_OnTinyShakespeare_GetsWellBelowTheUnigramLoss()
    {
        var text = File.ReadAllText(TestPaths.Fixture("training", "tinyshakespeare-head.txt"));
        var tokenizer = new TestTokenizer(addBos: false);
        int[] train = tokenizer.Encode(text[..12000]).Ids.ToArray(), held = tokenizer.Encode(text[12000..]).Ids.ToArray();
        const int block = 64;

        // The unigram cross-entropy of the held-out tokens under the training counts (add-one smoothing): what a model
        // that learned only letter frequencies would score.
        var counts = new double[tokenizer.VocabSize];
        foreach (var id in train) counts[id]++;
        double unigram = held.Average(id => -Math.Log((counts[id] + 1) / (train.Length + tokenizer.VocabSize)));

        using var dir = new TempDir();
        var modelDir = Path.Combine(dir.Path, "tiny-llama");
        var architecture = ArchitectureRegistry.Get("llama");
        var (config, spec) = ModelInitializer.PrepareConfig(architecture, new JsonObject
        {
            ["vocab_size"] = tokenizer.VocabSize,
            ["hidden_size"] = 64,
            ["intermediate_size"] = 128,
            ["num_hidden_layers"] = 1,
            ["num_attention_heads"] = 4,
            ["num_key_value_heads"] = 2,
            ["max_position_embeddings"] = block,
            ["rms_norm_eps"] = 1e-5,
            ["tie_word_embeddings"] = false,
        }, DType.F32);
        ModelInitializer.WriteFolder(modelDir, architecture, config, spec, seed: 1, DType.F32);

        var options = new TrainingOptions
        {
            MaxSteps = 60,
            BatchSize = 8,
            LearningRate = 1e-2,
            Schedule = ScheduleKind.Cosine,
            WarmupSteps = 5,
            SaveSteps = 0,
        };
        var clock = Stopwatch.StartNew();
        var result = new Trainer(options, new PackedDataset(train, block, "shakespeare train"), Path.Combine(dir.Path, "out"), evalData: new PackedDataset(held, block, "held out"))
            .Run(modelDir, TrainableTransformer.Loader());
        double heldOut = result.EvalLoss!.Value.Total;
        Assert.True(heldOut < unigram - 0.4, $"held-out loss {heldOut:F3} vs unigram {unigram:F3} ({clock.Elapsed.TotalSeconds:F1} s)");

        // The saved folder is an engine model that scores the held-out text as the trainer did.
        using var trained = TrainableTransformer.Load(Path.Combine(dir.Path, "out"));
        Assert.Equal(heldOut, Trainer.Evaluate(trained, new PackedDataset(held, block, "held out"), new TrainingObjective(), 8, 0).Total, 5);
    }
}
