using System.Globalization;
using System.Text.Json.Nodes;
using FuseSharp.Diagnostics;
using FuseSharp.Tokenization;

namespace FuseSharp.Training.Data;

/// <summary>How a training data file is read (<c>--data-format</c>).</summary>
public enum DataFormat
{
    /// <summary>From the extension and the first record: <c>.jsonl/.json</c> with "input_ids", "conversations"/"messages" or "text"; anything else is plain text.</summary>
    Auto,

    /// <summary>A plain text file: one document, packed into blocks.</summary>
    Text,

    /// <summary>JSON Lines <c>{"text": ...}</c>: one document per record, packed into blocks with EOS between documents.</summary>
    Jsonl,

    /// <summary>ShareGPT-style conversations rendered with the model's chat template; loss on assistant tokens only; one sequence per record.</summary>
    Chat,

    /// <summary>JSON Lines <c>{"input_ids": [...]}</c> (optional "labels", "attention_mask") used as given, one sequence per record, no packing.</summary>
    Tokens,
}

/// <summary>How to turn a data file into training sequences.</summary>
/// <param name="Format">The file format.</param>
/// <param name="BlockSize">Tokens per packed block, and the longest sequence accepted from chat and tokens data.</param>
/// <param name="VocabSize">The model's vocabulary (logit dimension): every id must be below it (0 = unchecked).</param>
public sealed record DataOptions(DataFormat Format, int BlockSize, int VocabSize = 0);

/// <summary>
/// Loads training data: plain text and <c>{"text"}</c> JSON Lines packed into blocks with EOS between documents
/// (each document tokenized with the tokenizer's special tokens, e.g. Llama's BOS, then EOS appended unless the
/// tokenizer already ended it with one); <c>{"input_ids"}</c> rows as given; chat conversations rendered with the chat
/// template, labels on assistant tokens only (FuseChat's instruction masking). Documents are tokenized in parallel
/// and joined in file order, so the data is the same on any thread count.
/// </summary>
public static class TrainingData
{
    private const int TokenizeBatch = 512;

    /// <summary>The format of <paramref name="path"/> as <see cref="DataFormat.Auto"/> decides it.</summary>
    /// <exception cref="TrainingDataException">A JSON file whose first record has none of the known fields.</exception>
    public static DataFormat Detect(string path)
    {
        var ext = Path.GetExtension(path).ToLowerInvariant();
        if (ext is not (".jsonl" or ".json" or ".ndjson")) return DataFormat.Text;
        var first = JsonRecords.Read(path).FirstOrDefault() ?? throw new TrainingDataException(path, 0, "no records", "the training data is empty");
        if (first.Value.ContainsKey("input_ids")) return DataFormat.Tokens;
        if (first.Value.ContainsKey("conversations") || first.Value.ContainsKey("messages")) return DataFormat.Chat;
        if (first.Value.ContainsKey("text")) return DataFormat.Jsonl;
        throw first.Error("cannot tell the data format: the record has none of \"text\", \"input_ids\", \"conversations\", \"messages\"",
            "pass --data-format text|jsonl|chat|tokens");
    }

    /// <summary>Reads and tokenizes <paramref name="path"/>.</summary>
    /// <param name="path">The data file.</param>
    /// <param name="options">Format, block size, vocabulary.</param>
    /// <param name="tokenizer">The model's tokenizer (not needed for <see cref="DataFormat.Tokens"/>).</param>
    /// <param name="chat">The chat template renderer (only for <see cref="DataFormat.Chat"/>).</param>
    /// <param name="progress">Progress and notices.</param>
    /// <param name="cancellation">Stops between batches.</param>
    /// <exception cref="TrainingDataException">Missing, empty or malformed data; ids outside the vocabulary; sequences longer than the block size.</exception>
    public static ITrainingDataset Load(string path, DataOptions options, ITokenizer? tokenizer, IChatRenderer? chat = null,
        IProgressReporter? progress = null, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(options);
        if (options.BlockSize < 2) throw new TrainingException($"--block-size {options.BlockSize} is too small", "a block needs at least 2 tokens (one prediction)");
        if (!File.Exists(path)) throw new TrainingDataException(path, 0, "file not found", "give the path of the training data with --data");
        progress ??= NullProgress.Instance;
        var format = options.Format == DataFormat.Auto ? Detect(path) : options.Format;
        ITrainingDataset data = format switch
        {
            DataFormat.Text => Packed(path, [File.ReadAllText(path)], options, RequireTokenizer(tokenizer, format), progress, cancellation),
            DataFormat.Jsonl => Packed(path, JsonRecords.Read(path).Select(r => r.RequireString("text")), options, RequireTokenizer(tokenizer, format), progress, cancellation),
            DataFormat.Tokens => Tokens(path, options, progress, cancellation),
            DataFormat.Chat => Chat(path, options, RequireTokenizer(tokenizer, format), chat ?? throw new TrainingException("chat data needs the model's chat template",
                "the model folder has no chat_template; use a model with one, or pass plain text with --data-format text"), progress, cancellation),
            _ => throw new ArgumentOutOfRangeException(nameof(options), options.Format, "unknown data format"),
        };
        if (data.Count == 0) throw new TrainingDataException(path, 0, "no training sequences", "the data file is empty or every record was dropped");
        progress.Message($"data: {data.Description}");
        return data;
    }

    private static ITokenizer RequireTokenizer(ITokenizer? tokenizer, DataFormat format) =>
        tokenizer ?? throw new TrainingException($"{format.ToString().ToLowerInvariant()} data needs the model's tokenizer",
            "the model folder needs tokenizer.json or tokenizer.model; or give pre-tokenized data with --data-format tokens");

    private static PackedDataset Packed(string path, IEnumerable<string> documents, DataOptions options, ITokenizer tokenizer, IProgressReporter progress, CancellationToken ct)
    {
        int? eos = tokenizer.EosTokenId;
        if (eos is null) progress.Message("notice: the tokenizer has no EOS token; documents are packed without a separator");
        var stream = new List<int>();
        long docs = 0;
        using (var task = progress.Start("tokenizing", 0, ProgressUnit.Items))
        {
            // Empty documents are skipped (they would add only BOS/EOS).
            foreach (var batch in documents.Where(d => !string.IsNullOrWhiteSpace(d)).Chunk(TokenizeBatch))
            {
                ct.ThrowIfCancellationRequested();
                var encoded = new int[batch.Length][];
                Parallel.For(0, batch.Length, Tensors.Parallelism.Options, i =>
                {
                    var ids = tokenizer.Encode(batch[i], addSpecialTokens: true).Ids;
                    bool addEos = eos is { } e && (ids.Count == 0 || ids[^1] != e);
                    var a = new int[ids.Count + (addEos ? 1 : 0)];
                    for (int j = 0; j < ids.Count; j++) a[j] = ids[j];
                    if (addEos) a[^1] = eos!.Value;
                    encoded[i] = a;
                });
                foreach (var a in encoded)
                {
                    CheckIds(path, 0, a, options.VocabSize, "token");
                    stream.AddRange(a);
                }
                docs += batch.Length;
                task.Advance(batch.Length);
            }
        }
        if (docs == 0 || stream.Count == 0) throw new TrainingDataException(path, 0, "no text to train on", "the data file is empty");
        if (stream.Count < options.BlockSize)
            throw new TrainingDataException(path, 0, $"{stream.Count} tokens are fewer than one block of {options.BlockSize}", "lower --block-size or give more text");
        int blocks = stream.Count / options.BlockSize;
        string desc = string.Create(CultureInfo.InvariantCulture,
            $"{docs} document(s), {stream.Count:N0} tokens packed into {blocks} block(s) of {options.BlockSize} ({stream.Count - (long)blocks * options.BlockSize} trailing tokens dropped)");
        return new PackedDataset(stream.ToArray(), options.BlockSize, desc);
    }

    private static InMemoryDataset Tokens(string path, DataOptions options, IProgressReporter progress, CancellationToken ct)
    {
        var examples = new List<TrainingExample>();
        using var task = progress.Start("reading", 0, ProgressUnit.Items);
        foreach (var r in JsonRecords.Read(path))
        {
            ct.ThrowIfCancellationRequested();
            var ids = r.IntArray("input_ids", required: true)!;
            var labels = r.IntArray("labels", required: false);
            var mask = r.IntArray("attention_mask", required: false);
            if (labels is not null && labels.Length != ids.Length) throw r.Error($"{labels.Length} labels for {ids.Length} input_ids");
            if (mask is not null)
            {
                if (mask.Length != ids.Length) throw r.Error($"{mask.Length} attention_mask values for {ids.Length} input_ids");
                int real = Array.IndexOf(mask, 0);
                if (real < 0) real = mask.Length;
                if (mask.Skip(real).Any(m => m != 0) || mask.Take(real).Any(m => m != 1))
                    throw r.Error("attention_mask must be ones followed by zeros (right padding)", "give unpadded rows or right-padded rows");
                ids = ids[..real];
                if (labels is not null) labels = labels[..real];
            }
            if (ids.Length < 2) throw r.Error($"a sequence of {ids.Length} token(s) has nothing to predict", "each row needs at least 2 tokens");
            if (ids.Length > options.BlockSize)
                throw r.Error($"a sequence of {ids.Length} tokens is longer than the block size {options.BlockSize}", "raise --block-size (up to the model's max positions) or shorten the row");
            CheckIds(r, ids, options.VocabSize, "input id");
            if (labels is not null)
                foreach (var l in labels)
                    if (l != TrainingExample.IgnoreIndex && (l < 0 || (options.VocabSize > 0 && l >= options.VocabSize)))
                        throw r.Error($"label {l} is neither -100 nor inside the vocabulary of {options.VocabSize}");
            examples.Add(new TrainingExample(ids, labels ?? ids));
            task.Advance();
        }
        long tokens = examples.Sum(e => (long)e.Length);
        return new InMemoryDataset(examples, string.Create(CultureInfo.InvariantCulture, $"{examples.Count} pre-tokenized sequence(s), {tokens:N0} tokens"));
    }

    private static InMemoryDataset Chat(string path, DataOptions options, ITokenizer tokenizer, IChatRenderer chat, IProgressReporter progress, CancellationToken ct)
    {
        var examples = new List<TrainingExample>();
        int truncated = 0, dropped = 0, droppedLeading = 0;
        using var task = progress.Start("rendering chats", 0, ProgressUnit.Items);
        foreach (var batch in JsonRecords.Read(path).Chunk(TokenizeBatch))
        {
            ct.ThrowIfCancellationRequested();
            var parsed = new (JsonRecord Record, List<ChatTurn> Turns)[batch.Length];
            for (int i = 0; i < batch.Length; i++)
            {
                var (turns, leading) = ChatTurns(batch[i]);
                parsed[i] = (batch[i], turns);
                if (leading) droppedLeading++;
            }
            var results = new (TrainingExample? Example, bool Truncated)[parsed.Length];
            Parallel.For(0, parsed.Length, Tensors.Parallelism.Options, i => results[i] = Render(parsed[i].Record, parsed[i].Turns, tokenizer, chat, options));
            foreach (var (example, wasTruncated) in results)
            {
                if (wasTruncated) truncated++;
                if (example is null) dropped++;
                else examples.Add(example);
            }
            task.Advance(batch.Length);
        }
        if (droppedLeading > 0) progress.Message($"notice: {droppedLeading} conversation(s) started with an assistant turn; it was dropped (as FuseChat does)");
        if (truncated > 0) progress.Message($"notice: {truncated} conversation(s) were cut to the block size of {options.BlockSize} tokens");
        if (dropped > 0) progress.Message($"notice: {dropped} conversation(s) had no assistant token left within the block size and were skipped");
        long tokens = examples.Sum(e => (long)e.Length);
        long supervised = examples.Sum(e => (long)e.PredictedCount);
        return new InMemoryDataset(examples, string.Create(CultureInfo.InvariantCulture,
            $"{examples.Count} conversation(s), {tokens:N0} tokens, {supervised:N0} assistant tokens trained on ({dropped} skipped, {truncated} truncated)"));
    }

    /// <summary>The messages of a ShareGPT (<c>conversations</c>: from/value) or OpenAI (<c>messages</c>: role/content) record.</summary>
    private static (List<ChatTurn> Turns, bool DroppedLeading) ChatTurns(JsonRecord r)
    {
        var turns = new List<ChatTurn>();
        if (r.Value["system"] is JsonValue sys && sys.TryGetValue<string>(out var systemPrompt) && systemPrompt.Length > 0)
            turns.Add(new ChatTurn("system", systemPrompt));
        (string roleKey, string contentKey) = r.Value.ContainsKey("conversations") ? ("from", "value") : ("role", "content");
        if ((r.Value["conversations"] ?? r.Value["messages"]) is not JsonArray list || list.Count == 0)
            throw r.Error("expected a non-empty \"conversations\" or \"messages\" array");
        foreach (var item in list)
        {
            if (item is not JsonObject m) throw r.Error("every message must be a JSON object");
            var from = m[roleKey] is JsonValue rv && rv.TryGetValue<string>(out var rs) ? rs : throw r.Error($"a message has no \"{roleKey}\" string");
            var role = from.ToLowerInvariant() switch
            {
                "human" or "user" => "user",
                "gpt" or "assistant" or "chatgpt" or "bing" or "bard" or "model" => "assistant",
                "system" => "system",
                "tool" or "function" or "ipython" => "tool",
                _ => throw r.Error($"unknown role \"{from}\"", "roles are human/user, gpt/assistant, system and tool"),
            };
            turns.Add(new ChatTurn(role, ContentText(r, m[contentKey], contentKey)));
        }
        // FuseChat's get_data_representation drops a first message that is not from the human.
        int firstUser = turns.FindIndex(t => t.Role is "user" or "tool");
        var kept = turns.Where((t, i) => !(t.Role == "assistant" && firstUser >= 0 && i < firstUser)).ToList();
        if (!kept.Any(t => t.Role == "assistant"))
            throw r.Error("the conversation has no assistant turn, so there is nothing to train on", "remove the record, or check the role names (gpt/assistant)");
        return (kept, kept.Count != turns.Count);
    }

    private static string ContentText(JsonRecord r, JsonNode? content, string key)
    {
        if (content is JsonValue v && v.TryGetValue<string>(out var s)) return s;
        // The OpenAI multi-part form: [{"type": "text", "text": ...}, ...].
        if (content is JsonArray parts)
            return string.Concat(parts.Select(p => p is JsonObject o && o["text"] is JsonValue t && t.TryGetValue<string>(out var ts) ? ts
                : throw r.Error($"\"{key}\" parts must be {{\"type\": \"text\", \"text\": ...}}")));
        throw r.Error($"a message has no \"{key}\" string");
    }

    private static (TrainingExample?, bool) Render(JsonRecord r, List<ChatTurn> turns, ITokenizer tokenizer, IChatRenderer chat, DataOptions options)
    {
        RenderedChat rendered;
        try
        {
            rendered = chat.Render(turns);
        }
        catch (FuseSharpException e)
        {
            throw r.Error($"the chat template cannot render this conversation: {e.Message}", e.Hint);
        }
        // The template writes the special tokens (BOS, turn markers) itself: encode without adding more, as
        // apply_chat_template(tokenize=True) does.
        var enc = tokenizer.Encode(rendered.Text, addSpecialTokens: false);
        int n = enc.Count;
        var ids = new int[n];
        var labels = new int[n];
        for (int i = 0; i < n; i++)
        {
            ids[i] = enc.Ids[i];
            var (s, e) = enc.Offsets[i];
            bool assistant = false;
            foreach (var (a, b) in rendered.AssistantSpans)
                if (s < b && e > a) { assistant = true; break; }
            labels[i] = assistant ? ids[i] : TrainingExample.IgnoreIndex;
        }
        CheckIds(r, ids, options.VocabSize, "token");
        bool truncated = n > options.BlockSize;
        if (truncated)
        {
            ids = ids[..options.BlockSize];
            labels = labels[..options.BlockSize];
        }
        var example = new TrainingExample(ids, labels);
        return (example.PredictedCount > 0 ? example : null, truncated);
    }

    private static void CheckIds(JsonRecord r, int[] ids, int vocab, string what)
    {
        foreach (var id in ids)
            if (id < 0 || (vocab > 0 && id >= vocab))
                throw r.Error($"{what} {id} is outside the model's vocabulary of {vocab}", "the data was tokenized for another model, or the tokenizer does not match the model");
    }

    private static void CheckIds(string path, long line, int[] ids, int vocab, string what)
    {
        foreach (var id in ids)
            if (id < 0 || (vocab > 0 && id >= vocab))
                throw new TrainingDataException(path, line, $"{what} {id} is outside the model's vocabulary of {vocab}", "the tokenizer does not match the model");
    }
}
