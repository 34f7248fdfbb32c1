using FuseSharp.Models;
using FuseSharp.Tests.Tensors.Kernels;
using Xunit;

namespace FuseSharp.Tests.Models;

public class SequenceScorerTests
{
    [Fact]
    public void Batched_EqualsOneSequenceAtATime()
    {
        using var model = TransformerModel.Load(ModelFixtures.Folder("mistral-tiny"));
        var rng = new Random(3);
        var inputs = Enumerable.Range(0, 7).Select(i => new ScoringInput(Enumerable.Range(0, 3 + rng.Next(20)).Select(_ => rng.Next(144)).ToArray())).ToList();
        inputs.Add(new ScoringInput([4, 5, 6, 7, 8], [-100, -100, -100, 7, 8])); // FuseChat-style instruction masking
        var results = SequenceScorer.Score(model, inputs, topK: 4, new ScoringOptions { MaxTokensPerBatch = 40 }).ToList();
        Assert.Equal(inputs.Count, results.Select(r => r.Index).Distinct().Count());
        foreach (var r in results)
        {
            var input = inputs[r.Index];
            var top = new TopKLogits(4);
            var loss = new NextTokenLoss(input.Labels?.ToArray());
            model.Forward(TokenBatch.Single(input.Ids), new CompositeSink(top, loss));
            Assert.Equal(top.Ids, r.TopKIds);
            KernelAssert.Close(top.Values, r.TopKLogits, 2e-5, 2e-5);
            KernelAssert.Close(loss.CrossEntropy, r.CrossEntropy, 2e-5, 2e-5);
            Assert.Equal(loss.SequenceMean(0), r.MetricCe, 4);
            Assert.True(float.IsNaN(r.CrossEntropy[^1]));
        }
        var masked = results.Single(r => r.Index == inputs.Count - 1);
        Assert.Equal(2, masked.Targets); // positions 2 and 3 predict the labelled tokens 7 and 8
    }

    [Fact]
    public void NoTargets_GiveNaNMetric()
    {
        using var model = TransformerModel.Load(ModelFixtures.Folder("llama-tiny"));
        var r = SequenceScorer.Score(model, [new ScoringInput([1, 2, 3], [-100, -100, -100])], topK: 2).Single();
        Assert.Equal(0, r.Targets);
        Assert.True(double.IsNaN(r.MetricCe));
        Assert.Throws<ModelInputException>(() => SequenceScorer.Score(model, [new ScoringInput([])], 2).ToList());
    }
}
