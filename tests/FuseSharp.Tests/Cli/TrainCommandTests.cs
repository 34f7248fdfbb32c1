using FuseSharp.Models;
using FuseSharp.Tests.Models;
using Xunit;

namespace FuseSharp.Tests.Cli;

/// <summary><c>fusesharp train</c> end to end: options reach the trainer, OUT ends as an engine-loadable model folder; bad input fails cleanly.</summary>
public class TrainCommandTests
{
    [Fact]
    public void Train_OnTokenData_WritesCheckpointsLogAndALoadableModel()
    {
        using var dir = new TempDir();
        var data = Path.Combine(dir.Path, "data.jsonl");
        var rng = new Random(4);
        File.WriteAllLines(data, Enumerable.Range(0, 12).Select(_ => "{\"input_ids\": [" + string.Join(",", Enumerable.Range(0, 20).Select(_ => rng.Next(3, 160))) + "]}"));
        var output = Path.Combine(dir.Path, "out");
        var r = CliRunner.Run("train", "--model", ModelFixtures.Folder("llama-tiny"), "--data", data, "--out", output, "--steps", "4", "--batch-size", "3",
            "--lr", "1e-3", "--schedule", "cosine", "--warmup-steps", "1", "--adam-betas", "0.9,0.95", "--save-steps", "2", "--gradient-checkpointing");
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("steps          4", r.Stdout, StringComparison.Ordinal);
        Assert.True(Directory.Exists(Path.Combine(output, "checkpoint-2")) && Directory.Exists(Path.Combine(output, "checkpoint-4")));
        Assert.Equal(4, File.ReadAllLines(Path.Combine(output, "log.jsonl")).Length);
        using var model = TransformerModel.Load(output);
        Assert.Equal("llama", model.Spec.ModelType);
    }

    [Fact]
    public void Train_AMixtureOfExperts_FailsCleanly()
    {
        using var dir = new TempDir();
        var data = Path.Combine(dir.Path, "data.jsonl");
        File.WriteAllText(data, "{\"input_ids\": [1, 2, 3, 4]}\n");
        var r = CliRunner.Run("train", "--model", ModelFixtures.Folder("mixtral-tiny"), "--data", data, "--out", Path.Combine(dir.Path, "out"));
        CliRunner.AssertCleanFailure(r, "not supported");
    }
}
