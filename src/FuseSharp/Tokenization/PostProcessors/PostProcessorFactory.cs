namespace FuseSharp.Tokenization.PostProcessors;

/// <summary>The post-processors of <c>tokenizer.json</c>, by their <c>"type"</c> tag.</summary>
public static class PostProcessorFactory
{
    private static readonly ComponentTable<IPostProcessor> Table = new("post-processor", new(StringComparer.Ordinal)
    {
        ["TemplateProcessing"] = TemplateProcessing.FromJson,
        ["ByteLevel"] = ByteLevelProcessor.FromJson,
        ["RobertaProcessing"] = RobertaProcessing.FromJson,
        ["BertProcessing"] = BertProcessing.FromJson,
        ["Sequence"] = SequenceProcessor.FromJson,
    });

    /// <summary>Builds the post-processor described by <paramref name="j"/>.</summary>
    /// <exception cref="TokenizerException">Unknown type or bad fields (the message names them).</exception>
    public static IPostProcessor Create(JsonSection j) => Table.Create(j);

    /// <summary>Reads a <c>["token", id]</c> pair (Bert/Roberta <c>cls</c>, <c>sep</c>).</summary>
    internal static (string Token, int Id) ReadPair(JsonSection j)
    {
        var items = j.Items().ToList();
        if (items.Count != 2) throw j.Error("expected [token, id]");
        return (items[0].AsString(), items[1].AsInt());
    }
}
