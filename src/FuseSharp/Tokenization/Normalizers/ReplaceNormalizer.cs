namespace FuseSharp.Tokenization.Normalizers;

/// <summary>Replaces every match of a literal or regex pattern by <c>content</c> (HF <c>Replace</c>).</summary>
public sealed class ReplaceNormalizer(SplitPattern pattern, string content, string? literal) : INormalizer
{
    /// <summary>The literal pattern when the pattern is a <c>{"String": ...}</c>, else null.</summary>
    public string? LiteralPattern { get; } = literal;

    public string Content { get; } = content;

    public static ReplaceNormalizer FromJson(JsonSection j)
    {
        var p = j.Child("pattern");
        return new ReplaceNormalizer(SplitPattern.FromJson(p), j.GetString("content"), p.GetStringOrNull("String"));
    }

    public void Normalize(NormalizedString text) => text.Replace(pattern, Content);
}
