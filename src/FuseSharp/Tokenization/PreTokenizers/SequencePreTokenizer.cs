namespace FuseSharp.Tokenization.PreTokenizers;

/// <summary>Applies pre-tokenizers in order, each on the pieces of the previous one.</summary>
public sealed class SequencePreTokenizer(IReadOnlyList<IPreTokenizer> preTokenizers) : IPreTokenizer
{
    public IReadOnlyList<IPreTokenizer> PreTokenizers { get; } = preTokenizers;

    public static SequencePreTokenizer FromJson(JsonSection j) => new(j.Child("pretokenizers").Items().Select(PreTokenizerFactory.Create).ToList());

    public void PreTokenize(PreTokenizedString text)
    {
        foreach (var p in PreTokenizers) p.PreTokenize(text);
    }
}
