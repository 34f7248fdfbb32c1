namespace FuseSharp.Tokenization.PreTokenizers;

/// <summary>Splits on a literal or regex pattern with a delimiter behaviour, optionally inverted (HF <c>Split</c>).</summary>
public sealed class SplitPreTokenizer(SplitPattern pattern, SplitBehavior behavior, bool invert, string? regex) : IPreTokenizer
{
    /// <summary>The regex source when the pattern is a regex, else null.</summary>
    public string? Regex { get; } = regex;

    public SplitPattern Pattern { get; } = pattern;

    public SplitBehavior Behavior { get; } = behavior;

    public bool Invert { get; } = invert;

    public static SplitPreTokenizer FromJson(JsonSection j)
    {
        var p = j.Child("pattern");
        var regex = p.GetStringOrNull("Regex");
        var pattern = regex is not null ? FastSplitPatterns.ForRegex(regex) : SplitPattern.FromJson(p);
        return new(pattern, PreTokenizerFactory.ParseBehavior(j, "behavior", SplitBehavior.Removed), j.GetBool("invert", false), regex);
    }

    public void PreTokenize(PreTokenizedString text) => text.Split(n => n.Split(Pattern, Behavior, Invert));
}
