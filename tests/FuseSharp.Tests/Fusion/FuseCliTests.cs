using System.Text.Json.Nodes;
using FuseSharp.Fusion.Store;
using FuseSharp.Tests.Cli;
using Xunit;

namespace FuseSharp.Tests.Fusion;

/// <summary>The <c>fusesharp fuse</c> commands, run as a user runs them.</summary>
public sealed class FuseCliTests : ScratchFolderTest
{

    [Fact]
    public void DtwBatchModeReproducesEveryFixtureAlignment()
    {
        var cases = Scratch("cases.jsonl");
        var expected = new List<JsonObject>();
        using (var w = new StreamWriter(cases))
        {
            foreach (var d in FusionFixtures.Lines("dtw_alignments.jsonl"))
            {
                foreach (var (v, name) in new[] { ("fusellm_v1", "fusellm"), ("fusechat_v1", "fusechat-v1"), ("fusechat_v2", "fusechat-v2"), ("fusechat_v2_decoded", "fusechat-v2") })
                {
                    var e = d["variants"]![v]!;
                    bool decoded = v.EndsWith("decoded", StringComparison.Ordinal);
                    w.WriteLine(new JsonObject
                    {
                        ["base_tokens"] = (decoded ? e["base_strings"] : d["base_pieces"])!.DeepClone(),
                        ["blending_tokens"] = (decoded ? e["blending_strings"] : d["blending_pieces"])!.DeepClone(),
                        ["variant"] = name,
                        ["base_marker"] = "▁",
                        ["blending_marker"] = "Ġ",
                    }.ToJsonString());
                    expected.Add(new JsonObject { ["base_to_blending"] = e["base_to_blending"]!.DeepClone(), ["total_cost"] = e["total_cost"]!.DeepClone() });
                }
            }
        }
        var output = Scratch("out.jsonl");
        var r = CliRunner.Run("fuse", "dtw", "--input", cases, "--output", output);
        Assert.True(r.ExitCode == 0, r.Stderr);
        var got = File.ReadAllLines(output).Select(l => JsonNode.Parse(l)!.AsObject()).ToList();
        Assert.Equal(expected.Count, got.Count);
        for (int i = 0; i < got.Count; i++)
        {
            Assert.Equal(expected[i]["base_to_blending"]!.ToJsonString(), got[i]["base_to_blending"]!.ToJsonString());
            Assert.Equal(expected[i]["total_cost"]!.GetValue<double>(), got[i]["total_cost"]!.GetValue<double>());
        }
    }

    [Fact]
    public void DtwBadCasesFailCleanly()
    {
        var bad = Scratch("bad.jsonl");
        File.WriteAllText(bad, "{\"base_tokens\": [\"▁a\"], \"blending_tokens\": [\"a\"], \"variant\": \"fusellm\"}\n{\"base_tokens\": [\"▁a\"], \"blending_tokens\": \"a\"}\n");
        CliRunner.AssertCleanFailure(CliRunner.Run("fuse", "dtw", "--input", bad, "--output", Scratch("o.jsonl")), "bad.jsonl:2");
        File.WriteAllText(bad, "{\"base_tokens\": [\"▁a\"], \"blending_tokens\": [\"a\"], \"variant\": \"fusellm-v9\"}\n");
        CliRunner.AssertCleanFailure(CliRunner.Run("fuse", "dtw", "--input", bad), "unknown variant");
        Assert.False(File.Exists(Scratch("o.jsonl")));
    }

    [Fact]
    public void PackTargetsAndInspectOnStores()
    {
        var (target, neox, qwen, _) = StageTests.BuildStores(Dir);
        string an = Scratch("an"), aq = Scratch("aq"), packed = Scratch("packed"), fused = Scratch("fused");
        StageTests.AlignSources(target, neox, qwen, an, aq);
        var r = CliRunner.Run("fuse", "pack", "--target", target, "--aligned", an, "--aligned", aq, "--block-size", "128", "--out", packed);
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Equal(8, StoreReader.Open(packed).Rows);
        Assert.True(File.Exists(Path.Combine(packed, "pack-report.html")));
        r = CliRunner.Run("fuse", "targets", "--dataset", packed, "--rule", "minCE", "--out", fused);
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("MinCE choice per row", r.Stderr, StringComparison.Ordinal);
        r = CliRunner.Run("fuse", "inspect", fused, "--json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        var info = JsonNode.Parse(r.Stdout)!;
        Assert.Equal("fused", info["kind"]!.GetValue<string>());
        Assert.Equal(info["parts_total"]!.GetValue<int>(), info["parts_done"]!.GetValue<int>());
        // Mixing inputs, or a source aligned against another target, is refused with a clear message.
        CliRunner.AssertCleanFailure(CliRunner.Run("fuse", "targets", "--dataset", packed, "--target", target, "--out", Scratch("x")), "either --dataset or --target");
        CliRunner.AssertCleanFailure(CliRunner.Run("fuse", "pack", "--target", neox, "--aligned", an, "--out", Scratch("y")), "different target");
        CliRunner.AssertCleanFailure(CliRunner.Run("fuse", "inspect", Scratch("nothing")), "not a FuseSharp store");
    }

    [Fact]
    public void VocabMapWithRealTokenizers()
    {
        string llama = RealTokenizerTests.FolderOf("llama2"), neox = RealTokenizerTests.FolderOf("neox");
        var map = Scratch("em.json");
        var r = CliRunner.Run("fuse", "vocab-map", "--base", llama, "--blending", neox, "--type", "em", "--out", map);
        Assert.True(r.ExitCode == 0, r.Stderr);
        var m = JsonNode.Parse(File.ReadAllText(map))!.AsObject();
        Assert.Equal(20362, m.Count);
        Assert.Equal("▁the", m["▁the"]!.GetValue<string>());
        Assert.True(File.Exists(Scratch("em.report.html")));

        // MS from a small corpus, written as FuseChat v2's id list.
        var corpus = Scratch("corpus.jsonl");
        File.WriteAllLines(corpus, FusionFixtures.Lines("tokenizations.jsonl").Take(3).Select(l => new JsonObject { ["text"] = l["text"]!.DeepClone() }.ToJsonString()));
        var ids = Scratch("ms.json");
        r = CliRunner.Run("fuse", "vocab-map", "--base", llama, "--blending", neox, "--type", "ms", "--corpus", corpus, "--format", "ids", "--out", ids);
        Assert.True(r.ExitCode == 0, r.Stderr);
        var list = JsonNode.Parse(File.ReadAllText(ids))!.AsArray();
        Assert.Equal(50277, list.Count);
        Assert.Equal(2, list[0]!.GetValue<int>()); // <|endoftext|> (BOS and EOS) -> </s>

        CliRunner.AssertCleanFailure(CliRunner.Run("fuse", "vocab-map", "--base", llama, "--blending", neox, "--type", "ms", "--out", Scratch("x.json")), "--corpus");
        CliRunner.AssertCleanFailure(CliRunner.Run("fuse", "vocab-map", "--base", llama, "--blending", neox, "--type", "nearest", "--out", Scratch("x.json")), "--type");
        CliRunner.AssertCleanFailure(CliRunner.Run("fuse", "vocab-map", "--base", Scratch("missing"), "--blending", neox, "--type", "em", "--out", Scratch("x.json")), "missing");
    }

    [Fact]
    public void SplitWithRealTokenizers()
    {
        var corpus = Scratch("long.jsonl");
        string text = string.Join(" ", FusionFixtures.Lines("tokenizations.jsonl").Select(l => l["text"]!.GetValue<string>()));
        File.WriteAllLines(corpus, [new JsonObject { ["text"] = text }.ToJsonString(), "{\"text\": \"short\"}"]);
        var output = Scratch("split.jsonl");
        var r = CliRunner.Run("fuse", "split", "--tokenizer", RealTokenizerTests.FolderOf("llama2"), "--tokenizer", RealTokenizerTests.FolderOf("neox"),
            "--input", corpus, "--out", output, "--block-size", "512");
        Assert.True(r.ExitCode == 0, r.Stderr);
        var lines = File.ReadAllLines(output);
        Assert.True(lines.Length > 3);
        Assert.Equal("short", JsonNode.Parse(lines[^1])!["text"]!.GetValue<string>());
    }
}
