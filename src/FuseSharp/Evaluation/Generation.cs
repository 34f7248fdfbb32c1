using System.Text.Json.Nodes;
using FuseSharp.Models;
using FuseSharp.Tensors;
using FuseSharp.Tokenization;

namespace FuseSharp.Evaluation;

/// <summary>How to generate. Temperature 0 means greedy (argmax) decoding.</summary>
public sealed record GenerationOptions
{
    public int MaxNewTokens { get; init; } = 128;

    /// <summary>0: greedy. Otherwise logits are divided by it and a token is drawn.</summary>
    public float Temperature { get; init; }

    /// <summary>Keep only the k most likely tokens when sampling (0: off).</summary>
    public int TopK { get; init; }

    /// <summary>Keep the smallest set of tokens whose probability reaches p when sampling (1: off).</summary>
    public float TopP { get; init; } = 1f;

    /// <summary>Penalise tokens already in the prompt or output (1: off; transformers' semantics). Applies to greedy too.</summary>
    public float RepetitionPenalty { get; init; } = 1f;

    /// <summary>Seed of the draws (counter-based: the same seed gives the same text everywhere).</summary>
    public long Seed { get; init; }

    /// <summary>Stop after any of these ids (it is kept in the output ids, as transformers does).</summary>
    public IReadOnlyList<int> EosTokenIds { get; init; } = [];

    /// <summary>Stop once the generated text contains one of these (needs a tokenizer; the text keeps it).</summary>
    public IReadOnlyList<string> StopStrings { get; init; } = [];

    /// <summary>
    /// Defaults as <c>generate()</c> takes them from generation_config.json: <c>do_sample</c> with
    /// <c>temperature</c> (default 1), <c>top_k</c> (default 50), <c>top_p</c>, <c>repetition_penalty</c>,
    /// <c>max_new_tokens</c> and <c>eos_token_id</c> (falling back to the model config's EOS ids).
    /// </summary>
    public static GenerationOptions FromGenerationConfig(JsonObject? generationConfig, TransformerSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var o = new GenerationOptions { EosTokenIds = spec.EosTokenIds };
        if (generationConfig is null) return o;
        double? D(string k) => generationConfig[k] is JsonValue v && v.TryGetValue<double>(out var d) ? d : null;
        bool sample = generationConfig["do_sample"] is JsonValue s && s.TryGetValue<bool>(out var b) && b;
        var eos = generationConfig["eos_token_id"] switch
        {
            JsonArray a => a.Select(x => x!.GetValue<int>()).ToList(),
            JsonValue v when v.TryGetValue<int>(out var id) => [id],
            _ => spec.EosTokenIds,
        };
        return o with
        {
            Temperature = sample ? (float)(D("temperature") ?? 1.0) : 0f,
            TopK = sample ? (int)(D("top_k") ?? 50) : 0,
            TopP = sample ? (float)(D("top_p") ?? 1.0) : 1f,
            RepetitionPenalty = (float)(D("repetition_penalty") ?? 1.0),
            MaxNewTokens = (int)(D("max_new_tokens") ?? o.MaxNewTokens),
            EosTokenIds = eos,
        };
    }
}

/// <summary>Why generation ended.</summary>
public enum StopReason
{
    MaxNewTokens,
    EndOfSequence,
    StopString,

    /// <summary>The model's maximum position was reached.</summary>
    ContextFull,
}

/// <summary>One generated token and the text it completed (empty while a multi-byte character is incomplete).</summary>
public sealed record GeneratedToken(int Id, string TextDelta);

/// <summary>The outcome of <see cref="Generator.Generate"/>.</summary>
public sealed record GenerationResult(IReadOnlyList<int> PromptIds, IReadOnlyList<int> NewIds, string? Text, StopReason StopReason);

/// <summary>
/// Autoregressive generation with a KV cache: the prompt is run once, then one token per step. Each step applies
/// <see cref="Sampling"/> in transformers' order and draws with a uniform number that depends only on
/// (seed, step), so runs are reproducible.
/// </summary>
public static class Generator
{
    /// <summary>Generates a continuation of <paramref name="promptIds"/>.</summary>
    /// <param name="model">The model.</param>
    /// <param name="promptIds">The prompt (at least one id).</param>
    /// <param name="options">Sampling, length and stopping.</param>
    /// <param name="tokenizer">Turns the output into text and enables stop strings; optional.</param>
    /// <param name="onToken">Called after each token with the text it completes (streaming).</param>
    /// <param name="cancellation">Stops between tokens.</param>
    public static GenerationResult Generate(TransformerModel model, IReadOnlyList<int> promptIds, GenerationOptions options,
        ITokenizer? tokenizer = null, Action<GeneratedToken>? onToken = null, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(promptIds);
        ArgumentNullException.ThrowIfNull(options);
        if (promptIds.Count == 0) throw new ArgumentException("the prompt is empty; give at least one token (e.g. BOS)", nameof(promptIds));
        if (options.MaxNewTokens < 0) throw new ArgumentOutOfRangeException(nameof(options), "max new tokens must not be negative");
        if (options.StopStrings.Count > 0 && tokenizer is null) throw new ArgumentException("stop strings need a tokenizer", nameof(options));
        var spec = model.Spec;
        int limit = model.Options.AllowLongerThanTrained && spec.Position != PositionKind.Learned ? int.MaxValue : spec.MaxPositions;
        int capacity = (int)Math.Min((long)promptIds.Count + options.MaxNewTokens, Math.Max(limit, promptIds.Count));
        using var cache = model.CreateCache(1, capacity);
        var rng = new CounterRandom(options.Seed, "generate");
        var streamer = tokenizer is null ? null : new TextStreamer(tokenizer);
        var seen = new List<int>(promptIds);
        var output = new List<int>();
        var last = new LastLogits();
        var reason = StopReason.MaxNewTokens;
        model.Forward(TokenBatch.Single(promptIds), last, cache);
        for (int step = 0; step < options.MaxNewTokens; step++)
        {
            cancellation.ThrowIfCancellationRequested();
            var logits = last.Row(0);
            Sampling.ApplyRepetitionPenalty(logits, seen, options.RepetitionPenalty);
            int next;
            if (options.Temperature <= 0) next = Sampling.Greedy(logits);
            else
            {
                Sampling.ApplyTemperature(logits, options.Temperature);
                Sampling.ApplyTopK(logits, options.TopK);
                Sampling.ApplyTopP(logits, options.TopP);
                next = Sampling.Draw(logits, rng.NextDouble(step));
            }
            output.Add(next);
            seen.Add(next);
            string delta = streamer?.Push(next) ?? "";
            onToken?.Invoke(new GeneratedToken(next, delta));
            if (options.EosTokenIds.Contains(next)) { reason = StopReason.EndOfSequence; break; }
            if (streamer is not null && options.StopStrings.Any(s => streamer.Text.Contains(s, StringComparison.Ordinal))) { reason = StopReason.StopString; break; }
            if (step + 1 == options.MaxNewTokens) break;
            if (cache.Length >= capacity) { reason = StopReason.ContextFull; break; }
            model.Forward(TokenBatch.Single([next]), last, cache);
        }
        if (streamer is not null)
        {
            var tail = streamer.Flush();
            if (tail.Length > 0) onToken?.Invoke(new GeneratedToken(-1, tail));
        }
        return new GenerationResult(promptIds.ToList(), output, streamer?.Text, reason);
    }
}

/// <summary>
/// Turns a growing list of ids into text increments, as transformers' TextStreamer: the ids so far are decoded
/// (special tokens skipped) and the new suffix is emitted, except a trailing U+FFFD, which is held back until the
/// following tokens complete the UTF-8 character.
/// </summary>
public sealed class TextStreamer
{
    private readonly ITokenizer _tokenizer;
    private readonly List<int> _ids = [];
    private int _emitted;

    public TextStreamer(ITokenizer tokenizer) => _tokenizer = tokenizer ?? throw new ArgumentNullException(nameof(tokenizer));

    /// <summary>The text of every id so far.</summary>
    public string Text { get; private set; } = "";

    /// <summary>Adds an id; returns the newly completed text.</summary>
    public string Push(int id)
    {
        _ids.Add(id);
        Text = _tokenizer.Decode(_ids, skipSpecialTokens: true);
        int stable = Text.Length;
        while (stable > _emitted && Text[stable - 1] == '\uFFFD') stable--;
        if (stable <= _emitted) return "";
        var delta = Text[_emitted..stable];
        _emitted = stable;
        return delta;
    }

    /// <summary>Whatever is still held back.</summary>
    public string Flush()
    {
        var rest = Text.Length > _emitted ? Text[_emitted..] : "";
        _emitted = Text.Length;
        return rest;
    }
}
