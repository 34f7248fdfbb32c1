using System.Globalization;
using System.Text.Json;

namespace FuseSharp.Tokenization;

/// <summary>
/// A JSON object of a tokenizer file together with where it is (file and JSON path), so that every error about a
/// component names the file, the place and the field: "tokenizer.json: pre_tokenizer.pretokenizers[1]: ...".
/// </summary>
public readonly struct JsonSection
{
    public JsonSection(JsonElement element, string file, string path)
    {
        Element = element;
        File = file;
        Path = path;
    }

    public JsonElement Element { get; }

    public string File { get; }

    public string Path { get; }

    /// <summary>The <c>"type"</c> tag, or null.</summary>
    public string? Type => Element.ValueKind == JsonValueKind.Object && Element.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;

    public TokenizerException Error(string message, string? hint = null) => new($"{File}: {Path}: {message}", hint);

    private string Sub(string key) => Path.Length == 0 ? key : $"{Path}.{key}";

    /// <summary>True when <paramref name="key"/> is present and not null.</summary>
    public bool Has(string key) => Element.ValueKind == JsonValueKind.Object && Element.TryGetProperty(key, out var v) && v.ValueKind != JsonValueKind.Null;

    /// <summary>The member <paramref name="key"/> (must be present and not null).</summary>
    public JsonSection Child(string key)
    {
        if (!Has(key)) throw Error($"missing \"{key}\"");
        return new JsonSection(Element.GetProperty(key), File, Sub(key));
    }

    /// <summary>The member <paramref name="key"/>, or null when absent or null.</summary>
    public JsonSection? ChildOrNull(string key) => Has(key) ? new JsonSection(Element.GetProperty(key), File, Sub(key)) : null;

    /// <summary>The items of this array.</summary>
    public IEnumerable<JsonSection> Items()
    {
        if (Element.ValueKind != JsonValueKind.Array) throw Error("expected an array");
        int i = 0;
        foreach (var item in Element.EnumerateArray()) yield return new JsonSection(item, File, $"{Path}[{i++}]");
    }

    /// <summary>The members of this object.</summary>
    public IEnumerable<(string Key, JsonSection Value)> Members()
    {
        if (Element.ValueKind != JsonValueKind.Object) throw Error("expected an object");
        foreach (var p in Element.EnumerateObject()) yield return (p.Name, new JsonSection(p.Value, File, Sub(p.Name)));
    }

    public string AsString() => Element.ValueKind == JsonValueKind.String ? Element.GetString()! : throw Error("expected a string");

    public string GetString(string key) => Child(key).AsString();

    public string? GetStringOrNull(string key) => Has(key) ? GetString(key) : null;

    public bool GetBool(string key, bool defaultValue)
    {
        if (!Has(key)) return defaultValue;
        var v = Element.GetProperty(key);
        return v.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw Error($"\"{key}\" must be true or false"),
        };
    }

    public bool? GetBoolOrNull(string key) => Has(key) ? GetBool(key, false) : null;

    public int AsInt() => Element.ValueKind == JsonValueKind.Number && Element.TryGetInt32(out var v) ? v : throw Error("expected an integer");

    public int GetInt(string key, int defaultValue) => Has(key) ? Child(key).AsInt() : defaultValue;

    public double AsDouble() => Element.ValueKind == JsonValueKind.Number ? Element.GetDouble() : throw Error("expected a number");

    public double? GetDoubleOrNull(string key) => Has(key) ? Child(key).AsDouble() : null;

    /// <summary>A single-character string member (HF <c>char</c> fields such as Metaspace's replacement).</summary>
    public string GetChar(string key, string defaultValue)
    {
        if (!Has(key)) return defaultValue;
        var s = GetString(key);
        if (s.Length == 0 || Unicode.UnicodeChars.CodePointCount(s) != 1) throw Error($"\"{key}\" must be a single character, got \"{s}\"");
        return s;
    }

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{File}: {Path}");
}
