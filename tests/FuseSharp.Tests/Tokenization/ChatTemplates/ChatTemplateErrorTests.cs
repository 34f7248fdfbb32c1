using System.Text.Json.Nodes;
using FuseSharp.Tokenization;
using FuseSharp.Tokenization.ChatTemplates;
using Xunit;

namespace FuseSharp.Tests.Tokenization.ChatTemplates;

/// <summary>
/// Bad templates and bad conversations fail with one <see cref="ChatTemplateException"/> (a <see cref="TokenizerException"/>)
/// that says what and where (template name and line), never with a wrong rendering, a crash or a stack overflow.
/// </summary>
public class ChatTemplateErrorTests
{
    private static ChatTemplateException Fail(string template, string name = "chat_template")
    {
        var request = ChatTemplateRequest.FromMessages([new ChatMessage("user", "hi")]);
        return Assert.Throws<ChatTemplateException>(() => ChatTemplate.Parse(template, name).Render(request));
    }

    [Theory]
    [InlineData("line1\n{% if x %}\n{{ 1 + }}\n{% endif %}", 3, "unexpected 'end of print statement'")]
    [InlineData("{% for m in messages %}\n{{ m.role }}\n{% endfor %}\n{% if true %}\nnever closed", 5,
        "Unexpected end of template. Jinja was looking for the following tags: 'elif' or 'else' or 'endif'. The innermost block that needs to be closed is 'if'.")]
    [InlineData("ok\n{% endfor %}", 2, "Encountered unknown tag 'endfor'.")]
    [InlineData("{% do messages.append(1) %}", 1, "Encountered unknown tag 'do'. ('do' needs the jinja2.ext.do extension, which transformers does not enable.)")]
    [InlineData("{{ '\\x4' }}", 1, "truncated \\xXX escape")]
    [InlineData("\n\n{% break %}", 3, "'break' outside loop")]
    [InlineData("{{ 'unterminated }}", 1, "unexpected char \"'\" at 3")]
    [InlineData("{# never closed", 1, "Missing end of comment tag")]
    [InlineData("{{ (1, 2 }}", 1, "unexpected '}', expected ')'")]
    [InlineData("{% macro m(a=1, b) %}{% endmacro %}", 1, "non-default argument follows default argument")]
    [InlineData("{% set 1 = 2 %}", 1, "can't assign to 'const'")]
    public void SyntaxErrors_NameTheLine(string template, int line, string detail)
    {
        var e = Fail(template, "my.jinja");
        Assert.Equal(ChatTemplateErrorKind.Syntax, e.Kind);
        Assert.Equal(line, e.Line);
        Assert.Equal(detail, e.Detail);
        Assert.StartsWith($"my.jinja, line {line}: ", e.Message, StringComparison.Ordinal);
        Assert.IsAssignableFrom<TokenizerException>(e);
    }

    [Theory]
    [InlineData("a\n{% include 'other.jinja' %}", 2, "include")]
    [InlineData("{% extends 'base.jinja' %}", 1, "extends")]
    [InlineData("{% import 'm.jinja' as m %}", 1, "import")]
    [InlineData("{% block body %}x{% endblock %}", 1, "block")]
    [InlineData("x\n\n{{ messages | random }}", 3, "random")]
    [InlineData("{{ 'text' | wordwrap(3) }}", 1, "wordwrap")]
    [InlineData("{{ messages | map(attribute='role') }}", 1, "generator")]
    [InlineData("{{ 2 ** 100000000 }}", 1, "integer power too large")]
    [InlineData("{{ '\\N{BULLET}' }}", 1, "\\N{...}")]
    [InlineData("{{ lipsum() }}", 1, "lipsum")]
    public void UnsupportedConstructs_FailNamingTheConstructAndLine(string template, int line, string construct)
    {
        var e = Fail(template);
        Assert.Equal(ChatTemplateErrorKind.Unsupported, e.Kind);
        Assert.Equal(line, e.Line);
        Assert.Contains(construct, e.Detail, StringComparison.Ordinal);
        Assert.NotNull(e.Hint);
    }

    [Theory]
    [InlineData("{{ foo.bar }}", ChatTemplateErrorKind.Undefined, "'foo' is undefined")]
    [InlineData("{{ messages[0].nope.deeper }}", ChatTemplateErrorKind.Undefined, "'dict object' has no attribute 'nope'")]
    [InlineData("{{ messages[3].role }}", ChatTemplateErrorKind.Undefined, "list object has no element 3")]
    [InlineData("{{ nothing + 1 }}", ChatTemplateErrorKind.Undefined, "'nothing' is undefined")]
    [InlineData("{{ messages.append(1) }}", ChatTemplateErrorKind.Security, "access to attribute 'append' of 'list' object is unsafe.")]
    [InlineData("{{ messages[0].content.__class__.__mro__ }}", ChatTemplateErrorKind.Security, "access to attribute '__class__' of 'str' object is unsafe.")]
    [InlineData("{{ messages[0].update({}) }}", ChatTemplateErrorKind.Security, "access to attribute 'update' of 'dict' object is unsafe.")]
    [InlineData("{% set x = 'a' %}{{ x + 1 }}", ChatTemplateErrorKind.Runtime, "TypeError: can only concatenate str (not \"int\") to str")]
    [InlineData("{{ 1 / 0 }}", ChatTemplateErrorKind.Runtime, "ZeroDivisionError: division by zero")]
    [InlineData("{{ 'x' < 1 }}", ChatTemplateErrorKind.Runtime, "TypeError: '<' not supported between instances of 'str' and 'int'")]
    [InlineData("{{ messages | selectattr('role') | length }}", ChatTemplateErrorKind.Runtime, "TypeError: object of type 'generator' has no len()")]
    [InlineData("{{ none | tojson }}{{ foo | tojson }}", ChatTemplateErrorKind.Runtime, "TypeError: Object of type Undefined is not JSON serializable")]
    [InlineData("{% set a, b = [1] %}", ChatTemplateErrorKind.Runtime, "ValueError: not enough values to unpack (expected 2, got 1)")]
    [InlineData("{% macro m(a) %}{% endmacro %}{{ m(1, 2) }}", ChatTemplateErrorKind.Runtime, "TypeError: macro 'm' takes not more than 1 argument(s)")]
    [InlineData("{{ x | nosuch }}", ChatTemplateErrorKind.Syntax, "No filter named 'nosuch'.")]
    [InlineData("{{ x is nosuch }}", ChatTemplateErrorKind.Syntax, "No test named 'nosuch'.")]
    [InlineData("{{ range(200000) | length }}", ChatTemplateErrorKind.Unsupported, "OverflowError: Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).")]
    public void RuntimeErrors_AsJinja2ReportsThem(string template, ChatTemplateErrorKind kind, string detail)
    {
        var e = Fail(template);
        Assert.Equal(kind, e.Kind);
        Assert.Equal(detail, e.Detail);
        Assert.Equal(1, e.Line);
    }

    [Fact]
    public void RaiseException_CarriesTheTemplatesMessageAndLine()
    {
        var e = Fail("{% for m in messages %}\n{% if m.role != 'assistant' %}\n{{ raise_exception('Only assistant roles are supported!') }}\n{% endif %}\n{% endfor %}");
        Assert.Equal(ChatTemplateErrorKind.Raised, e.Kind);
        Assert.Equal("Only assistant roles are supported!", e.Detail);
        Assert.Equal(3, e.Line);
        Assert.Contains("the template raised an error: Only assistant roles are supported!", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void RunawayRecursion_IsAnErrorNotAStackOverflow()
    {
        var e = Fail("{% macro m(n) %}{{ m(n + 1) }}{% endmacro %}{{ m(0) }}");
        Assert.Equal(ChatTemplateErrorKind.Runtime, e.Kind);
        Assert.Contains("RecursionError", e.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void DeeplyNestedInput_IsRejected()
    {
        var e = Fail("{{ " + new string('(', 5000) + "1" + new string(')', 5000) + " }}");
        Assert.Equal(ChatTemplateErrorKind.Syntax, e.Kind);
        var blocks = string.Concat(Enumerable.Repeat("{% if true %}", 5000)) + string.Concat(Enumerable.Repeat("{% endif %}", 5000));
        Assert.Equal(ChatTemplateErrorKind.Syntax, Fail(blocks).Kind);
        Assert.Equal("x", ChatTemplate.Parse(string.Concat(Enumerable.Repeat("{% if true %}", 50)) + "x" + string.Concat(Enumerable.Repeat("{% endif %}", 50)))
            .Render(new ChatTemplateRequest([])));
    }

    [Fact]
    public void RequestVariables_CannotShadowMessages()
    {
        var request = new ChatTemplateRequest([]) { Variables = new Dictionary<string, JsonNode?> { ["messages"] = new JsonArray() } };
        Assert.Throws<ArgumentException>(() => ChatTemplate.Parse("x").Render(request));
    }
}
