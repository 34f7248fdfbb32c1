namespace FuseSharp.Merging.Config;

/// <summary>
/// The <c>chat_template</c> setting of a merge (spec §4.1): a built-in format name, <c>auto</c> (the template most
/// input models share), or a literal Jinja template. The built-in templates render the standard prompt formats
/// of those names.
/// </summary>
public static class ChatTemplates
{
    /// <summary>Built-in templates by name.</summary>
    public static readonly IReadOnlyDictionary<string, string> BuiltIn = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["chatml"] =
            "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}"
            + "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",
        ["llama3"] =
            "{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}{% endfor %}"
            + "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}",
        ["alpaca"] =
            "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'system' %}{{ message['content'] + '\\n\\n' }}"
            + "{% elif message['role'] == 'user' %}{{ '### Instruction:\\n' + message['content'] + '\\n\\n' }}"
            + "{% elif message['role'] == 'assistant' %}{{ '### Response:\\n' + message['content'] + eos_token + '\\n\\n' }}{% endif %}{% endfor %}"
            + "{% if add_generation_prompt %}{{ '### Response:\\n' }}{% endif %}",
        ["mistral"] =
            "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
            + "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token }}{% endif %}{% endfor %}",
        ["exaone"] =
            "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}{{ '[|system|][|endofturn|]\\n' }}{% endif %}"
            + "{{ '[|' + message['role'] + '|]' + message['content'] }}{% if message['role'] == 'user' %}{{ '\\n' }}{% else %}{{ '[|endofturn|]\\n' }}{% endif %}{% endfor %}"
            + "{% if add_generation_prompt %}{{ '[|assistant|]' }}{% endif %}",
    };

    /// <summary>Rejects values that are neither a built-in name, <c>auto</c>, nor plausibly a template (mergekit's rule).</summary>
    /// <exception cref="MergeConfigException">An unknown short name.</exception>
    public static void Validate(string setting, string? path, int line)
    {
        if (setting == "auto" || BuiltIn.ContainsKey(setting)) return;
        if (setting.Length < 20 || !setting.Contains('{', StringComparison.Ordinal))
            throw new MergeConfigException(path, line, $"chat_template '{setting}' is neither a built-in template nor a Jinja template",
                $"use auto, {string.Join(", ", BuiltIn.Keys)}, or a full Jinja template string");
    }

    /// <summary>
    /// The template to write: a built-in or literal template as given; for <c>auto</c>, the template most of
    /// <paramref name="inputTemplates"/> share (ties go to the earliest), or null when no input has one.
    /// </summary>
    public static string? Resolve(string setting, IEnumerable<string?> inputTemplates)
    {
        if (BuiltIn.TryGetValue(setting, out var t)) return t;
        if (setting != "auto") return setting;
        var present = inputTemplates.Where(x => !string.IsNullOrEmpty(x)).Select(x => x!).ToList();
        if (present.Count == 0) return null;
        return present.GroupBy(x => x, StringComparer.Ordinal)
            .OrderByDescending(g => g.Count())
            .ThenBy(g => present.IndexOf(g.Key))
            .First().Key;
    }
}
