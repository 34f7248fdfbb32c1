using System.Text.Json.Nodes;
using FuseSharp.Tokenization;
using FuseSharp.Tokenization.ChatTemplates;
using Xunit;

namespace FuseSharp.Tests.Tokenization.ChatTemplates;

/// <summary>
/// The library API other areas use: assistant spans for loss masking (transformers' <c>{% generation %}</c> tracker and
/// the prefix-rendering fallback), <c>continue_final_message</c>, the variables transformers passes, named templates and
/// the template precedence of a model folder.
/// </summary>
public sealed class ChatTemplateApiTests : IDisposable
{
    private const string ChatMl =
        "{% for m in messages %}{{ '<|im_start|>' + m.role + '\\n' + m.content + '<|im_end|>\\n' }}{% endfor %}" +
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

    private const string WithGeneration = """
        {%- for m in messages -%}
        {%- if m.role == 'assistant' -%}
        <|assistant|>{% generation %}{{ m.content }}<|end|>{% endgeneration %}
        {%- else -%}
        <|{{ m.role }}|>{{ m.content }}<|end|>
        {%- endif -%}
        {%- endfor -%}
        """;

    private readonly string folder = Path.Combine(Path.GetTempPath(), "fusesharp-chat-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
    }

    private static ChatTemplateRequest Conversation(params (string Role, string Content)[] messages) =>
        ChatTemplateRequest.FromMessages(messages.Select(m => new ChatMessage(m.Role, m.Content)));

    [Fact]
    public void GenerationSpans_MatchTransformersAssistantTracker()
    {
        var request = Conversation(("user", "Hi"), ("assistant", "Hello"), ("user", "Bye"), ("assistant", "Ciao"));
        var template = ChatTemplate.Parse(WithGeneration);
        Assert.True(template.HasGenerationBlocks);
        var r = template.RenderWithGenerationSpans(request);
        Assert.Equal("<|user|>Hi<|end|><|assistant|>Hello<|end|><|user|>Bye<|end|><|assistant|>Ciao<|end|>", r.Text);
        // transformers' _render_with_assistant_indices gives [(30, 42), (73, 84)] for this template and conversation.
        Assert.Equal([new TextSpan(30, 42), new TextSpan(73, 84)], r.AssistantSpans);
        var mask = r.AssistantMask();
        Assert.Equal(12 + 11, mask.Count(b => b));
        Assert.True(mask[30] && !mask[29] && mask[41] && !mask[42]);
        var training = template.RenderForTraining(request);
        Assert.Equal(r.Text, training.Text);
        Assert.Equal(r.AssistantSpans, training.AssistantSpans);
    }

    [Fact]
    public void MessageSpans_FromPrefixRenderings()
    {
        var request = Conversation(("system", "Be brief."), ("user", "Hi"), ("assistant", "Hello"), ("user", "Bye"), ("assistant", "Ciao"));
        var r = ChatTemplate.Parse(ChatMl).RenderWithMessageSpans(request);
        Assert.Equal(ChatTemplate.Parse(ChatMl).Render(request), r.Text);
        var spans = r.Messages!;
        Assert.Equal(5, spans.Count);
        Assert.Equal("<|im_start|>system\nBe brief.<|im_end|>\n", r.Text[spans[0].Start..spans[0].End]);
        Assert.Equal("<|im_start|>user\nHi<|im_end|>\n", r.Text[spans[1].Start..spans[1].End]);
        Assert.Equal("<|im_start|>assistant\nHello<|im_end|>\n", r.Text[spans[2].Start..spans[2].End]);
        // The trained part of an assistant turn starts after the generation prompt and ends with the end-of-turn tokens.
        Assert.Equal(["Hello<|im_end|>\n", "Ciao<|im_end|>\n"], r.AssistantSpans.Select(s => r.Text[s.Start..s.End]));
        Assert.Equal(spans[2].Generated, r.AssistantSpans[0]);
        Assert.Equal(r.Text.Length, spans[^1].End);
        for (int i = 1; i < spans.Count; i++) Assert.Equal(spans[i - 1].End, spans[i].Start);
        Assert.Equal(r.AssistantSpans, ChatTemplate.Parse(ChatMl).RenderForTraining(request).AssistantSpans);
    }

    [Fact]
    public void MessageSpans_TemplateThatCannotRenderAnEmptyConversation()
    {
        // messages[0] on an empty list is undefined and its ['role'] fails: the first message then starts at 0.
        const string template = "{{ bos_token }}{% if messages[0]['role'] == 'system' %}[S]{% endif %}" +
                                "{% for m in messages %}<{{ m.role }}>{{ m.content }}</{{ m.role }}>{% endfor %}";
        var request = Conversation(("user", "a"), ("assistant", "b")).WithVariable("bos_token", "<s>");
        var r = ChatTemplate.Parse(template).RenderWithMessageSpans(request);
        Assert.Equal("<s><user>a</user><assistant>b</assistant>", r.Text);
        Assert.Equal(0, r.Messages![0].Start);
        // Without a generation prompt in the template, the whole assistant turn is what the model produces.
        Assert.Equal(["<assistant>b</assistant>"], r.AssistantSpans.Select(s => r.Text[s.Start..s.End]));
    }

    [Fact]
    public void MessageSpans_RejectTemplatesThatRewriteEarlierTurns()
    {
        // Reasoning is shown only for turns after the last user query, so a prefix renders differently than in the whole.
        const string template =
            "{% for m in messages %}{% if m.role == 'assistant' and loop.last %}<a>{{ m.content }}</a>" +
            "{% elif m.role == 'assistant' %}<a>{{ m.content.split('</think>')[-1] }}</a>{% else %}<u>{{ m.content }}</u>{% endif %}{% endfor %}";
        var request = Conversation(("user", "q1"), ("assistant", "<think>r1</think>a1"), ("user", "q2"), ("assistant", "<think>r2</think>a2"));
        var e = Assert.Throws<ChatTemplateException>(() => ChatTemplate.Parse(template).RenderWithMessageSpans(request));
        Assert.Equal(ChatTemplateErrorKind.Unsupported, e.Kind);
        Assert.Contains("not a prefix", e.Detail, StringComparison.Ordinal);
        Assert.Contains("{% generation %}", e.Hint, StringComparison.Ordinal);
    }

    [Fact]
    public void ContinueFinalMessage_CutsAfterTheFinalContent()
    {
        var request = Conversation(("user", "Hi"), ("assistant", "Partial answer")) with { ContinueFinalMessage = true };
        Assert.Equal("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nPartial answer", ChatTemplate.Parse(ChatMl).Render(request));
        // A template that trims the content loses the tag's trailing space; transformers then strips trailing whitespace.
        var trimming = ChatTemplate.Parse("{% for m in messages %}[{{ m.content | trim }}]{% endfor %}");
        var request2 = Conversation(("user", "Hi"), ("assistant", "Partial ")) with { ContinueFinalMessage = true };
        Assert.Equal("[Hi][Partial", trimming.Render(request2));
        var dropping = ChatTemplate.Parse("{% for m in messages if m.role == 'user' %}{{ m.content }}{% endfor %}");
        Assert.Throws<ChatTemplateException>(() => dropping.Render(request2));
    }

    [Fact]
    public void ForModel_PassesWhatTransformersPasses()
    {
        var config = WriteConfig(new JsonObject
        {
            ["bos_token"] = new JsonObject { ["__type"] = "AddedToken", ["content"] = "<s>" },
            ["eos_token"] = "</s>",
            ["pad_token"] = "<pad>",
            ["additional_special_tokens"] = new JsonArray("<x>", "<y>"),
            ["chat_template"] = "unused",
        });
        const string template = "{{ bos_token }}|{{ eos_token }}|{{ pad_token }}|{{ unk_token is defined }}|{{ additional_special_tokens }}|" +
                                "{{ tools is none }}|{{ documents is none }}|{{ enable_thinking }}";
        var request = ChatTemplateRequest.ForModel([], config, extraVariables: new Dictionary<string, JsonNode?> { ["enable_thinking"] = false });
        Assert.Equal("<s>|</s>|<pad>|False|['<x>', '<y>']|True|True|False", ChatTemplate.Parse(template).Render(request));
        var tools = new JsonArray(new JsonObject { ["name"] = "f" });
        Assert.Equal("f", ChatTemplate.Parse("{{ tools[0].name }}").Render(ChatTemplateRequest.ForModel([], config, tools)));
    }

    [Fact]
    public void Config_TemplateFilesTakePriorityAndNamedTemplatesAreSelected()
    {
        var configJson = new JsonObject
        {
            ["chat_template"] = new JsonArray(
                new JsonObject { ["name"] = "default", ["template"] = "config-default" },
                new JsonObject { ["name"] = "tool_use", ["template"] = "config-tools" }),
        };
        var config = WriteConfig(configJson);
        Assert.Equal("config-default", ChatTemplate.FromConfig(config).Source);
        Assert.Equal("config-tools", ChatTemplate.FromConfig(config, withTools: true).Source);
        Assert.Equal("config-tools", ChatTemplate.FromConfig(config, "tool_use").Source);
        var missing = Assert.Throws<TokenizerException>(() => ChatTemplate.FromConfig(config, "rag"));
        Assert.Contains("default, tool_use", missing.Message, StringComparison.Ordinal);

        // transformers: chat_template.jinja (and additional_chat_templates/*.jinja) replace the config's templates.
        File.WriteAllText(Path.Combine(folder, "chat_template.jinja"), "file-default\n");
        Directory.CreateDirectory(Path.Combine(folder, "additional_chat_templates"));
        File.WriteAllText(Path.Combine(folder, "additional_chat_templates", "rag.jinja"), "file-rag");
        config = TokenizerConfig.Load(folder);
        Assert.Equal(["default", "rag"], config.ChatTemplates.Keys.Order());
        Assert.Equal("file-default", ChatTemplate.FromConfig(config).Render(Conversation()));
        Assert.Equal("file-rag", ChatTemplate.FromConfig(config, "rag").Render(Conversation()));
    }

    [Fact]
    public void Config_WithoutTemplate_IsAClearError()
    {
        var config = WriteConfig(new JsonObject { ["eos_token"] = "</s>" });
        var e = Assert.Throws<TokenizerException>(() => ChatTemplate.FromConfig(config));
        Assert.Contains("no chat template", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TemplateFile_MustBeUtf8()
    {
        Directory.CreateDirectory(folder);
        var path = Path.Combine(folder, "bad.jinja");
        File.WriteAllBytes(path, [0x7B, 0x7B, 0x20, 0xFF, 0x20, 0x7D, 0x7D]);
        var e = Assert.Throws<TokenizerException>(() => ChatTemplate.LoadFile(path));
        Assert.Contains("not valid UTF-8", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Rendering_IsThreadSafe()
    {
        var template = ChatTemplate.Parse(ChatMl);
        var expected = Enumerable.Range(0, 64).Select(i => template.Render(Conversation(("user", "m" + i)))).ToArray();
        var actual = new string[64];
        Parallel.For(0, 64, i => actual[i] = template.Render(Conversation(("user", "m" + i))));
        Assert.Equal(expected, actual);
    }

    [Fact]
    public void Messages_KeepJsonNumberTypes()
    {
        // json.loads gives int for 1 and float for 1.0; tojson writes them back the same way.
        var messages = (JsonArray)JsonNode.Parse("""[{"role": "user", "content": "x", "n": 1, "f": 1.0, "big": 12345678901, "e": 1e3}]""")!;
        var r = ChatTemplate.Parse("{{ messages[0].n }} {{ messages[0].f }} {{ messages[0].big }} {{ messages[0].e }} {{ messages[0] | tojson }}")
            .Render(new ChatTemplateRequest(messages));
        Assert.Equal("1 1.0 12345678901 1000.0 {\"role\": \"user\", \"content\": \"x\", \"n\": 1, \"f\": 1.0, \"big\": 12345678901, \"e\": 1000.0}", r);
    }

    private TokenizerConfig WriteConfig(JsonObject json)
    {
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"), json.ToJsonString());
        return TokenizerConfig.Load(folder);
    }
}
