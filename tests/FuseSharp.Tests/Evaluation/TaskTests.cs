using FuseSharp.Evaluation;
using FuseSharp.Models;
using FuseSharp.Tests.Models;
using FuseSharp.Tensors.Kernels;
using Xunit;

namespace FuseSharp.Tests.Evaluation;

public class TaskTests
{
    [Fact]
    public void EncodePair_MovesTrailingSpacesAndAddsTheDelimiter()
    {
        var tok = new ByteTokenizer();
        var o = new TaskOptions();
        var r = TaskEvaluator.Encode(tok, "Q: x", "yes", o);
        Assert.Equal(tok.Encode("Q: x").Ids, r.Context);
        Assert.Equal(tok.Encode(" yes").Ids, r.Continuation);
        var spaced = TaskEvaluator.Encode(tok, "Q: x  ", "yes", o); // no delimiter added; spaces move over
        Assert.Equal(tok.Encode("Q: x").Ids, spaced.Context);
        Assert.Equal(tok.Encode("  yes").Ids, spaced.Continuation);
        var empty = TaskEvaluator.Encode(tok, "", "yes", o);
        Assert.Equal([1], empty.Context);
        var bos = TaskEvaluator.Encode(tok, "Q", "a", o with { AddSpecialTokens = true });
        Assert.Equal(1, bos.Context[0]);
    }

    [Fact]
    public void LogLikelihood_EqualsBruteForce_AndTruncatesLikeTheHarness()
    {
        using var model = TransformerModel.Load(ModelFixtures.Folder("llama-tiny"));
        var reqs = new List<LogLikelihoodRequest>
        {
            new([1, 5, 9], [20, 30]),
            new([1], [7]),
            new(Enumerable.Range(1, 70).ToArray(), [40, 41, 42]), // longer than 64 positions: truncated from the left
            new([3, 4, 5, 6, 7, 8, 9], [11]),
        };
        var got = LogLikelihood.Score(model, reqs, batchSize: 3);
        for (int i = 0; i < reqs.Count; i++)
        {
            var seq = reqs[i].Context.Concat(reqs[i].Continuation).ToArray();
            int first = Math.Max(0, seq.Length - 1 - 64);
            double ll = 0;
            bool greedy = true;
            for (int j = seq.Length - reqs[i].Continuation.Count; j < seq.Length; j++)
            {
                var last = new LastLogits();
                model.Forward(TokenBatch.Single(seq[first..j]), last);
                ll -= Softmax.CrossEntropy(last.Row(0), seq[j], out _);
                greedy &= System.Numerics.Tensors.TensorPrimitives.IndexOfMax(last.Row(0)) == seq[j];
            }
            Assert.Equal(ll, got[i].LogLikelihood, 4);
            Assert.Equal(greedy, got[i].IsGreedy);
            Assert.Equal(reqs[i].Continuation.Count, got[i].Tokens);
        }
    }

    [Fact]
    public void MultipleChoice_AccAndAccNorm_FollowTheLogLikelihoods()
    {
        using var tmp = new TempDir();
        var path = Path.Combine(tmp.Path, "mc.jsonl");
        File.WriteAllLines(path,
        [
            """{"query": "Question: Once upon a", "choices": ["time", "dog barked loudly", "x"], "gold": 0}""",
            """{"query": "The cat", "choices": ["sat", "ran away"], "gold": 1}""",
            """{"query": "Lily saw a", "choices": ["big", "bird in the sky", "q"], "gold": 2}""",
        ]);
        using var model = TransformerModel.Load(ModelFixtures.Folder("stories260K"));
        var tok = new ByteTokenizer();
        var task = TaskData.Load(path);
        Assert.Equal(TaskKind.MultipleChoice, task.Kind);
        var result = TaskEvaluator.Evaluate(model, tok, task, new TaskOptions { BatchSize = 4 });

        double acc = 0, accNorm = 0, accToken = 0;
        foreach (var ex in task.Examples)
        {
            var scored = ex.Continuations.Select((c, i) => LogLikelihood.Score(model, [TaskEvaluator.Encode(tok, ex.Contexts[i], c, new TaskOptions())])[0]).ToArray();
            var lls = scored.Select(x => x.LogLikelihood).ToArray();
            acc += Array.IndexOf(lls, lls.Max()) == ex.Gold ? 1 : 0;
            var perToken = scored.Select(x => x.LogLikelihood / x.Tokens).ToArray();
            accToken += Array.IndexOf(perToken, perToken.Max()) == ex.Gold ? 1 : 0;
            var norm = lls.Select((l, i) => l / ex.Continuations[i].Length).ToArray();
            accNorm += Array.IndexOf(norm, norm.Max()) == ex.Gold ? 1 : 0;
        }
        Assert.Equal(3, result.Count);
        Assert.Equal(acc / 3, result.Accuracy, 10);
        Assert.Equal(accNorm / 3, result.NormalizedAccuracy!.Value, 10);
        Assert.Equal(accToken / 3, result.PerTokenAccuracy!.Value, 10);
        Assert.Null(result.Perplexity);
    }

    [Fact]
    public void OtherFormats_AreDetected()
    {
        using var tmp = new TempDir();
        var schema = Path.Combine(tmp.Path, "schema.jsonl");
        File.WriteAllLines(schema, ["""{"context_options": ["Tom ate so Tom", "Tom ate so Ann"], "continuation": "was full.", "gold": 0}"""]);
        var lm = Path.Combine(tmp.Path, "lm.jsonl");
        File.WriteAllLines(lm, ["""{"context": "Once upon a", "continuation": "time"}""", """{"context": "The end", "continuation": "."}"""]);
        var arc = Path.Combine(tmp.Path, "arc.jsonl");
        File.WriteAllLines(arc, ["""{"question": "Q?", "options": [{"label": "A", "text": "one"}, {"label": "B", "text": "two"}], "answer": "B"}"""]);
        Assert.Equal(TaskKind.Schema, TaskData.Load(schema).Kind);
        var a = TaskData.Load(arc);
        Assert.Equal(TaskKind.MultipleChoice, a.Kind);
        Assert.Equal("Question: Q?\nAnswer:", a.Examples[0].Contexts[0]);
        Assert.Equal(1, a.Examples[0].Gold);

        using var model = TransformerModel.Load(ModelFixtures.Folder("stories260K"));
        var r = TaskEvaluator.Evaluate(model, new ByteTokenizer(), TaskData.Load(lm));
        Assert.Equal(TaskKind.LanguageModeling, r.Kind);
        Assert.NotNull(r.Perplexity);
        Assert.InRange(r.Accuracy, 0, 1);
        Assert.Single(TaskData.Load(lm, limit: 1).Examples);
    }

    [Fact]
    public void BadTaskLines_NameFileAndLine()
    {
        using var tmp = new TempDir();
        var path = Path.Combine(tmp.Path, "bad.jsonl");
        File.WriteAllLines(path, ["""{"query": "a", "choices": ["x"], "gold": 0}""", "{not json", ""]);
        var e = Assert.Throws<FuseSharpException>(() => TaskData.Load(path));
        Assert.Contains("bad.jsonl:2", e.Message, StringComparison.Ordinal);
        File.WriteAllLines(path, ["""{"query": "a", "choices": ["x"], "gold": 3}"""]);
        Assert.Contains("gold", Assert.Throws<FuseSharpException>(() => TaskData.Load(path)).Message, StringComparison.Ordinal);
        Assert.Throws<FuseSharpException>(() => TaskData.Resolve("nope", tmp.Path));
    }

    [Fact]
    public void ExampleLoss_IsTheMeanOfBatchMeansOverOutputTokens()
    {
        using var model = TransformerModel.Load(ModelFixtures.Folder("stories260K"));
        var tok = new ByteTokenizer();
        var examples = new[] { new LossExample("Once", "upon a time"), new LossExample("Lily", "was happy"), new LossExample("The", "end") };
        double got = ExampleLoss.Compute(model, tok, examples, batchSize: 2);

        double BatchMean(IEnumerable<LossExample> batch)
        {
            double sum = 0;
            int n = 0;
            foreach (var ex in batch)
            {
                var ids = tok.Encode(ex.Input + " " + ex.Output, true).Ids.Append(2).ToArray();
                int prompt = tok.Encode(ex.Input, true).Count;
                var loss = new NextTokenLoss();
                model.Forward(TokenBatch.Single(ids), loss);
                for (int t = prompt - 1; t < ids.Length - 1; t++) { sum += loss.CrossEntropy[t]; n++; }
            }
            return sum / n;
        }
        double expected = (BatchMean(examples.Take(2)) + BatchMean(examples.Skip(2))) / 2;
        Assert.Equal(expected, got, 5);
    }
}
