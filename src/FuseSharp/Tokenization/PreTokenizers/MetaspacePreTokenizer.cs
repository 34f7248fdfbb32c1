namespace FuseSharp.Tokenization.PreTokenizers;

/// <summary>When a Metaspace component prepends its replacement character to a piece.</summary>
public enum PrependScheme
{
    /// <summary>To every piece that does not start with it.</summary>
    Always,

    /// <summary>Only to the piece that starts the original text.</summary>
    First,

    /// <summary>Never.</summary>
    Never,
}

/// <summary>
/// SentencePiece-style spaces: replaces ' ' by the replacement ('▁'), prepends it according to the prepend scheme,
/// and (with <c>split</c>) splits before every replacement character (HF <c>Metaspace</c>).
/// </summary>
public sealed class MetaspacePreTokenizer(string replacement, PrependScheme prependScheme, bool split) : IPreTokenizer
{
    private readonly SplitPattern splitPattern = SplitPattern.Literal(replacement);
    private readonly SplitPattern space = SplitPattern.Literal(" ");

    public string Replacement { get; } = replacement;

    public PrependScheme PrependScheme { get; } = prependScheme;

    /// <summary>Whether pieces are split before every replacement character.</summary>
    public bool Split { get; } = split;

    /// <summary>Reads the fields shared by the pre-tokenizer and the decoder (legacy <c>add_prefix_space: false</c> means never).</summary>
    public static (string Replacement, PrependScheme Scheme, bool Split) ReadFields(JsonSection j)
    {
        var replacement = j.GetChar("replacement", "\u2581");
        var scheme = j.GetStringOrNull("prepend_scheme") switch
        {
            null or "always" => PrependScheme.Always,
            "first" => PrependScheme.First,
            "never" => PrependScheme.Never,
            var s => throw j.Error($"unknown prepend_scheme '{s}'", "use always, first or never"),
        };
        if (j.GetBoolOrNull("add_prefix_space") == false) scheme = PrependScheme.Never;
        return (replacement, scheme, j.GetBool("split", true));
    }

    public static MetaspacePreTokenizer FromJson(JsonSection j)
    {
        var (r, s, split) = ReadFields(j);
        return new(r, s, split);
    }

    public void PreTokenize(PreTokenizedString text) => text.Split(n =>
    {
        n.Replace(space, Replacement);
        bool prepend = PrependScheme switch
        {
            PrependScheme.Always => !n.Normalized.StartsWith(Replacement, StringComparison.Ordinal),
            PrependScheme.First => !n.Normalized.StartsWith(Replacement, StringComparison.Ordinal) && n.OriginalShift == 0,
            _ => false,
        };
        if (prepend) n.Prepend(Replacement);
        return Split ? n.Split(splitPattern, SplitBehavior.MergedWithNext) : [n];
    });
}
