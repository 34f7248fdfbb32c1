namespace FuseSharp.Tokenization;

/// <summary>The components of one pipeline stage by their tokenizer.json <c>"type"</c> tag (one table per stage).</summary>
internal sealed class ComponentTable<T>(string stage, Dictionary<string, Func<JsonSection, T>> table)
{
    /// <summary>Builds the component <paramref name="j"/> describes; <paramref name="type"/> overrides a missing tag.</summary>
    /// <exception cref="TokenizerException">No or an unknown type (the message names it and lists the known ones), or bad fields.</exception>
    public T Create(JsonSection j, string? type = null)
    {
        type ??= j.Type ?? throw j.Error($"{stage} without \"type\"");
        return table.TryGetValue(type, out var make) ? make(j)
            : throw j.Error($"unknown {stage} type '{type}'", $"supported: {string.Join(", ", table.Keys)}");
    }
}
