using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using FuseSharp.Tokenization;
using FuseSharp.Tokenization.ChatTemplates;

namespace FuseSharp.Cli.Commands;

/// <summary>
/// <c>fusesharp chat-template --tokenizer DIR_OR_TEMPLATE --messages FILE.json [--add-generation-prompt] [--bos-token S] [--eos-token S]</c>:
/// renders a conversation with a model's chat template exactly as transformers' <c>apply_chat_template</c> does and prints
/// the prompt on stdout (byte for byte: no newline is added).
/// </summary>
internal static class ChatTemplateCommand
{
    public static Command Create()
    {
        var tokenizer = new Option<string>("--tokenizer")
        {
            Description = "A model/tokenizer folder (tokenizer_config.json, chat_template.jinja), a tokenizer_config.json / chat_template.json, or a .jinja template file.",
            Required = true,
        };
        var messages = new Option<string>("--messages")
        {
            Description = "JSON file: a list of messages, or an object with \"messages\" (plus optional \"tools\", \"documents\" and other template variables).",
            Required = true,
        };
        var addGenerationPrompt = new Option<bool>("--add-generation-prompt") { Description = "Append the tokens that start the assistant's turn." };
        var continueFinal = new Option<bool>("--continue-final-message") { Description = "Leave the last message open so the model continues it." };
        var bos = new Option<string?>("--bos-token") { Description = "bos_token for the template (overrides the tokenizer's)." };
        var eos = new Option<string?>("--eos-token") { Description = "eos_token for the template (overrides the tokenizer's)." };
        var tools = new Option<string?>("--tools") { Description = "JSON file with a list of tool (function) schemas, passed as `tools`." };
        var documents = new Option<string?>("--documents") { Description = "JSON file with a list of documents, passed as `documents`." };
        var templateName = new Option<string?>("--template-name") { Description = "Which named template to use (e.g. tool_use); default: tool_use when --tools is given and the model has one, else default." };
        var vars = new Option<string[]>("--var")
        {
            Description = "Extra template variable NAME=VALUE (VALUE is read as JSON when it parses, else as a string), e.g. --var enable_thinking=false. Repeatable.",
            AllowMultipleArgumentsPerToken = false,
        };
        var now = new Option<string?>("--now") { Description = "The clock for strftime_now, e.g. 2024-07-26T10:00:00 (default: the current local time)." };
        var json = new Option<bool>("--json") { Description = "Print JSON: {\"text\": ..., \"assistant_spans\": [[start, end], ...]} (UTF-16 offsets of the assistant output)." };
        var cmd = new Command("chat-template", "Render a conversation with a model's chat template (as transformers' apply_chat_template).")
        {
            tokenizer, messages, addGenerationPrompt, continueFinal, bos, eos, tools, documents, templateName, vars, now, json,
        };
        cmd.SetAction(pr => CliContext.Run(() =>
        {
            var options = new Options(pr.GetValue(tokenizer)!, pr.GetValue(messages)!, pr.GetValue(addGenerationPrompt), pr.GetValue(continueFinal),
                pr.GetValue(bos), pr.GetValue(eos), pr.GetValue(tools), pr.GetValue(documents), pr.GetValue(templateName),
                pr.GetValue(vars) ?? [], pr.GetValue(now), pr.GetValue(json));
            var output = Execute(options);
            using var stdout = Console.OpenStandardOutput();
            stdout.Write(new UTF8Encoding(false).GetBytes(output));
            return 0;
        }));
        return cmd;
    }

    internal sealed record Options(string Tokenizer, string Messages, bool AddGenerationPrompt, bool ContinueFinalMessage, string? BosToken,
        string? EosToken, string? Tools, string? Documents, string? TemplateName, string[] Variables, string? Now, bool Json);

    /// <summary>Renders as the command does and returns what it prints.</summary>
    internal static string Execute(Options o)
    {
        var (messages, fileTools, fileDocuments, fileVars) = ReadMessages(o.Messages);
        var tools = o.Tools is null ? fileTools : ReadJsonList(o.Tools, "tools");
        var documents = o.Documents is null ? fileDocuments : ReadJsonList(o.Documents, "documents");
        var (template, config) = LoadTemplate(o.Tokenizer, o.TemplateName, tools is not null);

        var extra = new Dictionary<string, JsonNode?>(fileVars, StringComparer.Ordinal);
        foreach (var v in o.Variables)
        {
            int eq = v.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0) throw new FuseSharpException($"--var '{v}': expected NAME=VALUE", "e.g. --var enable_thinking=false or --var 'date_string=\"26 Jul 2024\"'");
            extra[v[..eq]] = ParseValue(v[(eq + 1)..]);
        }
        if (o.BosToken is not null) extra["bos_token"] = o.BosToken;
        if (o.EosToken is not null) extra["eos_token"] = o.EosToken;

        var request = ChatTemplateRequest.ForModel(messages, config, tools, documents, extra) with
        {
            AddGenerationPrompt = o.AddGenerationPrompt,
            ContinueFinalMessage = o.ContinueFinalMessage,
            Now = o.Now is null ? null : ParseNow(o.Now),
        };
        if (!o.Json) return template.Render(request);

        var rendering = template.HasGenerationBlocks ? template.RenderWithGenerationSpans(request) : TryMessageSpans(template, request);
        var result = new JsonObject
        {
            ["text"] = rendering.Text,
            ["assistant_spans"] = new JsonArray(rendering.AssistantSpans.Select(s => (JsonNode?)new JsonArray(s.Start, s.End)).ToArray()),
            ["span_source"] = template.HasGenerationBlocks ? "generation" : rendering.Messages is null ? "none" : "message_prefixes",
        };
        if (rendering.Messages is { } spans)
        {
            result["messages"] = new JsonArray(spans.Select(m => (JsonNode?)new JsonObject
            {
                ["index"] = m.Index,
                ["role"] = m.Role,
                ["start"] = m.Start,
                ["content_start"] = m.ContentStart,
                ["end"] = m.End,
            }).ToArray());
        }
        return result.ToJsonString(new JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }) + "\n";
    }

    /// <summary>Per-message spans where the template allows them; otherwise the plain rendering without spans.</summary>
    private static ChatRendering TryMessageSpans(ChatTemplate template, ChatTemplateRequest request)
    {
        try
        {
            return template.RenderWithMessageSpans(request);
        }
        catch (ChatTemplateException e) when (e.Kind == ChatTemplateErrorKind.Unsupported && e.Detail.StartsWith("cannot attribute", StringComparison.Ordinal))
        {
            Console.Error.WriteLine($"warning: {e.Message}");
            return new ChatRendering(template.Render(request), []);
        }
    }

    private static (ChatTemplate Template, TokenizerConfig? Config) LoadTemplate(string path, string? name, bool withTools)
    {
        if (Directory.Exists(path) || (File.Exists(path) && path.EndsWith(".json", StringComparison.OrdinalIgnoreCase)))
        {
            var config = TokenizerConfig.Load(path);
            return (ChatTemplate.FromConfig(config, name, withTools), config);
        }
        if (!File.Exists(path)) throw new FuseSharpException($"{path}: no such file or folder", "give a model folder, a tokenizer_config.json or a .jinja template");
        if (name is not null) throw new FuseSharpException("--template-name needs a model folder or tokenizer_config.json, not a single template file");
        return (ChatTemplate.LoadFile(path), null);
    }

    private static (JsonArray Messages, JsonArray? Tools, JsonArray? Documents, Dictionary<string, JsonNode?> Variables) ReadMessages(string path)
    {
        var root = ReadJson(path);
        var vars = new Dictionary<string, JsonNode?>(StringComparer.Ordinal);
        switch (root)
        {
            case JsonArray list:
                return (CheckMessages(list, path), null, null, vars);
            case JsonObject o when o["messages"] is JsonArray list:
                JsonArray? tools = null, documents = null;
                foreach (var (k, v) in o)
                {
                    switch (k)
                    {
                        case "messages": break;
                        case "tools": tools = v as JsonArray ?? (v is null ? null : throw new FuseSharpException($"{path}: \"tools\" must be a list")); break;
                        case "documents": documents = v as JsonArray ?? (v is null ? null : throw new FuseSharpException($"{path}: \"documents\" must be a list")); break;
                        case "add_generation_prompt": throw new FuseSharpException($"{path}: use the --add-generation-prompt flag instead of an \"add_generation_prompt\" key");
                        default: vars[k] = v?.DeepClone(); break;
                    }
                }
                return (CheckMessages(list, path), tools, documents, vars);
            default:
                throw new FuseSharpException($"{path}: expected a JSON list of messages or an object with a \"messages\" list",
                    "e.g. [{\"role\": \"user\", \"content\": \"Hello\"}]");
        }
    }

    private static JsonArray CheckMessages(JsonArray list, string path)
    {
        for (int i = 0; i < list.Count; i++)
        {
            if (list[i] is not JsonObject m) throw new FuseSharpException($"{path}: message {i} is not a JSON object", "each message is {\"role\": ..., \"content\": ...}");
            if (m["role"] is null) throw new FuseSharpException($"{path}: message {i} has no \"role\"");
        }
        return (JsonArray)list.DeepClone();
    }

    private static JsonArray ReadJsonList(string path, string what) =>
        ReadJson(path) as JsonArray ?? throw new FuseSharpException($"{path}: {what} must be a JSON list");

    private static JsonNode? ReadJson(string path)
    {
        if (!File.Exists(path)) throw new FuseSharpException($"{path}: no such file");
        try
        {
            var node = JsonNode.Parse(File.ReadAllText(path, new UTF8Encoding(false, throwOnInvalidBytes: true)));
            Materialize(node); // JsonObject builds its dictionary lazily: a repeated key must be reported here
            return node;
        }
        catch (JsonException e)
        {
            throw new FuseSharpException($"{path}: not valid JSON (line {e.LineNumber + 1}: {e.Message})", null, e);
        }
        catch (DecoderFallbackException e)
        {
            throw new FuseSharpException($"{path}: not valid UTF-8", null, e);
        }
        catch (ArgumentException e)
        {
            throw new FuseSharpException($"{path}: {e.Message.Split(" (Parameter", 2)[0]}", "JSON objects must not repeat a key", e);
        }
    }

    private static void Materialize(JsonNode? node)
    {
        switch (node)
        {
            case JsonObject o:
                foreach (var (_, v) in o) Materialize(v);
                break;
            case JsonArray a:
                foreach (var v in a) Materialize(v);
                break;
        }
    }

    private static JsonNode? ParseValue(string text)
    {
        try
        {
            return JsonNode.Parse(text);
        }
        catch (JsonException)
        {
            return JsonValue.Create(text);
        }
    }

    private static DateTime ParseNow(string text) =>
        DateTime.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.None, out var t)
            ? t
            : throw new FuseSharpException($"--now '{text}': not a date/time", "e.g. --now 2024-07-26T10:00:00");
}
