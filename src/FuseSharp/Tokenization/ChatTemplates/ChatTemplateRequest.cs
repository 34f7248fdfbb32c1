using System.Text.Json.Nodes;

namespace FuseSharp.Tokenization.ChatTemplates;

/// <summary>One chat message with plain text content (a convenience; messages with tool calls or content lists are JSON).</summary>
public sealed record ChatMessage(string Role, string Content)
{
    public JsonObject ToJson() => new() { ["role"] = Role, ["content"] = Content };
}

/// <summary>
/// What a chat template is rendered with. The template sees <c>messages</c>, <c>add_generation_prompt</c> and every
/// entry of <see cref="Variables"/>; nothing else is defined. A variable whose value is JSON null is defined as
/// Python <c>None</c> (transformers always passes <c>tools=None</c> and <c>documents=None</c>); a missing key is undefined.
/// Use <see cref="ForModel"/> to get exactly what transformers' <c>apply_chat_template</c> passes.
/// </summary>
public sealed record ChatTemplateRequest
{
    public ChatTemplateRequest(JsonArray messages) => Messages = messages;

    /// <summary>The conversation: a list of message objects (<c>{"role": ..., "content": ...}</c>, plus any fields the template reads).</summary>
    public JsonArray Messages { get; init; }

    /// <summary>Append the tokens that start an assistant turn (the template's <c>add_generation_prompt</c>).</summary>
    public bool AddGenerationPrompt { get; init; }

    /// <summary>
    /// Leave the final message open so a model continues it (transformers' <c>continue_final_message</c>): the output is
    /// cut right after that message's content.
    /// </summary>
    public bool ContinueFinalMessage { get; init; }

    /// <summary>Other template variables: <c>bos_token</c>, <c>eos_token</c>, <c>tools</c>, <c>documents</c>, <c>enable_thinking</c>, <c>date_string</c>, ...</summary>
    public IReadOnlyDictionary<string, JsonNode?> Variables { get; init; } = new Dictionary<string, JsonNode?>();

    /// <summary>The clock behind <c>strftime_now</c> (local time); null means now.</summary>
    public DateTime? Now { get; init; }

    /// <summary>A request from plain role/content messages.</summary>
    public static ChatTemplateRequest FromMessages(IEnumerable<ChatMessage> messages) =>
        new(new JsonArray(messages.Select(m => (JsonNode?)m.ToJson()).ToArray()));

    /// <summary>A copy with one more variable (JSON null defines it as None).</summary>
    public ChatTemplateRequest WithVariable(string name, JsonNode? value)
    {
        var vars = new Dictionary<string, JsonNode?>(Variables, StringComparer.Ordinal) { [name] = value };
        return this with { Variables = vars };
    }

    /// <summary>
    /// What transformers' <c>apply_chat_template</c> passes: the tokenizer's special tokens (<c>bos_token</c>, <c>eos_token</c>,
    /// <c>unk_token</c>, <c>sep_token</c>, <c>pad_token</c>, <c>cls_token</c>, <c>mask_token</c>, <c>additional_special_tokens</c>,
    /// those the config sets), <c>tools</c> and <c>documents</c> (None when not given) and any extra variables, which win.
    /// </summary>
    public static ChatTemplateRequest ForModel(JsonArray messages, TokenizerConfig? config, JsonArray? tools = null, JsonArray? documents = null,
        IReadOnlyDictionary<string, JsonNode?>? extraVariables = null)
    {
        var vars = new Dictionary<string, JsonNode?>(StringComparer.Ordinal);
        if (config is not null)
        {
            foreach (var key in new[] { "bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token" })
            {
                var token = key switch
                {
                    "bos_token" => config.BosToken,
                    "eos_token" => config.EosToken,
                    "unk_token" => config.UnkToken,
                    "pad_token" => config.PadToken,
                    _ => TokenizerConfig.ParseToken(config.Raw[key], config.Path, key),
                };
                if (token is not null) vars[key] = token.Content;
            }
            if (config.AdditionalSpecialTokens.Count > 0)
                vars["additional_special_tokens"] = new JsonArray(config.AdditionalSpecialTokens.Select(t => (JsonNode?)t.Content).ToArray());
        }
        vars["tools"] = tools?.DeepClone();
        vars["documents"] = documents?.DeepClone();
        if (extraVariables is not null)
        {
            foreach (var (k, v) in extraVariables) vars[k] = v;
        }
        return new ChatTemplateRequest(messages) { Variables = vars };
    }
}

/// <summary>A [Start, End) range of UTF-16 code units in a rendered prompt.</summary>
public readonly record struct TextSpan(int Start, int End)
{
    public int Length => End - Start;
}

/// <summary>
/// Where message <see cref="Index"/> landed in the rendered prompt: its turn spans [Start, End); for an assistant message
/// [ContentStart, End) is what the model generates after the generation prompt (the range to train on).
/// </summary>
public sealed record MessageSpan(int Index, string Role, int Start, int ContentStart, int End)
{
    /// <summary>The range the model must produce: [ContentStart, End).</summary>
    public TextSpan Generated => new(ContentStart, End);
}

/// <summary>A rendered prompt with the ranges that came from assistant turns.</summary>
public sealed record ChatRendering(string Text, IReadOnlyList<TextSpan> AssistantSpans)
{
    /// <summary>Per message (only from <see cref="ChatTemplate.RenderWithMessageSpans"/>), else null.</summary>
    public IReadOnlyList<MessageSpan>? Messages { get; init; }

    /// <summary>Per UTF-16 code unit of <see cref="Text"/>: true inside an assistant span.</summary>
    public bool[] AssistantMask()
    {
        var mask = new bool[Text.Length];
        foreach (var s in AssistantSpans) Array.Fill(mask, true, s.Start, s.Length);
        return mask;
    }
}
