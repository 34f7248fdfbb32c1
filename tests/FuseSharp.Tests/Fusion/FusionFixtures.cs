using System.Text.Json;
using System.Text.Json.Nodes;

namespace FuseSharp.Tests.Fusion;

/// <summary>Reads the fusion fixtures (copied from ../shared/fixtures/fusion; see Fixtures/fusion/README.md).</summary>
internal static class FusionFixtures
{
    public static string Dir => Path.Combine(AppContext.BaseDirectory, "Fixtures", "fusion");

    public static string PathOf(string name) => Path.Combine(Dir, name);

    public static IEnumerable<JsonObject> Lines(string name) =>
        File.ReadLines(PathOf(name)).Where(l => l.Length > 0).Select(l => JsonNode.Parse(l)!.AsObject());

    public static JsonNode Json(string name) => JsonNode.Parse(File.ReadAllText(PathOf(name)))!;

    public static string[] Strings(JsonNode? node) => node!.AsArray().Select(x => x!.GetValue<string>()).ToArray();

    public static int[] Ints(JsonNode? node) => node!.AsArray().Select(x => x!.GetValue<int>()).ToArray();

    public static double[] Doubles(JsonNode? node) => node!.AsArray().Select(x => x!.GetValue<double>()).ToArray();

    public static int[][] IntRows(JsonNode? node) => node!.AsArray().Select(Ints).ToArray();

    public static float[][] FloatRows(JsonNode? node) => node!.AsArray().Select(r => r!.AsArray().Select(x => (float)x!.GetValue<double>()).ToArray()).ToArray();

    public static string Show(int[][] rows) => JsonSerializer.Serialize(rows);
}
