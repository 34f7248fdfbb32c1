using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using FuseSharp.Tokenization.ChatTemplates.Jinja;

namespace FuseSharp.Tokenization.ChatTemplates;

/// <summary>
/// A parsed chat template, rendered the way transformers' <c>apply_chat_template</c> renders it: jinja2's
/// <c>ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)</c> with the loop-controls extension,
/// transformers' <c>{% generation %}</c> tag, <c>raise_exception</c>, <c>strftime_now</c> and its <c>tojson</c>.
/// Parse once and render many times; rendering is thread-safe.
/// </summary>
/// <remarks>
/// The interpreter implements the Jinja subset chat templates use with Python value semantics (see
/// <c>Jinja/Py.cs</c>). Anything it cannot reproduce exactly fails with a <see cref="ChatTemplateException"/> naming the
/// construct and the template line instead of rendering something different.
/// </remarks>
public sealed partial class ChatTemplate
{
    private const string ContinueTag = "CONTINUE_FINAL_MESSAGE_TAG ";
    private readonly List<Stmt> body;
    private readonly string[] rootSeeds;

    private ChatTemplate(string source, string name, List<Stmt> body)
    {
        Source = source;
        Name = name;
        this.body = body;
        rootSeeds = Scopes.AnalyzeFrame(body, new Symbols(null));
        HasGenerationBlocks = GenerationTag().IsMatch(source);
    }

    /// <summary>The template text.</summary>
    public string Source { get; }

    /// <summary>Where the template came from (a file path, or "chat_template"/a named template); used in error messages.</summary>
    public string Name { get; }

    /// <summary>True when the template marks assistant output with <c>{% generation %}</c> blocks.</summary>
    public bool HasGenerationBlocks { get; }

    /// <summary>Parses a template.</summary>
    /// <exception cref="ChatTemplateException">Invalid or unsupported Jinja; the message names the line.</exception>
    public static ChatTemplate Parse(string source, string name = "chat_template")
    {
        ArgumentNullException.ThrowIfNull(source);
        try
        {
            return new ChatTemplate(source, name, Parser.Parse(source));
        }
        catch (ChatTemplateException e)
        {
            e.TemplateName ??= name;
            throw;
        }
    }

    /// <summary>Reads a template file (<c>.jinja</c> or any text file).</summary>
    public static ChatTemplate LoadFile(string path)
    {
        if (!File.Exists(path)) throw new TokenizerException($"{path}: no such template file", "give a .jinja file or a model folder with a chat template");
        return Parse(TokenizerConfig.ReadTemplateFile(path), path);
    }

    /// <summary>
    /// The model's template, chosen as transformers does: <paramref name="templateName"/> when given; otherwise
    /// "tool_use" when <paramref name="withTools"/> and the model has one; otherwise "default".
    /// </summary>
    public static ChatTemplate FromConfig(TokenizerConfig config, string? templateName = null, bool withTools = false)
    {
        ArgumentNullException.ThrowIfNull(config);
        var templates = config.ChatTemplates;
        if (templates.Count == 0)
        {
            throw new TokenizerException($"{config.Path}: the tokenizer has no chat template (no chat_template in tokenizer_config.json, no chat_template.jinja)",
                "pass a template file with --tokenizer TEMPLATE.jinja");
        }
        string name = templateName ?? (withTools && templates.ContainsKey("tool_use") ? "tool_use" : "default");
        if (!templates.TryGetValue(name, out var source))
        {
            throw new TokenizerException($"{config.Path}: no chat template named '{name}' (available: {string.Join(", ", templates.Keys)})",
                "choose one of the available names with --template-name");
        }
        return Parse(source, name == "default" ? $"{config.Path} chat_template" : $"{config.Path} chat_template '{name}'");
    }

    /// <summary>Renders the prompt.</summary>
    /// <exception cref="ChatTemplateException">The template failed (including <c>raise_exception</c>, Kind Raised).</exception>
    public string Render(ChatTemplateRequest request) => RenderCore(Prepare(request), request.AddGenerationPrompt, null).Text;

    /// <summary>
    /// Renders and returns the ranges of <c>{% generation %}</c> blocks, as transformers'
    /// <c>return_assistant_tokens_mask=True</c> does (in characters; map them to tokens with the tokenizer's offsets).
    /// Templates without generation blocks give no spans; see <see cref="RenderForTraining"/>.
    /// </summary>
    public ChatRendering RenderWithGenerationSpans(ChatTemplateRequest request)
    {
        var spans = new List<(int, int)>();
        var (text, _) = RenderCore(Prepare(request), request.AddGenerationPrompt, spans);
        return new ChatRendering(text, spans.Select(s => new TextSpan(s.Item1, s.Item2)).ToList());
    }

    /// <summary>
    /// Renders and attributes the output to messages by rendering growing prefixes of the conversation: message i spans
    /// from the end of the rendering of messages[..i] to the end of the rendering of messages[..(i+1)]; for an
    /// assistant message the generated part starts after the rendering of messages[..i] with the generation prompt.
    /// </summary>
    /// <exception cref="ChatTemplateException">
    /// The template is not prefix-stable (an earlier turn renders differently once later messages exist, as in templates that
    /// drop the reasoning of earlier turns); use a template with <c>{% generation %}</c> blocks then.
    /// </exception>
    public ChatRendering RenderWithMessageSpans(ChatTemplateRequest request)
    {
        var ctx = Prepare(request);
        var full = RenderCore(ctx, request.AddGenerationPrompt, null).Text;
        var messages = ctx.Messages;
        var spans = new List<MessageSpan>(messages.Count);
        var assistant = new List<TextSpan>();
        int LengthOf(int count, bool generationPrompt, bool optional)
        {
            string text;
            try
            {
                text = RenderCore(ctx with { Messages = new PyList(messages.Items.GetRange(0, count)), ContinueFinal = false }, generationPrompt, null).Text;
            }
            catch (ChatTemplateException) when (optional)
            {
                return 0; // e.g. a template that reads messages[0] cannot render an empty conversation
            }
            catch (ChatTemplateException e)
            {
                throw new ChatTemplateException($"cannot attribute the prompt to messages: rendering the first {count} message(s) fails ({e.Detail})",
                    ChatTemplateErrorKind.Unsupported, e.Line, "this template cannot render partial conversations; mark assistant output with {% generation %} blocks") { TemplateName = Name };
            }
            if (!full.StartsWith(text, StringComparison.Ordinal))
            {
                throw new ChatTemplateException($"cannot attribute the prompt to messages: the rendering of the first {count} message(s) is not a prefix of the full rendering",
                    ChatTemplateErrorKind.Unsupported, 0, "this template renders earlier turns differently once later turns exist; mark assistant output with {% generation %} blocks") { TemplateName = Name };
            }
            return text.Length;
        }
        int previousEnd = LengthOf(0, false, optional: true);
        for (int i = 0; i < messages.Count; i++)
        {
            var role = messages[i] is PyDict d && d.TryGetValue("role", out var r) && r is string rs ? rs : "";
            bool last = i == messages.Count - 1;
            int end = last && ctx.ContinueFinal ? full.Length : LengthOf(i + 1, false, optional: false);
            int contentStart = previousEnd;
            if (role == "assistant")
            {
                contentStart = LengthOf(i, true, optional: i == 0);
                if (contentStart < previousEnd || contentStart > end) contentStart = previousEnd;
                assistant.Add(new TextSpan(contentStart, end));
            }
            spans.Add(new MessageSpan(i, role, previousEnd, contentStart, end));
            previousEnd = end;
        }
        return new ChatRendering(full, assistant) { Messages = spans };
    }

    /// <summary>
    /// The prompt and the ranges the model is trained to produce: the <c>{% generation %}</c> blocks when the template has
    /// them (transformers' assistant mask), otherwise the assistant turns found by <see cref="RenderWithMessageSpans"/>.
    /// </summary>
    public ChatRendering RenderForTraining(ChatTemplateRequest request) =>
        HasGenerationBlocks ? RenderWithGenerationSpans(request) : RenderWithMessageSpans(request);

    // ---- rendering ---------------------------------------------------------------------------------------------

    private sealed record Context(PyList Messages, Dictionary<string, object?> Variables, DateTime Now, bool ContinueFinal);

    private Context Prepare(ChatTemplateRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        try
        {
            var messages = (PyList)PyJson.FromJson(request.Messages)!;
            var vars = new Dictionary<string, object?>(StringComparer.Ordinal);
            foreach (var (k, v) in request.Variables)
            {
                if (k is "messages" or "add_generation_prompt")
                    throw new ArgumentException($"'{k}' is set by the request itself, not through Variables", nameof(request));
                vars[k] = PyJson.FromJson(v);
            }
            return new Context(messages, vars, request.Now ?? DateTime.Now, request.ContinueFinalMessage);
        }
        catch (ChatTemplateException e)
        {
            e.TemplateName ??= Name;
            throw;
        }
    }

    private (string Text, List<(int, int)>? Spans) RenderCore(Context ctx, bool addGenerationPrompt, List<(int, int)>? spans)
    {
        var messages = ctx.Messages;
        string? finalContent = null;
        if (ctx.ContinueFinal) (messages, finalContent) = TagFinalMessage(messages);
        var state = new RenderState(ctx.Now, spans is not null);
        // The render variables are jinja2's context; the template's top-level locals live in a frame above it.
        var context = new Frame(null);
        context.Set("messages", messages);
        context.Set("add_generation_prompt", Py.Bool(addGenerationPrompt));
        foreach (var (k, v) in ctx.Variables) context.Set(k, v);
        var root = new Frame(context, rootSeeds);
        try
        {
            Stmt.RunBody(body, state, root);
        }
        catch (ChatTemplateException e)
        {
            e.TemplateName ??= Name;
            throw;
        }
        var text = state.Result;
        if (finalContent is not null) text = CutAtContinueTag(text, finalContent);
        if (spans is not null)
        {
            // Spans past the cut of continue_final_message are clipped to the text that remains.
            spans.AddRange(state.GenerationSpans!.Where(sp => sp.Start < text.Length || sp.Start == sp.End && sp.Start <= text.Length)
                .Select(sp => (sp.Start, Math.Min(sp.End, text.Length))));
        }
        return (text, spans);
    }

    /// <summary>transformers' <c>continue_final_message</c>: tag the last message's text so the output can be cut right after it.</summary>
    private (PyList Messages, string FinalContent) TagFinalMessage(PyList messages)
    {
        if (messages.Count == 0 || messages[^1] is not PyDict last || !last.TryGetValue("content", out var content))
            throw new ChatTemplateException("continue_final_message needs a final message with content", ChatTemplateErrorKind.Runtime) { TemplateName = Name };
        var copy = last.Copy();
        string finalText;
        if (content is PyList blocks)
        {
            var newBlocks = blocks.Items.ToList();
            int at = newBlocks.FindLastIndex(b => b is PyDict bd && bd.ContainsKey("text"));
            if (at < 0) throw new ChatTemplateException("continue_final_message is set but the final message has no text content block", ChatTemplateErrorKind.Runtime) { TemplateName = Name };
            var block = ((PyDict)newBlocks[at]!).Copy();
            block.TryGetValue("text", out var t);
            finalText = Py.Str(t);
            block.Set("text", Py.Add(t, ContinueTag));
            newBlocks[at] = block;
            copy.Set("content", new PyList(newBlocks));
        }
        else
        {
            finalText = Py.Str(content);
            copy.Set("content", Py.Add(content, ContinueTag));
        }
        var items = messages.Items.ToList();
        items[^1] = copy;
        return (new PyList(items), finalText);
    }

    private string CutAtContinueTag(string rendered, string finalContent)
    {
        var tag = ContinueTag.Trim();
        if (!rendered.Contains(PyStr.Strip(finalContent, null), StringComparison.Ordinal) || !rendered.Contains(tag, StringComparison.Ordinal))
        {
            throw new ChatTemplateException("continue_final_message is set but the final message does not appear in the rendered prompt",
                ChatTemplateErrorKind.Runtime, 0, "the template drops or rewrites the final message; render without continue_final_message") { TemplateName = Name };
        }
        int at = rendered.LastIndexOf(tag, StringComparison.Ordinal);
        return string.CompareOrdinal(rendered, at, ContinueTag, 0, ContinueTag.Length) == 0
            ? rendered[..at]
            : PyStr.Strip(rendered[..at], null, left: false);
    }

    [GeneratedRegex(@"\{%-?\s*generation\s*-?%\}")]
    private static partial Regex GenerationTag();
}
