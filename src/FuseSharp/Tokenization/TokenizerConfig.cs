using System.Text.Json;
using System.Text.Json.Nodes;

namespace FuseSharp.Tokenization;

/// <summary>An added token as <c>tokenizer_config.json</c> describes it (a plain string or an AddedToken object).</summary>
public sealed record AddedTokenSpec(string Content, bool Special = true, bool LStrip = false, bool RStrip = false, bool SingleWord = false, bool Normalized = false);

/// <summary>
/// <c>tokenizer_config.json</c> (plus <c>chat_template.jinja</c> / <c>chat_template.json</c> and
/// <c>special_tokens_map.json</c> beside it): the special tokens, whether BOS/EOS are added, and the chat
/// template(s). Special tokens may be written as strings or as AddedToken objects
/// (<c>{"__type": "AddedToken", "content": "&lt;s&gt;", ...}</c>); both are read.
/// </summary>
public sealed class TokenizerConfig
{
    public TokenizerConfig(JsonObject raw, string path) { Raw = raw; Path = path; }

    public JsonObject Raw { get; }

    public string Path { get; }

    public AddedTokenSpec? BosToken { get; private init; }

    public AddedTokenSpec? EosToken { get; private init; }

    public AddedTokenSpec? UnkToken { get; private init; }

    public AddedTokenSpec? PadToken { get; private init; }

    public IReadOnlyList<AddedTokenSpec> AdditionalSpecialTokens { get; private init; } = [];

    /// <summary><c>added_tokens_decoder</c>: id to token, when present.</summary>
    public IReadOnlyDictionary<int, AddedTokenSpec> AddedTokensDecoder { get; private init; } = new Dictionary<int, AddedTokenSpec>();

    /// <summary><c>add_bos_token</c>, or null when the file does not say (the tokenizer's post-processor decides).</summary>
    public bool? AddBosToken => Raw["add_bos_token"] is JsonValue v && v.TryGetValue<bool>(out var b) ? b : null;

    /// <summary><c>add_eos_token</c>, or null when the file does not say.</summary>
    public bool? AddEosToken => Raw["add_eos_token"] is JsonValue v && v.TryGetValue<bool>(out var b) ? b : null;

    public string? TokenizerClass => Raw["tokenizer_class"] is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;

    /// <summary>Named chat templates; the unnamed one is "default". Empty when the model has none.</summary>
    public IReadOnlyDictionary<string, string> ChatTemplates { get; private init; } = new Dictionary<string, string>();

    /// <summary>The default chat template, or null.</summary>
    public string? ChatTemplate => ChatTemplates.TryGetValue("default", out var t) ? t : null;

    /// <summary>True if <paramref name="folder"/> has a tokenizer_config.json.</summary>
    public static bool Exists(string folder) => File.Exists(System.IO.Path.Combine(folder, "tokenizer_config.json"));

    /// <summary>
    /// Reads <c>tokenizer_config.json</c> from a folder (or the file itself). A separate <c>chat_template.jinja</c> or
    /// <c>chat_template.json</c> in the same folder supplies the template when the config has none, as transformers does.
    /// </summary>
    /// <exception cref="TokenizerException">The file is missing or malformed.</exception>
    public static TokenizerConfig Load(string folderOrFile)
    {
        var path = Directory.Exists(folderOrFile) ? System.IO.Path.Combine(folderOrFile, "tokenizer_config.json") : folderOrFile;
        var folder = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!;
        JsonObject raw;
        if (File.Exists(path))
        {
            try
            {
                raw = JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new TokenizerException($"{path}: not a JSON object");
            }
            catch (JsonException e)
            {
                throw new TokenizerException($"{path}: not valid JSON ({e.Message})", e);
            }
        }
        else if (Directory.Exists(folderOrFile))
        {
            raw = [];
        }
        else
        {
            throw new TokenizerException($"{path}: not found");
        }
        var specialMap = System.IO.Path.Combine(folder, "special_tokens_map.json");
        JsonObject? map = null;
        if (File.Exists(specialMap))
        {
            try { map = JsonNode.Parse(File.ReadAllText(specialMap)) as JsonObject; }
            catch (JsonException e) { throw new TokenizerException($"{specialMap}: not valid JSON ({e.Message})", e); }
        }
        AddedTokenSpec? Special(string key) => ParseToken(raw[key], path, key) ?? ParseToken(map?[key], specialMap, key);
        var additional = (raw["additional_special_tokens"] ?? map?["additional_special_tokens"]) is JsonArray arr
            ? arr.Select((n, i) => ParseToken(n, path, $"additional_special_tokens[{i}]")).OfType<AddedTokenSpec>().ToList()
            : [];
        var decoder = new Dictionary<int, AddedTokenSpec>();
        if (raw["added_tokens_decoder"] is JsonObject atd)
        {
            foreach (var (k, v) in atd)
            {
                if (!int.TryParse(k, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var id))
                    throw new TokenizerException($"{path}: added_tokens_decoder key '{k}' is not a token id");
                decoder[id] = ParseToken(v, path, $"added_tokens_decoder[{k}]") ?? throw new TokenizerException($"{path}: added_tokens_decoder[{k}] is empty");
            }
        }
        return new TokenizerConfig(raw, path)
        {
            BosToken = Special("bos_token"),
            EosToken = Special("eos_token"),
            UnkToken = Special("unk_token"),
            PadToken = Special("pad_token"),
            AdditionalSpecialTokens = additional,
            AddedTokensDecoder = decoder,
            ChatTemplates = ReadTemplates(raw, folder, path),
        };
    }

    /// <summary>
    /// The chat templates as transformers loads them: <c>chat_template.jinja</c> (the default) and
    /// <c>additional_chat_templates/NAME.jinja</c> (named) take priority over the <c>chat_template</c> entry of the config,
    /// which is used only when neither file exists; <c>chat_template.json</c> (the processor's legacy file) comes last.
    /// </summary>
    private static Dictionary<string, string> ReadTemplates(JsonObject raw, string folder, string path)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        void Add(JsonNode? node, string where)
        {
            switch (node)
            {
                case JsonValue v when v.TryGetValue<string>(out var s):
                    result["default"] = s;
                    break;
                case JsonArray list: // [{"name": "default", "template": "..."}, {"name": "tool_use", ...}]
                    foreach (var item in list)
                    {
                        if (item is not JsonObject o || o["name"] is not JsonValue n || !n.TryGetValue<string>(out var name)
                            || o["template"] is not JsonValue t || !t.TryGetValue<string>(out var template))
                            throw new TokenizerException($"{where}: chat_template list entries need \"name\" and \"template\" strings");
                        result[name] = template;
                    }
                    break;
                case JsonObject named: // {"default": "...", "tool_use": "..."}, as transformers saves a dict
                    foreach (var (name, t) in named)
                    {
                        if (t is not JsonValue tv || !tv.TryGetValue<string>(out var template))
                            throw new TokenizerException($"{where}: chat_template '{name}' must be a string");
                        result[name] = template;
                    }
                    break;
                case null:
                    break;
                default:
                    throw new TokenizerException($"{where}: chat_template must be a string or a list of named templates");
            }
        }
        var jinja = System.IO.Path.Combine(folder, "chat_template.jinja");
        if (File.Exists(jinja)) result["default"] = ReadTemplateFile(jinja);
        var extra = System.IO.Path.Combine(folder, "additional_chat_templates");
        if (Directory.Exists(extra))
        {
            foreach (var file in Directory.GetFiles(extra, "*.jinja").Order(StringComparer.Ordinal))
                result[System.IO.Path.GetFileNameWithoutExtension(file)] = ReadTemplateFile(file);
        }
        if (result.Count > 0) return result;
        Add(raw["chat_template"], path);
        if (result.Count == 0)
        {
            var json = System.IO.Path.Combine(folder, "chat_template.json");
            if (File.Exists(json))
            {
                try { Add((JsonNode.Parse(File.ReadAllText(json)) as JsonObject)?["chat_template"], json); }
                catch (JsonException e) { throw new TokenizerException($"{json}: not valid JSON ({e.Message})", e); }
            }
        }
        return result;
    }

    /// <summary>Reads a template file as Python's <c>open(encoding="utf-8")</c> does: strict UTF-8, a BOM kept as a character.</summary>
    public static string ReadTemplateFile(string path)
    {
        try
        {
            using var reader = new StreamReader(path, new System.Text.UTF8Encoding(false, throwOnInvalidBytes: true), detectEncodingFromByteOrderMarks: false);
            return reader.ReadToEnd();
        }
        catch (System.Text.DecoderFallbackException e)
        {
            throw new TokenizerException($"{path}: not valid UTF-8 ({e.Message})", "save the template as UTF-8", e);
        }
    }

    /// <summary>Reads a token given as a string, an AddedToken object, or null.</summary>
    public static AddedTokenSpec? ParseToken(JsonNode? node, string path, string key)
    {
        switch (node)
        {
            case null:
                return null;
            case JsonValue v when v.TryGetValue<string>(out var s):
                return new AddedTokenSpec(s);
            case JsonObject o when o["content"] is JsonValue c && c.TryGetValue<string>(out var content):
                bool Flag(string name, bool dflt) => o[name] is JsonValue f && f.TryGetValue<bool>(out var b) ? b : dflt;
                return new AddedTokenSpec(content, Flag("special", true), Flag("lstrip", false), Flag("rstrip", false), Flag("single_word", false), Flag("normalized", false));
            default:
                throw new TokenizerException($"{path}: '{key}' must be a string or an AddedToken object with \"content\"");
        }
    }
}

/// <summary>A tokenizer file that cannot be read or used; the message names the file and, where known, the line or component.</summary>
public class TokenizerException : FuseSharpException
{
    public TokenizerException() : base("tokenizer error") { }

    public TokenizerException(string message) : base(message) { }

    public TokenizerException(string message, Exception inner) : base(message, inner) { }

    public TokenizerException(string message, string? hint, Exception? inner = null) : base(message, hint, inner) { }
}
