using System.Text.Json.Nodes;
using FuseSharp.Cli.Commands;
using Xunit;

namespace FuseSharp.Tests.Tokenization.ChatTemplates;

/// <summary><c>fusesharp chat-template</c>: a model folder, a config file or a .jinja file; bos/eos overrides; tools; errors.</summary>
public sealed class ChatTemplateCommandTests : IDisposable
{
    private static readonly string Fixtures = Path.Combine(AppContext.BaseDirectory, "Fixtures", "chat_templates");
    private readonly string dir = Path.Combine(Path.GetTempPath(), "fusesharp-chatcli-" + Guid.NewGuid().ToString("N"));

    public ChatTemplateCommandTests() => Directory.CreateDirectory(dir);

    public void Dispose() => Directory.Delete(dir, recursive: true);

    private string Write(string name, string text)
    {
        var path = Path.Combine(dir, name);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, text);
        return path;
    }

    private static ChatTemplateCommand.Options Options(string tokenizer, string messages) =>
        new(tokenizer, messages, AddGenerationPrompt: false, ContinueFinalMessage: false, BosToken: null, EosToken: null, Tools: null,
            Documents: null, TemplateName: null, Variables: [], Now: null, Json: false);

    private const string Messages = """[{"role": "user", "content": "Hello, how are you?"}, {"role": "assistant", "content": "Fine."}, {"role": "user", "content": "Good."}]""";

    [Fact]
    public void ModelFolder_UsesTheConfigTemplateAndSpecialTokens()
    {
        var template = File.ReadAllText(Path.Combine(Fixtures, "from_tokenizer_configs", "mistral-7b-instruct-v0.2.jinja"));
        var config = new JsonObject
        {
            ["bos_token"] = new JsonObject { ["__type"] = "AddedToken", ["content"] = "<s>", ["special"] = true },
            ["eos_token"] = "</s>",
            ["chat_template"] = template,
        };
        Write("model/tokenizer_config.json", config.ToJsonString());
        var messages = Write("m.json", Messages);
        var output = ChatTemplateCommand.Execute(Options(Path.Combine(dir, "model"), messages) with { AddGenerationPrompt = true });
        Assert.Equal("<s>[INST] Hello, how are you? [/INST]Fine.</s>[INST] Good. [/INST]", output);
        // --bos-token / --eos-token override the tokenizer's.
        output = ChatTemplateCommand.Execute(Options(Path.Combine(dir, "model", "tokenizer_config.json"), messages) with { BosToken = "", EosToken = "<E>" });
        Assert.Equal("[INST] Hello, how are you? [/INST]Fine.<E>[INST] Good. [/INST]", output);
    }

    [Fact]
    public void JinjaFile_WithTokensFromTheCommandLine()
    {
        var template = Path.Combine(Fixtures, "from_tokenizer_configs", "phi-3-mini-4k-instruct.jinja");
        var messages = Write("m.json", """{"messages": [{"role": "user", "content": "Hi"}]}""");
        Assert.Equal("<|user|>\nHi<|end|>\n<|endoftext|>", ChatTemplateCommand.Execute(Options(template, messages) with { EosToken = "<|endoftext|>" }));
        Assert.Equal("<|user|>\nHi<|end|>\n<|assistant|>\n", ChatTemplateCommand.Execute(Options(template, messages) with { AddGenerationPrompt = true }));
    }

    [Fact]
    public void ToolsVariablesAndClock()
    {
        var template = Write("t.jinja", "{{ tools | map(attribute='name') | join(',') }}|{{ documents }}|{{ enable_thinking }}|{{ extra }}|{{ strftime_now('%d %b %Y') }}");
        var messages = Write("m.json", """{"messages": [], "extra": [1, 2]}""");
        var tools = Write("tools.json", """[{"name": "a"}, {"name": "b"}]""");
        var output = ChatTemplateCommand.Execute(Options(template, messages) with { Tools = tools, Variables = ["enable_thinking=false"], Now = "2024-07-26T10:00:00" });
        Assert.Equal("a,b|None|False|[1, 2]|26 Jul 2024", output);
    }

    [Fact]
    public void Json_ReportsAssistantSpans()
    {
        var template = Write("t.jinja", "{% for m in messages %}<{{ m.role }}>{{ m.content }}</{{ m.role }}>{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}");
        var messages = Write("m.json", Messages);
        var json = JsonNode.Parse(ChatTemplateCommand.Execute(Options(template, messages) with { Json = true }))!;
        var text = json["text"]!.GetValue<string>();
        var spans = json["assistant_spans"]!.AsArray();
        Assert.Single(spans);
        Assert.Equal("Fine.</assistant>", text[spans[0]![0]!.GetValue<int>()..spans[0]![1]!.GetValue<int>()]);
        Assert.Equal(3, json["messages"]!.AsArray().Count);
    }

    [Fact]
    public void BadInput_IsOneClearError()
    {
        var template = Write("t.jinja", "{{ messages[0].content }}");
        Assert.Throws<FuseSharpException>(() => ChatTemplateCommand.Execute(Options(template, Write("bad.json", "[{\"role\": \"user\", "))));
        Assert.Throws<FuseSharpException>(() => ChatTemplateCommand.Execute(Options(template, Write("obj.json", "{\"role\": \"user\"}"))));
        Assert.Throws<FuseSharpException>(() => ChatTemplateCommand.Execute(Options(template, Write("norole.json", "[{\"content\": \"x\"}]"))));
        Assert.Throws<FuseSharpException>(() => ChatTemplateCommand.Execute(Options(template, Write("dup.json", "[{\"role\": \"user\", \"role\": \"x\"}]"))));
        Assert.Throws<FuseSharpException>(() => ChatTemplateCommand.Execute(Options(Path.Combine(dir, "missing.jinja"), Write("m.json", Messages))));
        Assert.Throws<FuseSharpException>(() => ChatTemplateCommand.Execute(Options(template, Write("m2.json", Messages)) with { Variables = ["novalue"] }));
        var e = Assert.Throws<FuseSharp.Tokenization.ChatTemplates.ChatTemplateException>(() =>
            ChatTemplateCommand.Execute(Options(Write("broken.jinja", "a\n{% for %}"), Write("m3.json", Messages))));
        Assert.Equal(2, e.Line);
    }
}
