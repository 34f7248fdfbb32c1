using System.Text.Json;
using System.Text.Json.Nodes;
using FuseSharp.Fusion.Store;

namespace FuseSharp.Fusion.Text;

/// <summary>What a corpus row holds.</summary>
public enum CorpusFormat
{
    /// <summary>Plain text (FuseLLM): <c>{"text": ...}</c>.</summary>
    Text,

    /// <summary>
    /// A conversation (FuseChat): <c>{"conversations": [{"from": "human"|"gpt", "value": ...}, ...]}</c> (ShareGPT, as
    /// FuseChat-Mixture) or <c>{"messages": [{"role": "user"|"assistant", "content": ...}, ...]}</c>.
    /// </summary>
    Chat,
}

/// <summary>One turn of a conversation.</summary>
public sealed record ChatTurn(bool Assistant, string Content);

/// <summary>One corpus row: its 1-based line (or array index) for messages, and its text or conversation.</summary>
public sealed record CorpusRecord(long Line, string? Text, IReadOnlyList<ChatTurn>? Conversation)
{
    /// <summary>
    /// The row hash stored with every representation: of the text, or of the conversation in a canonical form (so two
    /// files that differ only in JSON formatting hash alike).
    /// </summary>
    public long Hash() => StoreManifest.HashText(Text ?? string.Join("\u0000", Conversation!.Select(t => (t.Assistant ? "A:" : "U:") + t.Content)));
}

/// <summary>
/// Reads a fusion corpus: JSON Lines (one object per line) or one JSON array of objects (FuseChat's files). Every
/// problem names the file and line.
/// </summary>
public static class FusionCorpus
{
    /// <summary>The rows in order.</summary>
    /// <exception cref="FusionException">A missing file, malformed JSON, a missing field, or a conversation that does not alternate.</exception>
    public static IEnumerable<CorpusRecord> Read(string path, CorpusFormat format, string textField = "text")
    {
        if (!File.Exists(path)) throw new FusionException($"{path}: no such corpus file", "give a JSONL file with one {\"text\": ...} (or conversation) object per line");
        bool array;
        using (var probe = new StreamReader(path))
        {
            int c;
            while ((c = probe.Read()) >= 0 && char.IsWhiteSpace((char)c)) { }
            array = c == '[';
        }
        if (array)
        {
            JsonArray items;
            try
            {
                items = JsonNode.Parse(File.ReadAllText(path))!.AsArray();
            }
            catch (Exception e) when (e is JsonException or InvalidOperationException)
            {
                throw new FusionException($"{path}: malformed JSON array ({e.Message})", "give JSON Lines or one JSON array of objects", e);
            }
            for (int i = 0; i < items.Count; i++) yield return Record(path, i + 1, items[i], format, textField);
            yield break;
        }
        long line = 0;
        foreach (var text in File.ReadLines(path))
        {
            line++;
            if (string.IsNullOrWhiteSpace(text)) continue;
            JsonNode? node;
            try
            {
                node = JsonNode.Parse(text);
            }
            catch (JsonException e)
            {
                throw new FusionException($"{path}:{line}: malformed JSON ({e.Message})", "every line must be one JSON object", e);
            }
            yield return Record(path, line, node, format, textField);
        }
    }

    private static CorpusRecord Record(string path, long line, JsonNode? node, CorpusFormat format, string textField)
    {
        if (node is not JsonObject o) throw new FusionException($"{path}:{line}: expected a JSON object");
        if (format == CorpusFormat.Text)
        {
            if (o[textField] is JsonValue v && v.TryGetValue<string>(out var s)) return new CorpusRecord(line, s, null);
            throw new FusionException($"{path}:{line}: no string field \"{textField}\"", $"text corpora hold {{\"{textField}\": \"...\"}} per line (--text-field to use another name)");
        }
        var turns = new List<ChatTurn>();
        if (o["conversations"] is JsonArray conv)
        {
            foreach (var t in conv)
            {
                var from = t?["from"]?.GetValue<string>();
                var value = t?["value"]?.GetValue<string>() ?? throw new FusionException($"{path}:{line}: a turn without \"value\"");
                turns.Add(new ChatTurn(from switch
                {
                    "gpt" or "assistant" or "chatgpt" or "bing" or "bard" => true,
                    "human" or "user" => false,
                    _ => throw new FusionException($"{path}:{line}: unknown speaker \"{from}\"", "turns are from \"human\" or \"gpt\""),
                }, value));
            }
        }
        else if (o["messages"] is JsonArray msgs)
        {
            foreach (var t in msgs)
            {
                var role = t?["role"]?.GetValue<string>();
                var content = t?["content"]?.GetValue<string>() ?? throw new FusionException($"{path}:{line}: a message without \"content\"");
                turns.Add(new ChatTurn(role switch
                {
                    "assistant" => true,
                    "user" => false,
                    _ => throw new FusionException($"{path}:{line}: role \"{role}\" is not supported by the FuseChat template", "messages alternate user / assistant (no system turns)"),
                }, content));
            }
        }
        else
        {
            throw new FusionException($"{path}:{line}: no \"conversations\" or \"messages\" list", "chat corpora hold ShareGPT {\"conversations\": [...]} or {\"messages\": [...]} per line");
        }
        // FuseChat drops a leading assistant turn, then requires strict alternation.
        if (turns.Count > 0 && turns[0].Assistant) turns.RemoveAt(0);
        for (int i = 0; i < turns.Count; i++)
        {
            if (turns[i].Assistant != (i % 2 == 1))
                throw new FusionException($"{path}:{line}: turn {i + 1} breaks the user/assistant alternation", "FuseChat requires conversations that alternate user, assistant, user, ...");
        }
        return new CorpusRecord(line, null, turns);
    }
}
