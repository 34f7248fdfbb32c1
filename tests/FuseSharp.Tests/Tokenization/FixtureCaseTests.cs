using System.Text;
using FuseSharp.Tokenization;
using Xunit;

namespace FuseSharp.Tests.Tokenization;

/// <summary>
/// Every case of cases.jsonl (ids of encode(text, add_special_tokens) and decode(ids)), one theory row per tokenizer
/// file; a failure lists every mismatching case with its line in cases.jsonl.
/// </summary>
public class FixtureCaseTests
{
    public static TheoryData<string> TokenizerPaths()
    {
        var data = new TheoryData<string>();
        foreach (var p in TokenizerFixtures.Cases.Select(c => c.TokenizerPath).Distinct()) data.Add(p);
        return data;
    }

    [Theory]
    [MemberData(nameof(TokenizerPaths))]
    public void AllCasesMatch(string tokenizerPath)
    {
        var tokenizer = TokenizerFixtures.Load(tokenizerPath);
        var failures = new StringBuilder();
        int count = 0;
        foreach (var c in TokenizerFixtures.Cases.Where(c => c.TokenizerPath == tokenizerPath))
        {
            count++;
            var ids = tokenizer.Encode(c.Text, c.AddSpecialTokens).Ids;
            if (!ids.SequenceEqual(c.Ids))
                failures.AppendLine($"line {c.Line} ({c.TextId}, special={c.AddSpecialTokens}) {Show(c.Text)}: ids [{string.Join(",", ids)}] expected [{string.Join(",", c.Ids)}]");
            var decoded = tokenizer.Decode(c.Ids);
            if (decoded != c.Decoded)
                failures.AppendLine($"line {c.Line} ({c.TextId}): decoded {Show(decoded)} expected {Show(c.Decoded)}");
        }
        Assert.True(count > 0);
        Assert.True(failures.Length == 0, $"{tokenizerPath}:\n{failures}");
    }

    internal static string Show(string s) => System.Text.Json.JsonSerializer.Serialize(s, new System.Text.Json.JsonSerializerOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
}
