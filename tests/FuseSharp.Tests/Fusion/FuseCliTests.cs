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
}
