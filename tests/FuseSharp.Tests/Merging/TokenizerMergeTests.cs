using System.Text.Json.Nodes;
using FuseSharp.Merging;
using FuseSharp.Merging.Config;
using FuseSharp.Merging.Execution;
using FuseSharp.Merging.Planning;
using FuseSharp.Tokenization;
using Xunit;

namespace FuseSharp.Tests.Merging;

/// <summary>
/// <c>tokenizer_source</c> / <c>tokenizer:</c> (mergekit <c>BuildTokenizer</c> + <c>PermutedEmbeddings</c>, spec §4.3):
/// the output vocabulary, the tokenizer files and every embedding / lm_head row, worked out by hand.
/// </summary>
public class TokenizerMergeTests
{
    // base: 8 tokens; ft1 swaps a/b, has x instead of d, and w; ft2 lacks d and e, has y, w, an added <tool> (id 8)
    // and a <pad> (id 9) beyond its vocab_size 9 (a padding id without an embedding row).
    private static readonly string[] BaseVocab = ["<unk>", "<s>", "</s>", "a", "b", "c", "d", "e"];
    private static readonly string[] Ft1Vocab = ["<unk>", "<s>", "</s>", "b", "a", "c", "x", "e", "w"];
    private static readonly string[] Ft2Vocab = ["<unk>", "<s>", "</s>", "a", "b", "c", "y", "w"];

    private sealed record Models(string Root, string Base, string Ft1, string Ft2,
        Dictionary<string, (float[] Values, long[] Shape)> B, Dictionary<string, (float[] Values, long[] Shape)> F1, Dictionary<string, (float[] Values, long[] Shape)> F2);

    private static Models Make(string name, (int, string, bool)[]? baseExtra = null)
    {
        var root = TestModels.TempDir(name);
        var b = TestModels.RandomLlama(1, vocab: 8);
        var f1 = TestModels.RandomLlama(2, vocab: 9);
        var f2 = TestModels.RandomLlama(3, vocab: 9);
        var pb = TestModels.WriteModel(Path.Combine(root, "base"), b);
        var p1 = TestModels.WriteModel(Path.Combine(root, "ft1"), f1);
        var p2 = TestModels.WriteModel(Path.Combine(root, "ft2"), f2);
        TestModels.WriteWordLevelTokenizer(pb, BaseVocab, baseExtra ?? []);
        TestModels.WriteWordLevelTokenizer(p1, Ft1Vocab);
        TestModels.WriteWordLevelTokenizer(p2, Ft2Vocab, (8, "<tool>", true), (9, "<pad>", true));
        return new Models(root, pb, p1, p2, b, f1, f2);
    }

    private static string Yaml(Models m, string tokenizer) =>
        $"merge_method: linear\nbase_model: {m.Base}\nmodels:\n  - model: {m.Base}\n    parameters: {{weight: 1}}\n  - model: {m.Ft1}\n    parameters: {{weight: 1}}\n" +
        $"  - model: {m.Ft2}\n    parameters: {{weight: 2}}\n{tokenizer}";

    private static (Dictionary<string, (float[] Values, long[] Shape)> Tensors, string Output) Merge(Models m, string yaml)
    {
        var output = Path.Combine(m.Root, "out");
        using var plan = MergePlanner.Plan(MergeConfigParser.Parse(yaml, Path.Combine(m.Root, "merge.yml")), new MergeOptions());
        MergeExecutor.Run(plan, output);
        return (TestModels.Read(output), output);
    }

    private static float[] Row(Dictionary<string, (float[] Values, long[] Shape)> t, string name, int row) => t[name].Values.AsSpan(row * 4, 4).ToArray();

    private static float[] MeanRow(Dictionary<string, (float[] Values, long[] Shape)> t, string name)
    {
        var (v, shape) = t[name];
        var r = new double[4];
        for (int i = 0; i < shape[0]; i++)
            for (int c = 0; c < 4; c++) r[c] += v[i * 4 + c];
        return r.Select(x => (float)(x / shape[0])).ToArray();
    }

    /// <summary>(1·b + 1·f1 + 2·f2) / 4 of three rows.</summary>
    private static float[] Mix(float[] b, float[] f1, float[] f2) => b.Select((_, c) => (b[c] + f1[c] + 2 * f2[c]) / 4).ToArray();

    private static void Close(float[] expected, float[] actual)
    {
        for (int c = 0; c < expected.Length; c++) Assert.Equal(expected[c], actual[c], 1e-6);
    }

    [Fact]
    public void Union_BuildsMergekitsVocabularyAndRows()
    {
        var m = Make("union");
        var (o, output) = Merge(m, Yaml(m, "tokenizer:\n  source: union\n  pad_to_multiple_of: 8\n  tokens:\n    a: {source: " + m.Ft2 + ", force: true}\n    z: {source: {kind: zero}}\n"));

        // Base's 8 ids, then plain tokens by model (x, w from ft1; y from ft2), then added tokens (<tool>; <pad> is
        // beyond ft2's vocab_size), then the 'tokens:' entry z: 13 ids, padded to 16 rows.
        var tok = TokenizerLoader.Load(output);
        string[] expectedOrder = [.. BaseVocab, "x", "w", "y", "<tool>", "z"];
        for (int id = 0; id < expectedOrder.Length; id++) Assert.Equal(id, tok.TokenToId(expectedOrder[id]));
        Assert.Null(tok.TokenToId("<pad>"));
        Assert.Equal(13, tok.VocabSize);
        Assert.Equal([3, 8, 12, 11], tok.Encode("a x z <tool>").Ids);
        Assert.Equal(16, JsonNode.Parse(File.ReadAllText(Path.Combine(output, "config.json")))!["vocab_size"]!.GetValue<int>());
        var decoder = JsonNode.Parse(File.ReadAllText(Path.Combine(output, "tokenizer_config.json")))!["added_tokens_decoder"]!.AsObject();
        Assert.True(decoder["11"]!["special"]!.GetValue<bool>());
        Assert.False(decoder["12"]!["special"]!.GetValue<bool>());

        foreach (var name in new[] { "model.embed_tokens.weight", "lm_head.weight" })
        {
            Assert.Equal([16L, 4], o[name].Shape);
            float[] B(int r) => Row(m.B, name, r);
            float[] F1(int r) => Row(m.F1, name, r);
            float[] F2(int r) => Row(m.F2, name, r);
            float[] Out(int r) => Row(o, name, r);
            Close(Mix(B(1), F1(1), F2(1)), Out(1));                               // <s>: everyone's own row
            Close(Mix(B(4), F1(3), F2(4)), Out(4));                               // b: ft1's row is at its own id
            Close(F2(3), Out(3));                                                 // a: forced from ft2 for every model
            Close(B(6), Out(6));                                                  // d: only the base has it
            Close(Mix(B(7), F1(7), B(7)), Out(7));                                // e: ft2 lacks it, the base has it
            Close(F1(6), Out(8));                                                 // x: only ft1
            var w = F1(8).Select((x, c) => (x + F2(7)[c]) / 2).ToArray();          // w: base lacks it -> mean of ft1 and ft2
            Close(Mix(w, F1(8), F2(7)), Out(9));
            Close(F2(6), Out(10));                                                // y: only ft2
            Close(F2(8), Out(11));                                                // <tool>: only ft2
            Close(new float[4], Out(12));                                         // z: zero
            Close(Mix(MeanRow(m.B, name), MeanRow(m.F1, name), MeanRow(m.F2, name)), Out(15)); // padding: each model's mean row
        }
    }

    [Fact]
    public void BaseSource_StripsIdsBeyondVocabSize_ModelSourceKeepsItsIds()
    {
        var m = Make("tokbase", baseExtra: [(8, "<pad>", true)]);
        var (o, output) = Merge(m, Yaml(m, "tokenizer_source: base\n"));
        var tok = TokenizerLoader.Load(output);
        Assert.Null(tok.TokenToId("<pad>"));
        Assert.Equal(8, tok.VocabSize);
        const string embed = "model.embed_tokens.weight";
        Assert.Equal([8L, 4], o[embed].Shape);
        Close(Mix(Row(m.B, embed, 3), Row(m.F1, embed, 4), Row(m.F2, embed, 3)), Row(o, embed, 3)); // a
        Close(Mix(Row(m.B, embed, 7), Row(m.F1, embed, 7), Row(m.B, embed, 7)), Row(o, embed, 7)); // e: ft2 takes the base's

        Directory.Delete(output, true);
        (o, output) = Merge(m, Yaml(m, $"tokenizer_source: {m.Ft1}\n"));
        Assert.Equal(4, TokenizerLoader.Load(output).TokenToId("a"));
        Assert.Equal([9L, 4], o[embed].Shape);
        Close(Mix(Row(m.B, embed, 3), Row(m.F1, embed, 4), Row(m.F2, embed, 3)), Row(o, embed, 4)); // a at ft1's id
        Close(Row(m.F1, embed, 6), Row(o, embed, 6));                                                // x: only ft1
        var w = Row(m.F1, embed, 8).Select((x, c) => (x + Row(m.F2, embed, 7)[c]) / 2).ToArray();
        Close(Mix(w, Row(m.F1, embed, 8), Row(m.F2, embed, 7)), Row(o, embed, 8));                   // w
    }
}
