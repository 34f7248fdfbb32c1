using System.Text.Json;
using System.Text.Json.Nodes;

namespace FuseSharp.Training.Data;

/// <summary>One JSON object of a data file and where it came from (for error messages).</summary>
/// <param name="Path">The file.</param>
/// <param name="Line">1-based line for JSON Lines, 0 for a JSON array file.</param>
/// <param name="Record">1-based record number.</param>
/// <param name="Value">The object.</param>
public sealed record JsonRecord(string Path, long Line, long Record, JsonObject Value)
{
    /// <summary>An error about this record: "file:line: problem" (JSON Lines) or "file: record n: problem" (JSON array).</summary>
    public TrainingDataException Error(string problem, string? hint = null) =>
        Line > 0 ? new TrainingDataException(Path, Line, problem, hint) : new TrainingDataException(Path, $"record {Record}", problem, hint);

    /// <summary>A required string field.</summary>
    public string RequireString(string field) =>
        Value[field] is JsonValue v && v.TryGetValue<string>(out var s) ? s : throw Error($"expected a \"{field}\" string field", $"each record needs {{\"{field}\": \"...\"}}");

    /// <summary>A required array of integers (ids), or null when the field is absent and not <paramref name="required"/>.</summary>
    public int[]? IntArray(string field, bool required)
    {
        if (Value[field] is not JsonArray a)
        {
            if (Value[field] is null && !required) return null;
            throw Error($"expected \"{field}\" to be an array of integers");
        }
        var r = new int[a.Count];
        for (int i = 0; i < a.Count; i++)
        {
            if (a[i] is JsonValue v && v.TryGetValue<long>(out var x) && x >= int.MinValue && x <= int.MaxValue) r[i] = (int)x;
            else if (a[i] is JsonValue d && d.TryGetValue<double>(out var y) && y == Math.Floor(y) && Math.Abs(y) <= int.MaxValue) r[i] = (int)y;
            else throw Error($"\"{field}\"[{i}] is not an integer");
        }
        return r;
    }
}

/// <summary>
/// Reads the objects of a data file: JSON Lines (one object per line; blank lines skipped) or, when the file starts
/// with <c>[</c>, one JSON array of objects (the ShareGPT dumps FuseChat trains on are arrays). Lines are streamed,
/// so a large JSON Lines file is never held whole.
/// </summary>
public static class JsonRecords
{
    private static readonly JsonDocumentOptions Options = new() { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip };

    /// <exception cref="TrainingDataException">The file is missing, or a line is not a JSON object.</exception>
    public static IEnumerable<JsonRecord> Read(string path)
    {
        if (!File.Exists(path)) throw new TrainingDataException(path, 0, "file not found", "give the path of the training data with --data");
        return IsArrayFile(path) ? ReadArray(path) : ReadLines(path);
    }

    private static bool IsArrayFile(string path)
    {
        using var reader = new StreamReader(path);
        int c;
        while ((c = reader.Read()) >= 0)
        {
            if (c == '\uFEFF' || char.IsWhiteSpace((char)c)) continue;
            return c == '[';
        }
        return false;
    }

    private static IEnumerable<JsonRecord> ReadLines(string path)
    {
        long line = 0, record = 0;
        foreach (var text in File.ReadLines(path))
        {
            line++;
            if (string.IsNullOrWhiteSpace(text)) continue;
            JsonNode? node;
            try
            {
                node = JsonNode.Parse(text, documentOptions: Options);
            }
            catch (JsonException e)
            {
                throw new TrainingDataException(path, line, $"not valid JSON ({e.Message})", "JSON Lines files hold one JSON object per line", e);
            }
            if (node is not JsonObject obj) throw new TrainingDataException(path, line, "expected a JSON object", "JSON Lines files hold one JSON object per line");
            yield return new JsonRecord(path, line, ++record, obj);
        }
    }

    private static IEnumerable<JsonRecord> ReadArray(string path)
    {
        JsonNode? root;
        try
        {
            using var stream = File.OpenRead(path);
            root = JsonNode.Parse(stream, documentOptions: Options);
        }
        catch (JsonException e)
        {
            throw new TrainingDataException(path, 0, $"not valid JSON ({e.Message})", "give a JSON array of objects or one JSON object per line", e);
        }
        var array = root as JsonArray ?? throw new TrainingDataException(path, 0, "expected a JSON array of objects");
        for (int i = 0; i < array.Count; i++)
        {
            if (array[i] is not JsonObject obj) throw new TrainingDataException(path, $"record {i + 1}", "expected a JSON object");
            yield return new JsonRecord(path, 0, i + 1, obj);
        }
    }
}
