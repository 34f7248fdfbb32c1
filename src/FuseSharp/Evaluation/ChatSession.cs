using System.Text.Json.Nodes;
using FuseSharp.Models;
using FuseSharp.Tokenization;
using FuseSharp.Tokenization.ChatTemplates;

namespace FuseSharp.Evaluation;

/// <summary>
/// A conversation with a model through its chat template: each user turn is appended, the whole conversation is
/// rendered with <c>add_generation_prompt</c> as transformers' <c>apply_chat_template</c> does, tokenised without
/// adding special tokens (the template writes BOS and turn markers itself), and the reply is generated and kept
/// as the assistant's message for the next turn.
/// </summary>
public sealed class ChatSession
{
    private readonly TransformerModel _model;
    private readonly ITokenizer _tokenizer;
    private readonly ChatTemplate _template;
    private readonly TokenizerConfig? _config;
    private readonly List<ChatMessage> _messages = [];

    /// <param name="model">The model.</param>
    /// <param name="tokenizer">Its tokenizer.</param>
    /// <param name="template">Its chat template (<see cref="ChatTemplate.FromConfig"/>).</param>
    /// <param name="config">tokenizer_config.json, for the special tokens the template may print (bos_token, ...).</param>
    /// <param name="system">An optional system message.</param>
    public ChatSession(TransformerModel model, ITokenizer tokenizer, ChatTemplate template, TokenizerConfig? config = null, string? system = null)
    {
        _model = model ?? throw new ArgumentNullException(nameof(model));
        _tokenizer = tokenizer ?? throw new ArgumentNullException(nameof(tokenizer));
        _template = template ?? throw new ArgumentNullException(nameof(template));
        _config = config;
        if (!string.IsNullOrEmpty(system)) _messages.Add(new ChatMessage("system", system));
    }

    /// <summary>The conversation so far.</summary>
    public IReadOnlyList<ChatMessage> Messages => _messages;

    /// <summary>The prompt the next reply is generated from (the conversation plus the assistant-turn opener).</summary>
    public string RenderPrompt() =>
        _template.Render(ChatTemplateRequest.ForModel(new JsonArray(_messages.Select(m => (JsonNode?)m.ToJson()).ToArray()), _config) with { AddGenerationPrompt = true });

    /// <summary>Adds the user's message, generates the reply (streamed to <paramref name="onToken"/>) and records it.</summary>
    public GenerationResult Reply(string userMessage, GenerationOptions options, Action<GeneratedToken>? onToken = null, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(userMessage);
        ArgumentNullException.ThrowIfNull(options);
        _messages.Add(new ChatMessage("user", userMessage));
        try
        {
            var ids = _tokenizer.Encode(RenderPrompt(), addSpecialTokens: false).Ids;
            var result = Generator.Generate(_model, ids, options, _tokenizer, onToken, cancellation);
            _messages.Add(new ChatMessage("assistant", result.Text ?? ""));
            return result;
        }
        catch
        {
            _messages.RemoveAt(_messages.Count - 1); // a failed turn leaves the conversation as it was
            throw;
        }
    }
}
