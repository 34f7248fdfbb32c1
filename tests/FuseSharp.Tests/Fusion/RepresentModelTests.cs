using System.Text.Json.Nodes;
using FuseSharp.Fusion;
using FuseSharp.Fusion.Stages;
using FuseSharp.Fusion.Store;
using FuseSharp.Fusion.Text;
using FuseSharp.Models;
using FuseSharp.Tensors;
using FuseSharp.Tests.Cli;
using FuseSharp.Tests.Tensors.Kernels;
using FuseSharp.Tokenization;
using Xunit;

namespace FuseSharp.Tests.Fusion;

/// <summary><c>fuse represent</c> with the real engine and a real SentencePiece tokenizer (a tiny random Llama).</summary>
public sealed class RepresentModelTests : ScratchFolderTest
{
    private static readonly string[] Texts =
    [
        "The quick brown fox jumps over the lazy dog.",
        "I saw a girl with a telescope.",
        "Knowledge fusion of large language models.",
        "A",
        "Sentencepiece is an unsupervised text tokenizer and detokenizer mainly for neural network based text generation systems.",
    ];

    /// <summary>A random tiny llama with Mistral-7B-Instruct-v0.2's tokenizer (SentencePiece BPE, BOS, vocab 32000) in its folder.</summary>
    private string Model(string name, long seed)
    {
        var arch = ArchitectureRegistry.Get("llama");
        var config = new JsonObject
        {
            ["hidden_size"] = 16, ["intermediate_size"] = 32, ["num_hidden_layers"] = 2, ["num_attention_heads"] = 2,
            ["num_key_value_heads"] = 1, ["vocab_size"] = 32000, ["max_position_embeddings"] = 24, ["rms_norm_eps"] = 1e-5,
            ["bos_token_id"] = 1, ["eos_token_id"] = 2, ["initializer_range"] = 0.5,
        };
        var (mc, spec) = ModelInitializer.PrepareConfig(arch, config, DType.F32);
        var folder = Scratch(name);
        ModelInitializer.WriteFolder(folder, arch, mc, spec, seed, DType.F32);
        foreach (var f in new[] { "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json" })
            File.Copy(TestPaths.Fixture("tokenizers", "mistral-7b-instruct-v0.2", f), Path.Combine(folder, f));
        return folder;
    }

    private string Corpus(IEnumerable<JsonObject> rows)
    {
        var p = Scratch($"corpus-{Guid.NewGuid():N}.jsonl");
        File.WriteAllLines(p, rows.Select(r => r.ToJsonString()));
        return p;
    }

    [Fact]
    public void TextRowsMatchOneForwardPerRow()
    {
        var folder = Model("m", seed: 1);
        var corpus = Corpus(Texts.Select(t => new JsonObject { ["text"] = t }));
        var outDir = Scratch("rep");
        // A small token budget and parts of 2 rows: several batches per part, several parts.
        var report = RepresentStage.RunModel(folder, corpus, outDir, new RepresentOptions { K = 4, RowsPerPart = 2, Scoring = new ScoringOptions { MaxTokensPerBatch = 40 } });

        var tok = TokenizerLoader.Load(folder);
        using var model = TransformerModel.Load(folder);
        var store = StoreReader.Open(outDir);
        Assert.Equal(ModelTopKScorer.FingerprintFolder(folder), store.Manifest.Info["model"]!["fingerprint"]!.GetValue<string>());
        var rows = store.ReadRows().ToList();
        Assert.Equal(Texts.Length, rows.Count);
        Assert.Equal(rows.Sum(r => (long)r.Positions), report.ToJson()["values"]!["tokens"]!.GetValue<long>());
        Assert.Equal(1, report.Group("rows").Single(g => g.Label == "truncated to max length").Count);
        for (int i = 0; i < Texts.Length; i++)
        {
            int[] full = [.. tok.Encode(Texts[i], addSpecialTokens: false).Ids, 2]; // text + EOS, no BOS
            var ids = full.Length > 24 ? full[..24] : full;                        // truncated to the model's context
            Assert.Equal(ids, rows[i].InputIds);
            var top = new TopKLogits(4);
            var loss = new NextTokenLoss();
            model.Forward(TokenBatch.Single(ids), new CompositeSink(top, loss));
            Assert.Equal(top.Ids, rows[i].TopK!.Ids);
            // Batched and single-row forwards differ in the last float bits; the store holds float16 (2^-11 relative).
            KernelAssert.Close(top.Values, rows[i].TopK!.Values, 1e-3, 1e-3);
            for (int t = 0; t < ids.Length; t++)
            {
                if (t + 1 < ids.Length) Assert.Equal(loss.CrossEntropy[t], rows[i].TokenCe![t], 1e-3 * Math.Max(1, loss.CrossEntropy[t]));
                else Assert.True(float.IsNaN(rows[i].TokenCe![t]));
            }
            Assert.Equal(loss.SequenceMean(0), rows[i].Metrics[0], 1e-5);
        }
    }

    [Fact]
    public void ChatRowsScoreOnlyResponses()
    {
        var folder = Model("m", seed: 2);
        var conv = new JsonObject
        {
            ["conversations"] = new JsonArray(
                new JsonObject { ["from"] = "human", ["value"] = "Hello there." },
                new JsonObject { ["from"] = "gpt", ["value"] = "General Kenobi." }),
        };
        var outDir = Scratch("rep");
        RepresentStage.RunModel(folder, Corpus([conv]), outDir, new RepresentOptions { Format = CorpusFormat.Chat, K = 3 });
        var row = StoreReader.Open(outDir).ReadRows().Single();
        var (ids, labels) = new ChatFormat().Tokenize([new ChatTurn(false, "Hello there."), new ChatTurn(true, "General Kenobi.")], TokenizerLoader.Load(folder));
        Assert.Equal(ids, row.InputIds);
        Assert.Equal(labels, row.Labels);
        Assert.Equal(1, ids[0]); // BOS
        Assert.Equal(2, ids.Count(id => id == 2)); // "</s>" closes each turn as the EOS token
        using var model = TransformerModel.Load(folder);
        var loss = new NextTokenLoss(labels);
        model.Forward(TokenBatch.Single(ids), loss);
        Assert.Equal(loss.SequenceMean(0), row.Metrics[0], 1e-5);
        Assert.Equal(labels.Skip(1).Count(l => l != -100), row.TokenCe!.Count(c => !float.IsNaN(c)));

        // A bare SentencePiece .model reads "</s>" as text: refused rather than silently spelled out.
        var bare = TokenizerLoader.Load(TestPaths.Fixture("tokenizers", "sentencepiece-test", "test_model.model"));
        var e = Assert.Throws<FusionException>(() => new ChatFormat().Tokenize([new ChatTurn(false, "a"), new ChatTurn(true, "b")], bare));
        Assert.Contains("separator", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void CliAndLibraryShardsCombineAndAnotherModelIsRefused()
    {
        var folder = Model("m", seed: 3);
        var corpus = Corpus(Texts.Select(t => new JsonObject { ["text"] = t }));
        var outDir = Scratch("rep");
        var r = CliRunner.Run("fuse", "represent", "--model", folder, "--corpus", corpus, "--out", outDir, "--top-k", "5", "--rows-per-part", "2", "--shard", "1/2");
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.True(File.Exists(Path.Combine(outDir, "represent-report.json")));
        // The other shard through the library (as a recipe runner calls it) lands in the same store.
        var options = new RepresentOptions { K = 5, RowsPerPart = 2, Shard = ShardSpec.Parse("0/2") };
        RepresentStage.RunModel(folder, corpus, outDir, options);
        var again = RepresentStage.RunModel(folder, corpus, outDir, options); // nothing left to do: resumes past every part
        Assert.Equal(1, again.ToJson()["values"]!["parts_already_done"]!.GetValue<int>());
        var store = StoreReader.Open(outDir);
        Assert.Equal(Texts.Length, store.ReadRows().Count());
        Assert.Equal(5, store.Manifest.K);

        // The same folder with other weights is another configuration: refused, nothing written over.
        var other = Model("other", seed: 4);
        var before = Directory.GetFiles(outDir).Select(File.ReadAllBytes).Sum(b => (long)b.Length);
        var e = Assert.Throws<FusionException>(() => RepresentStage.RunModel(other, corpus, outDir, new RepresentOptions { K = 5, RowsPerPart = 2, Shard = new ShardSpec(0, 2) }));
        Assert.Contains("info.model", e.Message, StringComparison.Ordinal);
        Assert.Equal(before, Directory.GetFiles(outDir).Select(File.ReadAllBytes).Sum(b => (long)b.Length));
    }
}
