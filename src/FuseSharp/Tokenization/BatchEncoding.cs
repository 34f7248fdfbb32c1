using FuseSharp.Tensors;

namespace FuseSharp.Tokenization;

/// <summary>Parallel encoding of many texts with any <see cref="ITokenizer"/> (tokenizers are thread-safe).</summary>
public static class BatchEncoding
{
    /// <summary>Encodes <paramref name="texts"/> in parallel; results are in input order.</summary>
    public static IReadOnlyList<Encoding> Run(ITokenizer tokenizer, IReadOnlyList<string> texts, bool addSpecialTokens, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(texts);
        var result = new Encoding[texts.Count];
        if (texts.Count <= 1 || Parallelism.MaxThreads == 1)
        {
            for (int i = 0; i < texts.Count; i++)
            {
                cancellation.ThrowIfCancellationRequested();
                result[i] = tokenizer.Encode(texts[i], addSpecialTokens);
            }
            return result;
        }
        var options = Parallelism.Options;
        options.CancellationToken = cancellation;
        try
        {
            Parallel.For(0, texts.Count, options, i => result[i] = tokenizer.Encode(texts[i], addSpecialTokens));
        }
        catch (AggregateException e) when (e.InnerExceptions.Count > 0)
        {
            // Report the text's own error (e.g. a TokenizerException), not the parallel wrapper.
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e.InnerExceptions[0]).Throw();
        }
        return result;
    }
}
