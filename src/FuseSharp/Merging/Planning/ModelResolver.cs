using FuseSharp.Merging.Config;

namespace FuseSharp.Merging.Planning;

/// <summary>
/// Turns a model reference into a local folder: a path relative to the working directory (mergekit's rule), then
/// relative to the config file's folder, then a Hugging Face id in the local hub cache
/// (<c>$HF_HUB_CACHE</c>, <c>$HF_HOME/hub</c> or <c>~/.cache/huggingface/hub</c>: <c>models--org--name/snapshots/REV</c>,
/// REV from <c>@revision</c> or <c>refs/main</c>). Nothing is downloaded.
/// </summary>
public static class ModelResolver
{
    /// <exception cref="MergeConfigException">The model cannot be found locally.</exception>
    public static string Resolve(ModelReference reference, string? configPath)
    {
        var path = reference.Path;
        if (Directory.Exists(path)) return System.IO.Path.GetFullPath(path);
        if (Directory.Exists(reference.Text)) return System.IO.Path.GetFullPath(reference.Text);
        if (configPath is not null && !System.IO.Path.IsPathRooted(path))
        {
            var dir = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(configPath));
            if (dir is not null && Directory.Exists(System.IO.Path.Combine(dir, path))) return System.IO.Path.GetFullPath(System.IO.Path.Combine(dir, path));
        }
        if (HubSnapshot(path, reference.Revision) is { } cached) return cached;

        if (reference.Text.Contains('+', StringComparison.Ordinal))
            throw new MergeConfigException(reference.Location.File, reference.Location.Line,
                $"model '{reference.Text}' looks like a 'base+lora' reference, which is not supported yet",
                "merge the LoRA adapter into its base model first and reference the merged folder");
        bool looksLikeHubId = !System.IO.Path.IsPathRooted(path) && path.Count(c => c == '/') == 1 && !path.StartsWith('.');
        throw new MergeConfigException(reference.Location.File, reference.Location.Line, $"model '{reference.Text}' not found",
            looksLikeHubId
                ? $"FuseSharp does not download models; fetch it first (huggingface-cli download {path} --local-dir DIR) and give the folder, or put it in the Hugging Face cache"
                : $"no folder '{System.IO.Path.GetFullPath(path)}'; paths are relative to the working directory (or to the config file)");
    }

    private static string? HubSnapshot(string id, string? revision)
    {
        if (System.IO.Path.IsPathRooted(id) || id.Count(c => c == '/') != 1) return null;
        foreach (var root in CacheRoots())
        {
            var repo = System.IO.Path.Combine(root, "models--" + id.Replace("/", "--", StringComparison.Ordinal));
            var snapshots = System.IO.Path.Combine(repo, "snapshots");
            if (!Directory.Exists(snapshots)) continue;
            string? rev = revision;
            if (rev is not null && File.Exists(System.IO.Path.Combine(repo, "refs", rev)))
                rev = File.ReadAllText(System.IO.Path.Combine(repo, "refs", rev)).Trim();
            rev ??= File.Exists(System.IO.Path.Combine(repo, "refs", "main")) ? File.ReadAllText(System.IO.Path.Combine(repo, "refs", "main")).Trim() : null;
            if (rev is not null && Directory.Exists(System.IO.Path.Combine(snapshots, rev))) return System.IO.Path.Combine(snapshots, rev);
            if (revision is null)
            {
                var only = Directory.GetDirectories(snapshots);
                if (only.Length == 1) return only[0];
            }
        }
        return null;
    }

    private static IEnumerable<string> CacheRoots()
    {
        if (Environment.GetEnvironmentVariable("HF_HUB_CACHE") is { Length: > 0 } c) yield return c;
        if (Environment.GetEnvironmentVariable("HF_HOME") is { Length: > 0 } h) yield return System.IO.Path.Combine(h, "hub");
        var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        if (home.Length > 0) yield return System.IO.Path.Combine(home, ".cache", "huggingface", "hub");
    }
}
