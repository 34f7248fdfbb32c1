namespace FuseSharp.Tokenization.PostProcessors;

/// <summary>BERT's <c>[CLS] A [SEP]</c> (HF <c>BertProcessing</c>).</summary>
public sealed class BertProcessing(int clsId, int sepId) : IPostProcessor
{
    public static BertProcessing FromJson(JsonSection j) =>
        new(PostProcessorFactory.ReadPair(j.Child("cls")).Id, PostProcessorFactory.ReadPair(j.Child("sep")).Id);

    public void Process(EncodingBuilder encoding, bool addSpecialTokens)
    {
        if (!addSpecialTokens) return;
        encoding.InsertSpecial(0, [clsId]);
        encoding.InsertSpecial(encoding.Count, [sepId]);
    }
}
