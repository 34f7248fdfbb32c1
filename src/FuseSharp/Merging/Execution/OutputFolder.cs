using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using FuseSharp.IO;
using FuseSharp.Merging.Planning;

namespace FuseSharp.Merging.Execution;

/// <summary>
/// Everything in a merged model folder besides the weights (spec §4.4): <c>config.json</c> (dtype, layer count,
/// vocab size updated), the tokenizer files (copied from the donor or rewritten), <c>generation_config.json</c> and
/// processor "tagalong" files from the donor, the chat template, <c>README.md</c> (a model card with the YAML),
/// <c>fusesharp_config.yml</c> and <c>merge_report.json</c>.
/// </summary>
public static class OutputFolder
{
    /// <summary>Non-tokenizer files that travel with a model (mergekit copies the same kind of "tagalong" files).</summary>
    private static readonly string[] TagalongFiles =
        ["generation_config.json", "preprocessor_config.json", "processor_config.json", "video_preprocessor_config.json"];

    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static void WriteMetadata(MergePlan plan, string folder, MergeReport report)
    {
        new ModelConfig(plan.OutputConfig).Save(Path.Combine(folder, "config.json"));
        foreach (var name in TagalongFiles)
        {
            var src = Path.Combine(plan.Donor.Path, name);
            if (File.Exists(src)) File.Copy(src, Path.Combine(folder, name), overwrite: true);
        }
        WriteTokenizer(plan, folder);
        if (plan.Options.WriteModelCard)
        {
            AtomicFile.WriteAllText(Path.Combine(folder, "fusesharp_config.yml"), plan.Config.SourceText.TrimEnd() + "\n");
            AtomicFile.WriteAllText(Path.Combine(folder, "README.md"), ModelCard(plan));
        }
        AtomicFile.WriteAllText(Path.Combine(folder, "merge_report.json"), report.ToJsonString());
    }

    private static void WriteTokenizer(MergePlan plan, string folder)
    {
        var tok = plan.Tokenizer;
        if (tok.DonorFolder is { } donor)
        {
            foreach (var name in ModelFolder.TokenizerFileNames)
            {
                var src = Path.Combine(donor, name);
                if (File.Exists(src) && !tok.Rewritten.ContainsKey(name)) File.Copy(src, Path.Combine(folder, name), overwrite: true);
            }
            foreach (var (name, content) in tok.Rewritten) AtomicFile.WriteAllText(Path.Combine(folder, name), content);
        }
        if (plan.ChatTemplate is { } template)
        {
            var cfgPath = Path.Combine(folder, "tokenizer_config.json");
            JsonObject cfg;
            try
            {
                cfg = File.Exists(cfgPath) ? JsonNode.Parse(File.ReadAllText(cfgPath)) as JsonObject ?? [] : [];
            }
            catch (JsonException)
            {
                cfg = [];
            }
            cfg["chat_template"] = template;
            AtomicFile.WriteAllText(cfgPath, cfg.ToJsonString(Indented) + "\n");
            // A separate template file takes precedence in transformers: keep it consistent, or drop the JSON form.
            var jinja = Path.Combine(folder, "chat_template.jinja");
            if (File.Exists(jinja)) AtomicFile.WriteAllText(jinja, template);
            var json = Path.Combine(folder, "chat_template.json");
            if (File.Exists(json)) File.Delete(json);
        }
    }

    /// <summary>A Hugging Face model card: front matter, the method with its paper, base and merged models, the YAML.</summary>
    public static string ModelCard(MergePlan plan)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        var baseModel = plan.Config.BaseModel;
        var merged = plan.Models.Where(m => baseModel is null || !m.Reference.SameModel(baseModel)).ToList();
        sb.AppendLine("---");
        sb.AppendLine("base_model:");
        foreach (var m in plan.Models) sb.AppendLine(inv, $"- {m.Name}");
        sb.AppendLine("library_name: transformers");
        sb.AppendLine("tags:");
        sb.AppendLine("- mergekit");
        sb.AppendLine("- merge");
        sb.AppendLine("- fusesharp");
        sb.AppendLine("---");
        sb.AppendLine(inv, $"# {plan.Config.Name ?? "merged model"}");
        sb.AppendLine();
        sb.AppendLine("This is a merge of pre-trained language models created with FuseSharp (mergekit-compatible configuration).");
        sb.AppendLine();
        sb.AppendLine("## Merge Details");
        sb.AppendLine("### Merge Method");
        sb.AppendLine();
        var method = plan.Method.Reference is null ? plan.Method.PrettyName : $"[{plan.Method.PrettyName}]({plan.Method.Reference})";
        sb.Append(inv, $"This model was merged using the {method} merge method");
        sb.AppendLine(baseModel is null ? "." : $" using {baseModel.Text} as a base.");
        sb.AppendLine();
        sb.AppendLine("### Models Merged");
        sb.AppendLine();
        sb.AppendLine("The following models were included in the merge:");
        foreach (var m in merged) sb.AppendLine(inv, $"* {m.Name}");
        sb.AppendLine();
        sb.AppendLine("### Configuration");
        sb.AppendLine();
        sb.AppendLine("The following YAML configuration was used to produce this model:");
        sb.AppendLine();
        sb.AppendLine("```yaml");
        sb.AppendLine(plan.Config.SourceText.TrimEnd());
        sb.AppendLine("```");
        return sb.ToString();
    }
}
