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
}
