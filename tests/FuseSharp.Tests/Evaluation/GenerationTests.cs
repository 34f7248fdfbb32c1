using FuseSharp.Evaluation;
using FuseSharp.Models;
using FuseSharp.Tests.Models;
using Xunit;

namespace FuseSharp.Tests.Evaluation;

public class GenerationTests
{
    public static TheoryData<string> Cases => new(ModelFixtures.Names);

    [Theory]
    [MemberData(nameof(Cases))]
    public void Greedy_MatchesTheReferenceContinuation(string name)
    {
        using var model = TransformerModel.Load(ModelFixtures.Folder(name));
        var gen = ModelFixtures.Generate(name);
        var prompt = gen["prompt_ids"]!.AsArray().Select(x => x!.GetValue<int>()).ToList();
        var expected = gen["new_ids"]!.AsArray().Select(x => x!.GetValue<int>()).ToList();
        var streamed = new List<int>();
        var result = Generator.Generate(model, prompt, new GenerationOptions { MaxNewTokens = expected.Count }, onToken: t => streamed.Add(t.Id));
        Assert.Equal(expected, result.NewIds);
        Assert.Equal(expected, streamed);
        Assert.Equal(StopReason.MaxNewTokens, result.StopReason);
    }

    [Fact]
    public void Sampling_IsReproducibleBySeed_AndSeedsDiffer()
    {
        using var model = TransformerModel.Load(ModelFixtures.Folder("stories260K"));
        var o = new GenerationOptions { MaxNewTokens = 24, Temperature = 1.0f, Seed = 7 };
        var a = Generator.Generate(model, [1], o).NewIds;
        var b = Generator.Generate(model, [1], o).NewIds;
        var c = Generator.Generate(model, [1], o with { Seed = 8 }).NewIds;
        Assert.Equal(a, b);
        Assert.NotEqual(a, c);
        var greedy = Generator.Generate(model, [1], o with { Temperature = 0 }).NewIds;
        Assert.NotEqual(greedy, a); // a 24-token sample at T = 1 from a trained model is not its greedy path
        // top-k 1 is greedy whatever the temperature.
        Assert.Equal(greedy, Generator.Generate(model, [1], o with { TopK = 1, Seed = 99 }).NewIds);
    }

    [Fact]
    public void Eos_StopsAndIsKept()
    {
        using var model = TransformerModel.Load(ModelFixtures.Folder("stories260K"));
        var free = Generator.Generate(model, [1], new GenerationOptions { MaxNewTokens = 20 }).NewIds;
        int stopAt = free[5];
        var result = Generator.Generate(model, [1], new GenerationOptions { MaxNewTokens = 20, EosTokenIds = [stopAt] });
        Assert.Equal(StopReason.EndOfSequence, result.StopReason);
        Assert.Equal(free.Take(free.ToList().IndexOf(stopAt) + 1), result.NewIds);
    }

    [Fact]
    public void StopStrings_StopOnceTheTextContainsThem()
    {
        using var model = TransformerModel.Load(ModelFixtures.Folder("stories260K"));
        var tok = new ByteTokenizer();
        // Decode the greedy ids with the byte tokenizer (ids above 258 decode to nothing) and stop at a 2-char substring.
        var free = Generator.Generate(model, [1], new GenerationOptions { MaxNewTokens = 40 }, tok);
        var text = free.Text!;
        Assert.True(text.Length >= 4, "the byte view of the greedy text is too short for this test");
        var stop = text.Substring(2, 2);
        var result = Generator.Generate(model, [1], new GenerationOptions { MaxNewTokens = 40, StopStrings = [stop] }, tok);
        Assert.Equal(StopReason.StopString, result.StopReason);
        Assert.EndsWith(stop, result.Text!, StringComparison.Ordinal);
        Assert.True(result.NewIds.Count < free.NewIds.Count);
    }

    [Fact]
    public void ContextFull_EndsGenerationAtTheMaximumPosition()
    {
        using var model = TransformerModel.Load(ModelFixtures.Folder("llama-tiny")); // 64 positions
        var result = Generator.Generate(model, Enumerable.Range(3, 60).ToList(), new GenerationOptions { MaxNewTokens = 50 });
        Assert.Equal(StopReason.ContextFull, result.StopReason);
        Assert.Equal(5, result.NewIds.Count); // positions 60..63 take four generated tokens; the one predicted at 63 is the fifth
    }

    [Fact]
    public void TextStreamer_HoldsBackIncompleteCharacters()
    {
        var s = new TextStreamer(new ByteTokenizer());
        var bytes = System.Text.Encoding.UTF8.GetBytes("aé€");
        var deltas = bytes.Select(b => s.Push(b + 3)).ToList();
        Assert.Equal(["a", "", "é", "", "", "€"], deltas);
        Assert.Equal("aé€", s.Text);
    }

    [Fact]
    public void RepetitionPenalty_DividesPositiveAndMultipliesNegativeLogits()
    {
        var logits = new float[] { 2f, -2f, 1f };
        Sampling.ApplyRepetitionPenalty(logits, [0, 1, 1], 2f);
        Assert.Equal(new[] { 1f, -4f, 1f }, logits);
    }

    [Fact]
    public void TopK_KeepsTiesAtTheBoundary()
    {
        var logits = new float[] { 1f, 3f, 2f, 2f, 0f };
        Sampling.ApplyTopK(logits, 2);
        Assert.Equal(new[] { float.NegativeInfinity, 3f, 2f, 2f, float.NegativeInfinity }, logits);
    }

    [Fact]
    public void TopP_KeepsTheSmallestNucleus()
    {
        // probabilities 0.5, 0.3, 0.15, 0.05: with p = 0.8 the cumulative mass from the bottom (0.05, 0.20) is ≤ 0.2 → dropped.
        var probs = new[] { 0.5, 0.3, 0.15, 0.05 };
        var logits = probs.Select(p => (float)Math.Log(p)).ToArray();
        Sampling.ApplyTopP(logits, 0.8f);
        Assert.True(float.IsFinite(logits[0]) && float.IsFinite(logits[1]));
        Assert.True(float.IsNegativeInfinity(logits[2]) && float.IsNegativeInfinity(logits[3]));
        // p tiny: only the most likely token survives.
        var one = probs.Select(p => (float)Math.Log(p)).ToArray();
        Sampling.ApplyTopP(one, 0.01f);
        Assert.Equal(1, one.Count(float.IsFinite));
    }

    [Fact]
    public void Draw_FollowsTheSoftmax()
    {
        var logits = new[] { 0f, (float)Math.Log(3), float.NegativeInfinity }; // p = 0.25, 0.75, 0
        var counts = new int[3];
        for (int i = 0; i < 10000; i++) counts[Sampling.Draw(logits, (i + 0.5) / 10000)]++;
        Assert.InRange(counts[0], 2499, 2501);
        Assert.InRange(counts[1], 7499, 7501);
        Assert.Equal(0, counts[2]);
    }
}
