using System.Text.Json.Nodes;
using FuseSharp.Tokenization;
using FuseSharp.Tokenization.ChatTemplates;

namespace FuseSharp.Training.Data;

/// <summary>
/// <see cref="IChatRenderer"/> with a model's own chat template (the jinja engine): the conversation is rendered with
/// the tokenizer's special-token variables (<c>bos_token</c>, <c>eos_token</c>, ...) and the assistant ranges come from
/// <see cref="ChatTemplate.RenderForTraining"/>: the <c>{% generation %}</c> blocks when the template has them
/// (transformers' <c>return_assistant_tokens_mask</c>), otherwise each assistant turn from after its role header to
/// the end of its rendering (end-of-turn marker included).
/// </summary>
public sealed class TemplateChatRenderer : IChatRenderer
{
    private readonly ChatTemplate _template;
    private readonly TokenizerConfig? _config;

    public TemplateChatRenderer(ChatTemplate template, TokenizerConfig? config)
    {
        _template = template ?? throw new ArgumentNullException(nameof(template));
        _config = config;
    }

    /// <summary>The default chat template of a model folder (tokenizer_config.json or chat_template.jinja).</summary>
    /// <exception cref="TokenizerException">The folder has no tokenizer configuration or no chat template.</exception>
    public static TemplateChatRenderer ForModel(string folder)
    {
        var config = TokenizerConfig.Load(folder);
        return new TemplateChatRenderer(ChatTemplate.FromConfig(config), config);
    }

    public RenderedChat Render(IReadOnlyList<ChatTurn> messages)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var json = new JsonArray(messages.Select(m => (JsonNode?)new JsonObject { ["role"] = m.Role, ["content"] = m.Content }).ToArray());
        var rendering = _template.RenderForTraining(ChatTemplateRequest.ForModel(json, _config));
        return new RenderedChat(rendering.Text, rendering.AssistantSpans.Select(s => (s.Start, s.End)).ToList());
    }
}
