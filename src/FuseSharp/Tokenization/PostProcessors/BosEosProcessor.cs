namespace FuseSharp.Tokenization.PostProcessors;

/// <summary>
/// BOS/EOS as <c>tokenizer_config.json</c>'s <c>add_bos_token</c>/<c>add_eos_token</c> ask (what transformers'
/// <c>update_post_processor</c> builds for Llama-family tokenizers): the wrapped post-processor still adjusts offsets
/// but adds no special tokens of its own.
/// </summary>
public sealed class BosEosProcessor(IPostProcessor? inner, int? bosId, int? eosId) : IPostProcessor
{
    public int? BosId { get; } = bosId;

    public int? EosId { get; } = eosId;

    public void Process(EncodingBuilder encoding, bool addSpecialTokens)
    {
        inner?.Process(encoding, false);
        if (!addSpecialTokens) return;
        if (BosId is { } b) encoding.InsertSpecial(0, [b]);
        if (EosId is { } e) encoding.InsertSpecial(encoding.Count, [e]);
    }
}
