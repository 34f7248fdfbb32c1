namespace FuseSharp.Tokenization.PostProcessors;

/// <summary>RoBERTa's <c>&lt;s&gt; A &lt;/s&gt;</c> with byte-level offset trimming (HF <c>RobertaProcessing</c>).</summary>
public sealed class RobertaProcessing(int clsId, int sepId, bool trimOffsets, bool addPrefixSpace) : IPostProcessor
{
    public static RobertaProcessing FromJson(JsonSection j) => new(
        PostProcessorFactory.ReadPair(j.Child("cls")).Id, PostProcessorFactory.ReadPair(j.Child("sep")).Id,
        j.GetBool("trim_offsets", true), j.GetBool("add_prefix_space", true));

    public void Process(EncodingBuilder encoding, bool addSpecialTokens)
    {
        if (trimOffsets) ByteLevelProcessor.TrimOffsets(encoding, addPrefixSpace);
        if (!addSpecialTokens) return;
        encoding.InsertSpecial(0, [clsId]);
        encoding.InsertSpecial(encoding.Count, [sepId]);
    }
}
