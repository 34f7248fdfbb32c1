using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using FuseSharp.Diagnostics;
using FuseSharp.Tokenization;
using FuseSharp.Tokenization.ChatTemplates.Jinja;

namespace FuseSharp.Cli.Commands;

/// <summary>
/// <c>fusesharp tokenize --tokenizer PATH (--text TEXT | --input FILE.jsonl) [--add-special-tokens] [--json]</c>:
/// ids, pieces, offsets and the decoded text. Offsets are printed as Hugging Face's Python API reports them: character
/// (code point) positions in the input; <c>--offsets utf16</c> prints .NET UTF-16 positions instead.
/// </summary>
internal static class TokenizeCommand
{
    private const int BatchLines = 2048;

    public static Command Create()
    {
        var tokenizer = new Option<string>("--tokenizer") { Description = "A folder, tokenizer.json, tokenizer.model (SentencePiece or tiktoken), vocab.json, or .gguf.", Required = true };
        var text = new Option<string?>("--text") { Description = "The text to tokenize." };
        var input = new Option<string?>("--input") { Description = "A JSONL file: one object with a \"text\" field per line; prints one JSON object per line." };
        var special = new Option<bool>("--add-special-tokens") { Description = "Add the special tokens of the tokenizer (BOS/EOS, templates)." };
        var json = new Option<bool>("--json") { Description = "Print JSON: {\"ids\", \"tokens\", \"offsets\", \"decoded\"}." };
        var offsets = new Option<string>("--offsets") { Description = "Offset unit: chars (code points, as Hugging Face's Python API; default) or utf16.", DefaultValueFactory = _ => "chars" };
        var noConfig = new Option<bool>("--no-tokenizer-config") { Description = "Ignore tokenizer_config.json (load tokenizer.json exactly as the Rust tokenizers library does)." };
        var cmd = new Command("tokenize", "Encode text with a tokenizer and show ids, tokens, offsets and the decoded text.") { tokenizer, text, input, special, json, offsets, noConfig };
        cmd.SetAction(pr => CliContext.Run(() => Execute(pr.GetValue(tokenizer)!, pr.GetValue(text), pr.GetValue(input), pr.GetValue(special), pr.GetValue(json), pr.GetValue(offsets)!, pr.GetValue(noConfig))));
        return cmd;
    }

    private static int Execute(string tokenizerPath, string? text, string? input, bool addSpecial, bool json, string offsetUnit, bool noConfig)
    {
        if ((text is null) == (input is null))
            throw new FuseSharpException("give exactly one of --text and --input", "--text \"some text\" or --input lines.jsonl");
        bool chars = offsetUnit switch
        {
            "chars" => true,
            "utf16" => false,
            _ => throw new FuseSharpException($"--offsets must be chars or utf16, got '{offsetUnit}'"),
        };
        var tokenizer = TokenizerLoader.Load(tokenizerPath, new TokenizerLoadOptions { ApplyTokenizerConfig = !noConfig });
        Console.OutputEncoding = new UTF8Encoding(false);
        using var stdout = Console.OpenStandardOutput();
        if (text is not null)
        {
            var enc = tokenizer.Encode(text, addSpecial);
            var decoded = tokenizer.Decode(enc.Ids);
            if (json)
            {
                WriteJson(stdout, text, enc, decoded, chars);
            }
            else
            {
                var bytes = System.Text.Encoding.UTF8.GetBytes(Human(text, enc, decoded, chars));
                stdout.Write(bytes);
            }
            return 0;
        }
        RunFile(tokenizer, input!, addSpecial, chars, stdout);
        return 0;
    }

    // Streams the JSONL file in batches: read and validate, encode in parallel, write in input order.
    private static void RunFile(ITokenizer tokenizer, string path, bool addSpecial, bool chars, Stream stdout)
    {
        if (!File.Exists(path)) throw new FuseSharpException($"{path}: not found");
        var info = new FileInfo(path);
        using var progress = ConsoleProgress.Instance.Start("tokenize", info.Length, ProgressUnit.Bytes);
        int lineNo = 0;
        var texts = new List<string>(BatchLines);
        long bytes = 0;
        void Flush()
        {
            if (texts.Count == 0) return;
            var encodings = BatchEncoding.Run(tokenizer, texts, addSpecial, CliContext.Cancellation);
            for (int i = 0; i < texts.Count; i++) WriteJson(stdout, texts[i], encodings[i], tokenizer.Decode(encodings[i].Ids), chars);
            progress.SetCompleted(Math.Min(bytes, info.Length));
            texts.Clear();
        }
        foreach (var raw in ReadLines(path))
        {
            CliContext.Cancellation.ThrowIfCancellationRequested();
            lineNo++;
            bytes += raw.Length + 1;
            string line;
            try
            {
                line = StrictUtf8.GetString(raw);
            }
            catch (DecoderFallbackException)
            {
                throw new FuseSharpException($"{path}: line {lineNo}: invalid UTF-8", "the input must be UTF-8 encoded JSON lines");
            }
            if (lineNo == 1 && line.StartsWith('\uFEFF')) line = line[1..];
            if (line.Trim().Length == 0) continue;
            texts.Add(ReadText(line, path, lineNo));
            if (texts.Count >= BatchLines) Flush();
        }
        Flush();
        stdout.Flush();
    }

    private static readonly UTF8Encoding StrictUtf8 = new(false, throwOnInvalidBytes: true);

    // The lines of a file as bytes (without '\n' or "\r\n"), read in chunks, so each line is decoded on its own and a
    // decoding error can name its line.
    private static IEnumerable<byte[]> ReadLines(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
        var chunk = new byte[1 << 20];
        var line = new List<byte>();
        int n;
        while ((n = stream.Read(chunk)) > 0)
        {
            int from = 0;
            for (int i = 0; i < n; i++)
            {
                if (chunk[i] != (byte)'\n') continue;
                line.AddRange(chunk.AsSpan(from, i - from));
                if (line.Count > 0 && line[^1] == (byte)'\r') line.RemoveAt(line.Count - 1);
                yield return [.. line];
                line.Clear();
                from = i + 1;
            }
            line.AddRange(chunk.AsSpan(from, n - from));
        }
        if (line.Count > 0) yield return [.. line];
    }

    private static string ReadText(string line, string path, int lineNo)
    {
        try
        {
            using var doc = JsonDocument.Parse(line);
            if (doc.RootElement.ValueKind != JsonValueKind.Object || !doc.RootElement.TryGetProperty("text", out var t) || t.ValueKind != JsonValueKind.String)
                throw new FuseSharpException($"{path}: line {lineNo}: expected an object with a string field \"text\"", "each line must look like {\"text\": \"...\"}");
            return t.GetString()!;
        }
        catch (JsonException e)
        {
            throw new FuseSharpException($"{path}: line {lineNo}: not valid JSON ({e.Message})", "each line must look like {\"text\": \"...\"}");
        }
        catch (InvalidOperationException)
        {
            throw new FuseSharpException($"{path}: line {lineNo}: the text is not valid Unicode (unpaired surrogate escape)");
        }
    }

    /// <summary>UTF-16 offset → code point offset for every position of <paramref name="text"/>.</summary>
    internal static int[] CodePointIndex(string text)
    {
        var map = new int[text.Length + 1];
        int cp = 0;
        for (int i = 0; i < text.Length; i++)
        {
            map[i] = cp;
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1])) map[++i] = cp;
            cp++;
        }
        map[text.Length] = cp;
        return map;
    }

    private static void WriteJson(Stream output, string text, Tokenization.Encoding enc, string decoded, bool chars)
    {
        var map = chars ? CodePointIndex(text) : null;
        var sb = new StringBuilder(64 + (enc.Count * 24) + decoded.Length);
        sb.Append("{\"ids\":[");
        for (int i = 0; i < enc.Count; i++) sb.Append(i == 0 ? "" : ",").Append(enc.Ids[i].ToString(CultureInfo.InvariantCulture));
        sb.Append("],\"tokens\":[");
        for (int i = 0; i < enc.Count; i++)
        {
            if (i > 0) sb.Append(',');
            AppendJsonString(sb, enc.Tokens[i]);
        }
        sb.Append("],\"offsets\":[");
        for (int i = 0; i < enc.Count; i++)
        {
            var (s, e) = enc.Offsets[i];
            sb.Append(i == 0 ? "[" : ",[").Append((map is null ? s : map[s]).ToString(CultureInfo.InvariantCulture))
                .Append(',').Append((map is null ? e : map[e]).ToString(CultureInfo.InvariantCulture)).Append(']');
        }
        sb.Append("],\"decoded\":");
        AppendJsonString(sb, decoded);
        sb.Append("}\n");
        output.Write(System.Text.Encoding.UTF8.GetBytes(sb.ToString()));
    }

    /// <summary>A JSON string as Python's <c>json.dumps(ensure_ascii=False)</c> writes it (the chat templates' emulation).</summary>
    internal static void AppendJsonString(StringBuilder sb, string s) =>
        sb.Append(PyJson.Dumps(s, ensureAscii: false, indent: null, itemSeparator: null, keySeparator: null, sortKeys: false));

    private static string Human(string text, Tokenization.Encoding enc, string decoded, bool chars)
    {
        var inv = CultureInfo.InvariantCulture;
        var map = chars ? CodePointIndex(text) : null;
        static string Quote(string s)
        {
            var q = new StringBuilder(s.Length + 2);
            AppendJsonString(q, s);
            return q.ToString();
        }
        var rows = enc.Ids.Select((id, i) =>
        {
            var (s, e) = enc.Offsets[i];
            return (Id: id.ToString(inv), Token: Quote(enc.Tokens[i]), Offsets: string.Create(inv, $"[{(map is null ? s : map[s])}, {(map is null ? e : map[e])}]"),
                Text: e > s ? Quote(text[s..e]) : "", Special: enc.SpecialTokensMask?[i] == true);
        }).ToList();
        int wId = Math.Max(2, rows.Select(r => r.Id.Length).DefaultIfEmpty(0).Max());
        int wTok = Math.Max(5, rows.Select(r => r.Token.Length).DefaultIfEmpty(0).Max());
        int wOff = Math.Max(7, rows.Select(r => r.Offsets.Length).DefaultIfEmpty(0).Max());
        var sb = new StringBuilder();
        sb.AppendLine(inv, $"{enc.Count} tokens");
        sb.AppendLine(inv, $"ids: [{string.Join(", ", enc.Ids)}]");
        sb.AppendLine(inv, $"{"id".PadLeft(wId)}  {"token".PadRight(wTok)}  {"offsets".PadRight(wOff)}  text");
        foreach (var r in rows)
            sb.AppendLine(inv, $"{r.Id.PadLeft(wId)}  {r.Token.PadRight(wTok)}  {r.Offsets.PadRight(wOff)}  {(r.Special ? "(special)" : r.Text)}");
        sb.AppendLine(inv, $"decoded: {Quote(decoded)}");
        return sb.ToString();
    }
}
