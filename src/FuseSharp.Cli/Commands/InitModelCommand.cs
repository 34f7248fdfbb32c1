using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using FuseSharp.IO;
using FuseSharp.Models;
using FuseSharp.Tensors;

namespace FuseSharp.Cli.Commands;

/// <summary><c>fusesharp init-model --arch NAME --config FILE.json --out DIR [--seed N]</c>: a randomly initialised model folder.</summary>
internal static class InitModelCommand
{
    public static Command Create()
    {
        var arch = new Option<string>("--arch") { Description = "Architecture (model_type): " + string.Join(", ", ArchitectureRegistry.All.Select(a => a.ModelType)) + ".", Required = true };
        var config = new Option<string>("--config") { Description = "config.json fields (hidden_size, num_hidden_layers, ...) in the family's own names.", Required = true };
        var output = new Option<string>("--out") { Description = "Output model folder (written atomically).", Required = true };
        var seed = new Option<long>("--seed") { Description = "Seed of the initialisation (default 0)." };
        var dtype = new Option<string>("--dtype") { Description = "float32 (default) or bfloat16.", DefaultValueFactory = _ => "float32" };
        var overwrite = new Option<bool>("--overwrite") { Description = "Replace an existing output folder." };
        var cmd = new Command("init-model", "Create a randomly initialised model folder (config.json, model.safetensors, generation_config.json).")
            { arch, config, output, seed, dtype, overwrite };
        cmd.SetAction(pr => CliContext.Run(() => Execute(pr.GetValue(arch)!, pr.GetValue(config)!, pr.GetValue(output)!, pr.GetValue(seed), pr.GetValue(dtype)!, pr.GetValue(overwrite))));
        return cmd;
    }

    private static int Execute(string archName, string configPath, string outDir, long seed, string dtypeName, bool overwrite)
    {
        var architecture = ArchitectureRegistry.Get(archName);
        var dtype = DTypes.ParseUserName(dtypeName) ?? throw new FuseSharpException($"--dtype: unknown type '{dtypeName}'", "use float32 or bfloat16");
        if (!File.Exists(configPath)) throw new ModelConfigException(configPath, "not found");
        JsonObject raw;
        try
        {
            raw = JsonNode.Parse(File.ReadAllText(configPath)) as JsonObject ?? throw new ModelConfigException(configPath, "is not a JSON object");
        }
        catch (JsonException e)
        {
            throw new ModelConfigException(configPath, $"is not valid JSON ({e.Message})", inner: e);
        }
        var (config, spec) = ModelInitializer.PrepareConfig(architecture, raw, dtype, configPath);
        ModelInitializer.WriteFolder(outDir, architecture, config, spec, seed, dtype, overwrite, ConsoleProgress.Instance, CliContext.Cancellation);
        long parameters = architecture.Parameters(spec).Sum(p => p.ElementCount);
        Console.Error.WriteLine($"wrote {outDir}: {architecture.ModelType}, {parameters:N0} parameters ({dtype.TorchName()}), seed {seed}");
        return 0;
    }
}
