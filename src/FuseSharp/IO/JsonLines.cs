using System.Text.Json;
using System.Text.Json.Nodes;

namespace FuseSharp.IO;

/// <summary>JSON-lines files (one JSON object per line; blank lines skipped), read lazily with file:line errors.</summary>
public static class JsonLines
{
    /// <summary>Each non-blank line of <paramref name="path"/> as (line number, object).</summary>
    /// <exception cref="FuseSharpException">The file is missing, or a line is not a JSON object (the message names file and line).</exception>
    public static IEnumerable<(int Line, JsonObject Value)> Read(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path)) throw new FuseSharpException($"{path}: no such file");
        return ReadLines(path);
    }

    private static IEnumerable<(int, JsonObject)> ReadLines(string path)
    {
        int lineNo = 0;
        foreach (var line in File.ReadLines(path))
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            JsonNode? node;
            try
            {
                node = JsonNode.Parse(line);
            }
            catch (JsonException e)
            {
                throw new FuseSharpException($"{path}:{lineNo}: not valid JSON ({e.Message})", inner: e, hint: null);
            }
            yield return (lineNo, node as JsonObject ?? throw new FuseSharpException($"{path}:{lineNo}: not a JSON object"));
        }
    }
}
