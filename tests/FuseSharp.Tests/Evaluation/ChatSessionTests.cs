using FuseSharp.Evaluation;
using FuseSharp.Models;
using FuseSharp.Tests.Models;
using FuseSharp.Tokenization.ChatTemplates;
using Xunit;

namespace FuseSharp.Tests.Evaluation;

public class ChatSessionTests
{
    private const string Template =
        "{{ bos_token }}{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}{% if add_generation_prompt %}[assistant] {% endif %}";

    [Fact]
    public void Turns_AreRenderedWithTheTemplate_AndRepliesJoinTheConversation()
    {
        using var model = TransformerModel.Load(ModelFixtures.Folder("stories260K"));
        var tok = new ByteTokenizer();
        var template = ChatTemplate.Parse(Template);
        var session = new ChatSession(model, tok, template, config: null, system: "Be brief.");
        var options = new GenerationOptions { MaxNewTokens = 6 };

        var first = session.Reply("Hi", options);
        // The reply is what plain generation gives for the rendered prompt, encoded without special tokens.
        var expected = Generator.Generate(model, tok.Encode("[system] Be brief.\n[user] Hi\n[assistant] ").Ids, options, tok);
        Assert.Equal(expected.NewIds, first.NewIds);
        Assert.Equal(["system", "user", "assistant"], session.Messages.Select(m => m.Role));
        Assert.Equal(first.Text, session.Messages[^1].Content);

        session.Reply("More", options);
        Assert.Equal(5, session.Messages.Count);
        Assert.StartsWith($"[system] Be brief.\n[user] Hi\n[assistant] {first.Text}\n[user] More\n", session.RenderPrompt(), StringComparison.Ordinal);
    }

    [Fact]
    public void FailedTurn_LeavesTheConversationUnchanged()
    {
        using var model = TransformerModel.Load(ModelFixtures.Folder("llama-tiny")); // 64 positions: a long message does not fit
        var session = new ChatSession(model, new ByteTokenizer(), ChatTemplate.Parse(Template));
        Assert.Throws<ModelInputException>(() => session.Reply(new string('a', 100), new GenerationOptions { MaxNewTokens = 2 }));
        Assert.Empty(session.Messages);
    }
}
