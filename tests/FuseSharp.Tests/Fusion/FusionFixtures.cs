using System.Text.Json;
using System.Text.Json.Nodes;

namespace FuseSharp.Tests.Fusion;

/// <summary>Reads the fusion fixtures (copied from ../shared/fixtures/fusion; see Fixtures/fusion/README.md).</summary>
internal static class FusionFixtures
{
    public static string Dir => Path.Combine(AppContext.BaseDirectory, "Fixtures", "fusion");

    public static string PathOf(string name) => Path.Combine(Dir, name);

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, Lazy<IReadOnlyList<JsonObject>>> LineCache = new();
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, Lazy<JsonNode>> JsonCache = new();

    /// <summary>The lines of a JSONL fixture, parsed once per test run (treat as read-only).</summary>
    public static IReadOnlyList<JsonObject> Lines(string name) => LineCache.GetOrAdd(name, n => new Lazy<IReadOnlyList<JsonObject>>(() =>
        File.ReadLines(PathOf(n)).Where(l => l.Length > 0).Select(l => JsonNode.Parse(l)!.AsObject()).ToList())).Value;

    /// <summary>A JSON fixture, parsed once per test run (treat as read-only).</summary>
    public static JsonNode Json(string name) => JsonCache.GetOrAdd(name, n => new Lazy<JsonNode>(() => JsonNode.Parse(File.ReadAllText(PathOf(n)))!)).Value;

    public static string[] Strings(JsonNode? node) => node!.AsArray().Select(x => x!.GetValue<string>()).ToArray();

    public static int[] Ints(JsonNode? node) => node!.AsArray().Select(x => x!.GetValue<int>()).ToArray();

    public static double[] Doubles(JsonNode? node) => node!.AsArray().Select(x => x!.GetValue<double>()).ToArray();

    public static int[][] IntRows(JsonNode? node) => node!.AsArray().Select(Ints).ToArray();

    public static float[][] FloatRows(JsonNode? node) => node!.AsArray().Select(r => r!.AsArray().Select(x => (float)x!.GetValue<double>()).ToArray()).ToArray();

    public static string Show(int[][] rows) => JsonSerializer.Serialize(rows);
}
