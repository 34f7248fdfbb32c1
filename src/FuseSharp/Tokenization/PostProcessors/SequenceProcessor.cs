namespace FuseSharp.Tokenization.PostProcessors;

/// <summary>Applies post-processors in order (HF <c>Sequence</c>).</summary>
public sealed class SequenceProcessor(IReadOnlyList<IPostProcessor> processors) : IPostProcessor
{
    public IReadOnlyList<IPostProcessor> Processors { get; } = processors;

    public static SequenceProcessor FromJson(JsonSection j) => new(j.Child("processors").Items().Select(PostProcessorFactory.Create).ToList());

    public void Process(EncodingBuilder encoding, bool addSpecialTokens)
    {
        foreach (var p in Processors) p.Process(encoding, addSpecialTokens);
    }
}
