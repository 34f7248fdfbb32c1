using FuseSharp.Evaluation;
using FuseSharp.Models;
using FuseSharp.Tests.Models;
using Xunit;

namespace FuseSharp.Tests.Evaluation;

public class PerplexityTests
{
    [Fact]
    public void OneWindow_EqualsTheCausalLmLossOfTheWholeSequence()
    {
        using var model = TransformerModel.Load(ModelFixtures.Folder("stories260K"));
        var (_, t, ids) = ModelFixtures.InputIds("stories260K");
        var doc = ids.Take(t).ToArray();
        var loss = new NextTokenLoss();
        model.Forward(TokenBatch.Single(doc), loss);
        var r = Perplexity.Evaluate(model, [doc], blockSize: 64);
        Assert.Equal(t - 1, r.ScoredTokens);
        Assert.Equal(Math.Exp(loss.Mean), r.Perplexity, 6);
    }

    [Fact]
    public void SlidingWindows_ScoreEachTokenOnceWithTheRightContext()
    {
        using var model = TransformerModel.Load(ModelFixtures.Folder("llama-tiny"));
        var doc = Enumerable.Range(0, 30).Select(i => (i * 37 + 5) % 160).ToArray();
        const int block = 12, stride = 5;
        var r = Perplexity.Evaluate(model, [doc, doc.Take(9).ToArray()], block, stride, batchSize: 3, bytes: 100);

        // Brute force: token j is scored by the first window (begin = k·stride) whose end passes it, with context from begin.
        double expected = 0;
        int scored = 0;
        foreach (var d in new[] { doc, doc.Take(9).ToArray() })
        {
            int prevEnd = 0;
            for (int begin = 0; begin < d.Length; begin += stride)
            {
                int end = Math.Min(begin + block, d.Length);
                for (int j = Math.Max(prevEnd, begin + 1); j < end; j++)
                {
                    var last = new LastLogits();
                    model.Forward(TokenBatch.Single(d[begin..j]), last);
                    expected += FuseSharp.Tensors.Kernels.Softmax.CrossEntropy(last.Row(0), d[j], out _);
                    scored++;
                }
                prevEnd = end;
                if (end == d.Length) break;
            }
        }
        Assert.Equal(scored, r.ScoredTokens);
        Assert.Equal(29 + 8, scored);
        Assert.Equal(expected, r.NegativeLogLikelihood, 3);
        Assert.Equal(expected / Math.Log(2) / 100, r.BitsPerByte, 5);
    }

    [Fact]
    public void TextOverload_CountsBytesAndAddsBos()
    {
        using var model = TransformerModel.Load(ModelFixtures.Folder("stories260K"));
        var r = Perplexity.Evaluate(model, new ByteTokenizer(), ["héllo world", "ab"], blockSize: 16, stride: 8);
        Assert.Equal(12 + 2, r.Bytes);          // é is two bytes
        Assert.Equal(13 + 3, r.Tokens);         // BOS + one id per byte
        Assert.Equal(12 + 2, r.ScoredTokens);   // every byte predicted (BOS gives context)
        Assert.True(r.BitsPerByte > 0 && double.IsFinite(r.Perplexity));
    }

    [Fact]
    public void Ensemble_OfIdenticalModels_EqualsTheSingleModel()
    {
        using var model = TransformerModel.Load(ModelFixtures.Folder("llama-tiny"));
        var doc = Enumerable.Range(0, 20).Select(i => (i * 37 + 5) % 160).ToArray();
        var single = Perplexity.Evaluate(model, [doc], blockSize: 8, stride: 3, bytes: 40);
        var ensemble = Perplexity.EvaluateEnsemble([model, model, model], [doc], blockSize: 8, stride: 3, bytes: 40);
        Assert.Equal(single.ScoredTokens, ensemble.ScoredTokens);
        Assert.Equal(single.NegativeLogLikelihood, ensemble.NegativeLogLikelihood, 9);
        Assert.Equal(single.BitsPerByte, ensemble.BitsPerByte, 9);
    }

    [Fact]
    public void Ensemble_OfTwoModels_ScoresTheMeanOfTheirProbabilities()
    {
        // Two different architectures with one 128-token vocabulary; one window holds the whole document.
        using var a = TransformerModel.Load(ModelFixtures.Folder("gemma-tiny"));
        using var b = TransformerModel.Load(ModelFixtures.Folder("llama-tied-tiny"));
        var doc = Enumerable.Range(0, 12).Select(i => (i * 29 + 3) % 128).ToArray();
        var r = Perplexity.EvaluateEnsemble([a, b], [doc], blockSize: 16);

        // By hand: p(y_j) = (p_a(y_j) + p_b(y_j)) / 2 from each model's softmax after the prefix.
        double expected = 0;
        for (int j = 1; j < doc.Length; j++)
        {
            double p = 0;
            foreach (var m in new[] { a, b })
            {
                var last = new LastLogits();
                m.Forward(TokenBatch.Single(doc[..j]), last);
                var row = last.Row(0).ToArray();
                double max = row.Max(), z = row.Sum(x => Math.Exp(x - max));
                p += Math.Exp(row[doc[j]] - max) / z / 2;
            }
            expected -= Math.Log(p);
        }
        Assert.Equal(doc.Length - 1, r.ScoredTokens);
        Assert.Equal(expected, r.NegativeLogLikelihood, 4);
        // And the mean of probabilities is not the mean of log-probabilities: the ensemble beats the average model.
        double meanOfModels = (Perplexity.Evaluate(a, [doc], 16).NegativeLogLikelihood + Perplexity.Evaluate(b, [doc], 16).NegativeLogLikelihood) / 2;
        Assert.True(r.NegativeLogLikelihood < meanOfModels);
    }

    [Fact]
    public void Ensemble_RefusesModelsWithDifferentVocabularies()
    {
        using var a = TransformerModel.Load(ModelFixtures.Folder("llama-tiny"));
        using var b = TransformerModel.Load(ModelFixtures.Folder("gemma-tiny"));
        Assert.Throws<ArgumentException>(() => Perplexity.EvaluateEnsemble([a, b], [[1, 2, 3]], blockSize: 8));
    }
}
