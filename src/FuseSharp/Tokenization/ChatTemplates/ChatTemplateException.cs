namespace FuseSharp.Tokenization.ChatTemplates;

/// <summary>What went wrong while parsing or rendering a chat template.</summary>
public enum ChatTemplateErrorKind
{
    /// <summary>The template is not valid Jinja (jinja2 would raise <c>TemplateSyntaxError</c>).</summary>
    Syntax,

    /// <summary>Valid Jinja that FuseSharp does not implement (e.g. <c>{% include %}</c>, the <c>urlize</c> filter).</summary>
    Unsupported,

    /// <summary>An operation on an undefined value that jinja2's default <c>Undefined</c> rejects (<c>UndefinedError</c>).</summary>
    Undefined,

    /// <summary>A Python-level error: wrong types, division by zero, a missing filter (<c>TypeError</c>, <c>ValueError</c>, ...).</summary>
    Runtime,

    /// <summary>Something the immutable sandbox forbids (<c>list.append</c>, attributes starting with <c>_</c>).</summary>
    Security,

    /// <summary>The template called <c>raise_exception(message)</c>; <see cref="ChatTemplateException.Detail"/> is that message.</summary>
    Raised,
}

/// <summary>
/// A chat template that cannot be parsed or rendered. <see cref="ChatTemplateException.Line"/> is the 1-based template
/// line (0 when unknown) and <see cref="Detail"/> the message without location; for <see cref="ChatTemplateErrorKind.Raised"/>
/// the detail is exactly the string the template passed to <c>raise_exception</c>.
/// </summary>
public sealed class ChatTemplateException : TokenizerException
{
    public ChatTemplateException() : this("chat template error", ChatTemplateErrorKind.Runtime) { }

    public ChatTemplateException(string message) : this(message, ChatTemplateErrorKind.Runtime) { }

    public ChatTemplateException(string message, Exception inner) : base(message, inner) => Detail = message;

    public ChatTemplateException(string detail, ChatTemplateErrorKind kind, int line = 0, string? hint = null)
        : base(detail, hint ?? DefaultHint(kind))
    {
        Detail = detail;
        Kind = kind;
        Line = line;
    }

    /// <summary>The message without the template name and line.</summary>
    public string Detail { get; }

    public ChatTemplateErrorKind Kind { get; }

    /// <summary>1-based template line where it happened, or 0.</summary>
    public int Line { get; internal set; }

    /// <summary>The template's name (a file path, or "chat_template" / the named template), set by the renderer.</summary>
    public string? TemplateName { get; internal set; }

    public override string Message
    {
        get
        {
            var where = TemplateName ?? "chat template";
            if (Line > 0) where += $", line {Line}";
            return Kind == ChatTemplateErrorKind.Raised ? $"{where}: the template raised an error: {Detail}" : $"{where}: {Detail}";
        }
    }

    /// <summary>Sets <see cref="Line"/> if unknown; returns false so it can be used as an exception filter that does not catch.</summary>
    internal bool StampLine(int line)
    {
        if (Line == 0 && line > 0) Line = line;
        return false;
    }

    private static string? DefaultHint(ChatTemplateErrorKind kind) => kind switch
    {
        ChatTemplateErrorKind.Raised => "the template rejects this conversation (check roles, their order and the fields it needs)",
        ChatTemplateErrorKind.Unsupported => "FuseSharp implements the Jinja subset that chat templates use; rewrite this part of the template or report it",
        ChatTemplateErrorKind.Undefined => "a variable or message field the template needs is missing; pass it in the messages or as an extra variable",
        _ => null,
    };
}
