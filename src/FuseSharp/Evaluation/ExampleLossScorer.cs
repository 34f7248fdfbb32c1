using FuseSharp.Merging.Methods;
using FuseSharp.Models;
using FuseSharp.Tokenization;

namespace FuseSharp.Evaluation;

/// <summary>
/// LM-Cocktail's scorer for <c>merge_method: lm_cocktail</c> with <c>example_data</c>: loads each candidate with the
/// engine (memory-mapped, one at a time) and returns <see cref="ExampleLoss.Compute"/> of it on the examples,
/// tokenized with the first model's tokenizer as <c>mix_models_with_data</c> does.
/// </summary>
public sealed class ExampleLossScorer : IExampleLossScorer
{
    /// <inheritdoc/>
    public double Loss(string modelFolder, string tokenizerFolder, IReadOnlyList<CocktailExample> examples, int maxInputLength, int batchSize, CancellationToken cancellation)
    {
        ArgumentNullException.ThrowIfNull(examples);
        var tokenizer = TokenizerLoader.Load(tokenizerFolder);
        using var model = TransformerModel.Load(modelFolder);
        return ExampleLoss.Compute(model, tokenizer, examples.Select(e => new LossExample(e.Input, e.Output)).ToList(), batchSize, maxInputLength, cancellation);
    }
}
