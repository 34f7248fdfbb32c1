using System.Text.Json.Nodes;
using FuseSharp.Tokenization.ChatTemplates;
using Xunit;

namespace FuseSharp.Tests.Tokenization.ChatTemplates;

/// <summary>
/// Every case of <c>Fixtures/chat_templates/chat_cases.jsonl</c> (real templates rendered identically by jinja2 3.1.2
/// with transformers' settings and by @huggingface/jinja): the rendering must match byte for byte, and the
/// <c>raise_exception</c> cases must fail with exactly the template's message.
/// </summary>
public class ChatTemplateFixtureTests
{
    private static readonly string Root = Path.Combine(AppContext.BaseDirectory, "Fixtures", "chat_templates");

    private static int CaseCount => File.ReadLines(Path.Combine(Root, "chat_cases.jsonl")).Count(l => l.Length > 0);

    public static TheoryData<int> Cases()
    {
        var data = new TheoryData<int>();
        for (int i = 0; i < CaseCount; i++) data.Add(i);
        return data;
    }

    private static JsonObject Case(int index) =>
        JsonNode.Parse(File.ReadLines(Path.Combine(Root, "chat_cases.jsonl")).Where(l => l.Length > 0).ElementAt(index))!.AsObject();

    /// <summary>The rendering context the fixture README defines: a null token is not defined; extra_context is added.</summary>
    internal static ChatTemplateRequest Request(JsonObject c)
    {
        var vars = new Dictionary<string, JsonNode?>();
        foreach (var key in new[] { "bos_token", "eos_token" })
        {
            if (c[key] is { } token) vars[key] = token.DeepClone();
        }
        if (c["extra_context"] is JsonObject extra)
        {
            foreach (var (k, v) in extra) vars[k] = v?.DeepClone();
        }
        return new ChatTemplateRequest((JsonArray)c["messages"]!.DeepClone())
        {
            AddGenerationPrompt = c["add_generation_prompt"]!.GetValue<bool>(),
            Variables = vars,
        };
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void RendersExactlyAsJinja2(int index)
    {
        var c = Case(index);
        var file = c["template_file"]!.GetValue<string>();
        var template = ChatTemplate.LoadFile(Path.Combine(Root, file));
        var request = Request(c);
        if (c["expected"] is JsonValue expected)
        {
            Assert.Equal(expected.GetValue<string>(), template.Render(request));
        }
        else
        {
            var e = Assert.Throws<ChatTemplateException>(() => template.Render(request));
            Assert.Equal(ChatTemplateErrorKind.Raised, e.Kind);
            Assert.Equal(c["error"]!.GetValue<string>(), e.Detail);
        }
    }

    [Fact]
    public void CoversEveryTemplateFileAndBothOutcomes()
    {
        var cases = Enumerable.Range(0, CaseCount).Select(Case).ToList();
        var used = cases.Select(c => c["template_file"]!.GetValue<string>()).ToHashSet();
        var files = Directory.GetFiles(Root, "*.jinja", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(Root, f).Replace('\\', '/'));
        Assert.All(files, f => Assert.Contains(f, used));
        Assert.Contains(cases, c => c["expected"] is null);
        Assert.True(cases.Count >= 57);
    }
}
