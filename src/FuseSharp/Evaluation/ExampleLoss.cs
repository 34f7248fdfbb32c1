using FuseSharp.Models;
using FuseSharp.Tokenization;

namespace FuseSharp.Evaluation;

/// <summary>An (input, output) example for scoring a model, LM-Cocktail's decoder format.</summary>
public sealed record LossExample(string Input, string Output);

/// <summary>
/// LM-Cocktail's loss of a decoder model on a few examples (FlagEmbedding <c>LM_Cocktail/utils.py</c>,
/// <c>preprocess_data_for_llm</c> + <c>llm_loss</c>), used by <c>mix_models_with_data</c> to weight models by
/// <c>softmax(−loss / temperature)</c>. Each example is <c>encode(input + " " + output) + [eos]</c> with the
/// tokenizer's special tokens (BOS), the first <c>len(encode(input))</c> labels ignored, truncated to
/// <c>maxLength</c>; the loss is transformers' mean token CE per batch of <c>batchSize</c> examples, averaged over
/// batches. Padding to <c>maxLength</c> in the reference does not change the values (causal attention, padding
/// ignored), so batches are padded only to their longest example.
/// </summary>
public static class ExampleLoss
{
    /// <summary>The mean batch loss (nats per token) of <paramref name="model"/> on <paramref name="examples"/>.</summary>
    public static double Compute(TransformerModel model, ITokenizer tokenizer, IReadOnlyList<LossExample> examples, int batchSize = 2, int maxLength = 2048,
        CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(examples);
        if (examples.Count == 0) throw new ArgumentException("no examples", nameof(examples));
        int eos = tokenizer.EosTokenId ?? throw new FuseSharpException("LM-Cocktail's example loss needs an EOS token", "the tokenizer defines no eos_token");
        int window = Math.Min(maxLength, model.Spec.MaxPositions);
        int pad = tokenizer.PadTokenId ?? eos;
        var encoded = examples.Select(ex =>
        {
            var ids = tokenizer.Encode(ex.Input + " " + ex.Output, addSpecialTokens: true).Ids.Append(eos).ToArray();
            int prompt = tokenizer.Encode(ex.Input, addSpecialTokens: true).Count;
            var labels = ids.Select((id, i) => i < prompt ? NextTokenLoss.IgnoreIndex : id).ToArray();
            return (Ids: ids.Take(window).ToArray(), Labels: labels.Take(window).ToArray());
        }).ToList();
        double total = 0;
        int batches = 0;
        for (int i = 0; i < encoded.Count; i += batchSize)
        {
            cancellation.ThrowIfCancellationRequested();
            var chunk = encoded.Skip(i).Take(batchSize).ToList();
            int len = chunk.Max(c => c.Ids.Length);
            var ids = TokenBatch.PadRows(chunk.Select(c => (IReadOnlyList<int>)c.Ids).ToList(), len, pad);
            var labels = TokenBatch.PadRows(chunk.Select(c => (IReadOnlyList<int>)c.Labels).ToList(), len, NextTokenLoss.IgnoreIndex);
            // attention_mask = input_ids != pad_token_id, as the reference builds it (pad defaults to EOS there);
            // positions 0.. regardless of the mask, as transformers' default.
            var mask = ids.Select(id => (byte)(id != pad ? 1 : 0)).ToArray();
            var positions = Enumerable.Range(0, ids.Length).Select(k => k % len).ToArray();
            var loss = new NextTokenLoss(labels);
            model.Forward(new TokenBatch(chunk.Count, len, ids, mask, positions), loss);
            total += loss.Mean;
            batches++;
        }
        return total / batches;
    }
}
