using System.Text.Json.Nodes;
using FuseSharp.IO;

namespace FuseSharp.Tests.Models;

/// <summary>The golden model cases copied from shared/fixtures/models (README.md there explains them).</summary>
internal static class ModelFixtures
{
    public static readonly string[] Names =
    [
        "llama-tiny", "llama-tied-tiny", "llama-bf16-tiny", "mistral-tiny", "qwen2-tiny", "mixtral-tiny", "phi3-tiny",
        "gemma-tiny", "internlm2-tiny", "gpt2-tiny", "gpt_neox-tiny", "mpt-tiny", "stories260K",
    ];

    public static string Folder(string name) => TestPaths.Fixture("models", name);

    public static JsonObject Case(string name) => (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(Folder(name), "case.json")))!;

    public static JsonObject Generate(string name) => (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(Folder(name), "generate.json")))!;

    /// <summary>input_ids (B, T) from expected.safetensors.</summary>
    public static (int B, int T, int[] Ids) InputIds(string name)
    {
        using var f = SafetensorsFile.Open(Path.Combine(Folder(name), "expected.safetensors"));
        var e = f.GetEntry("input_ids");
        var ids = new float[e.ElementCount];
        f.ReadSingle("input_ids", ids);
        return ((int)e.Shape[0], (int)e.Shape[1], ids.Select(v => (int)v).ToArray());
    }

    public static float[] Expected(string name, string tensor)
    {
        using var f = SafetensorsFile.Open(Path.Combine(Folder(name), "expected.safetensors"));
        var a = new float[f.GetEntry(tensor).ElementCount];
        f.ReadSingle(tensor, a);
        return a;
    }

    public static (double Abs, double Rel) Tolerance(string name, string what)
    {
        var t = Case(name)["tolerances"]![what]!;
        return (t["abs"]!.GetValue<double>(), t["rel"]!.GetValue<double>());
    }

    /// <summary>A copy of a fixture folder (model files only) that a test may modify.</summary>
    public static string CopyToTemp(string name, string tempRoot)
    {
        var dst = Path.Combine(tempRoot, name);
        Directory.CreateDirectory(dst);
        foreach (var f in new[] { "config.json", "model.safetensors" }) File.Copy(Path.Combine(Folder(name), f), Path.Combine(dst, f));
        return dst;
    }
}
