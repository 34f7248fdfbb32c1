using System.Text.Json;
using System.Text.Json.Nodes;
using FuseSharp.Merging;
using FuseSharp.Merging.Config;
using FuseSharp.Merging.Execution;
using FuseSharp.Merging.Planning;
using Xunit;

namespace FuseSharp.Tests.Merging;

/// <summary>
/// Every case of the golden merge fixtures (independent reference implementation, see Fixtures/merge/README.md):
/// the config is parsed, planned and merged into a folder exactly as the CLI does; "expected" cases are compared
/// element-wise, "property" cases (DARE, DELLA) are checked by reconstructing the random masks from the output.
/// </summary>
public class FixtureTests
{
    public static TheoryData<string> Cases()
    {
        var data = new TheoryData<string>();
        foreach (var dir in Directory.GetDirectories(TestModels.FixtureDir).Order(StringComparer.Ordinal))
            if (File.Exists(Path.Combine(dir, "case.json"))) data.Add(Path.GetFileName(dir));
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void FixtureCase(string name) => Check(name, 1234);

    /// <summary>The random-mask cases with other seeds: the properties must hold for any draw, not one lucky stream.</summary>
    [Theory]
    [InlineData("dare_linear", 7)]
    [InlineData("dare_ties", 7)]
    [InlineData("della", 7)]
    [InlineData("della_linear", 7)]
    [InlineData("dare_ties", 20240601)]
    [InlineData("della", 20240601)]
    public void PropertyCase_OtherSeeds(string name, long seed) => Check(name, seed);

    private static void Check(string name, long seed)
    {
        var dir = Path.Combine(TestModels.FixtureDir, name);
        var spec = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "case.json")))!.AsObject();
        var output = Path.Combine(TestModels.TempDir(name), "out");
        var config = MergeConfigParser.ParseFile(Path.Combine(dir, "merge.yml"));
        using (var plan = MergePlanner.Plan(config, new MergeOptions { Seed = seed }))
            MergeExecutor.Run(plan, output);
        double tolAbs = spec["tolerance_abs"]!.GetValue<double>(), tolRel = spec["tolerance_rel"]!.GetValue<double>();
        var actual = TestModels.Read(output);
        if (spec["num_tensors"] is { } nt) Assert.Equal(nt.GetValue<int>(), actual.Count);
        if (spec["expected_config"] is JsonObject expectedConfig)
        {
            var cfg = JsonNode.Parse(File.ReadAllText(Path.Combine(output, "config.json")))!.AsObject();
            foreach (var (k, v) in expectedConfig) Assert.Equal(v!.ToJsonString(), cfg[k]?.ToJsonString());
        }
        if (spec["output_num_hidden_layers"] is { } layers)
            Assert.Equal(layers.GetValue<int>(), JsonNode.Parse(File.ReadAllText(Path.Combine(output, "config.json")))!["num_hidden_layers"]!.GetValue<int>());

        if (spec["check"]!.GetValue<string>() == "expected")
        {
            var expected = TestModels.Read(Path.Combine(dir, "expected", "model.safetensors"));
            Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), actual.Keys.Order(StringComparer.Ordinal));
            foreach (var (tensor, (exp, shape)) in expected)
            {
                var (got, gotShape) = actual[tensor];
                Assert.Equal(shape, gotShape);
                for (int i = 0; i < exp.Length; i++)
                {
                    double err = Math.Abs(got[i] - exp[i]);
                    Assert.True(err <= tolAbs + tolRel * Math.Abs(exp[i]), $"{name}: {tensor}[{i}] = {got[i]}, expected {exp[i]} (error {err:E3})");
                }
            }
        }
        else
        {
            MaskPropertyChecker.Check(dir, spec, config, actual);
        }
        Assert.True(File.Exists(Path.Combine(output, "merge_report.json")));
        Assert.True(File.Exists(Path.Combine(output, "README.md")));
        Assert.True(File.Exists(Path.Combine(output, "fusesharp_config.yml")));
        using var report = JsonDocument.Parse(File.ReadAllText(Path.Combine(output, "merge_report.json")));
        Assert.Equal(actual.Count, report.RootElement.GetProperty("tensors").GetArrayLength());
        Directory.Delete(Path.GetDirectoryName(output)!, recursive: true);
    }
}
