using System.Buffers;
using System.Text;
using System.Text.Json;
using FuseSharp.Tokenization.Unicode;

namespace FuseSharp.Tokenization.Training;

/// <summary>How a training input file is read.</summary>
public enum TrainingInputFormat
{
    /// <summary>By extension: <c>.jsonl</c> / <c>.ndjson</c> are JSON lines, anything else is text.</summary>
    Auto,

    /// <summary>UTF-8 text; the whole file is one document.</summary>
    Text,

    /// <summary>One JSON object per line; the document is its <see cref="TrainingInput.TextField"/> string.</summary>
    Jsonl,
}

/// <summary>One training input file.</summary>
public sealed record TrainingInput(string Path, TrainingInputFormat Format = TrainingInputFormat.Auto, string TextField = "text")
{
    internal bool IsJsonl => Format == TrainingInputFormat.Jsonl || (Format == TrainingInputFormat.Auto
        && (Path.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase) || Path.EndsWith(".ndjson", StringComparison.OrdinalIgnoreCase)));
}

/// <summary>
/// Streams the training documents as batches of text units for parallel counting, with memory bounded by the unit
/// size. A long document is cut before a space that follows a non-space character: the GPT-2 split regex never matches
/// across such a point (a match that reaches it ends there, and the space starts the next one), and the Metaspace
/// pre-tokenizer starts a word there, so the words are exactly those of the uncut document. A stretch with no such point
/// is cut after a newline (still exact for the GPT-2 regex), else at a character boundary. Special tokens are never cut.
/// Every input error names the file (and line or byte offset).
/// </summary>
internal sealed class TrainingCorpus(IReadOnlyList<TrainingInput> inputs, IReadOnlyList<string> specialTokens, int unitChars = 1 << 16)
{
    private static readonly UTF8Encoding StrictUtf8 = new(false, throwOnInvalidBytes: true);

    /// <summary>Checks that every input exists and can be opened, before any work starts.</summary>
    /// <exception cref="TokenizerTrainingException">An input is missing, a folder, or unreadable.</exception>
    public long CheckInputs()
    {
        if (inputs.Count == 0) throw new TokenizerTrainingException("no training input given", "name one or more text or JSONL files");
        long total = 0;
        foreach (var input in inputs)
        {
            if (Directory.Exists(input.Path)) throw new TokenizerTrainingException($"{input.Path}: is a folder, not a file", "name the text or JSONL files inside it");
            if (!File.Exists(input.Path)) throw new TokenizerTrainingException($"{input.Path}: no such file");
            try
            {
                using var f = File.OpenRead(input.Path);
                total += f.Length;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new TokenizerTrainingException($"{input.Path}: cannot read ({e.Message})", "check the path and its permissions", e);
            }
        }
        return total;
    }

    /// <summary>The text units, in batches of about <c>unitChars</c> characters; <paramref name="bytesRead"/> receives progress.</summary>
    public IEnumerable<List<string>> Batches(Action<long> bytesRead, CancellationToken cancellation)
    {
        var batch = new List<string>();
        long chars = 0;
        foreach (var input in inputs)
        {
            var units = input.IsJsonl ? JsonlUnits(input, bytesRead) : TextUnits(input.Path, bytesRead);
            foreach (var unit in units)
            {
                cancellation.ThrowIfCancellationRequested();
                batch.Add(unit);
                chars += unit.Length;
                if (chars < unitChars) continue;
                yield return batch;
                batch = [];
                chars = 0;
            }
        }
        if (batch.Count > 0) yield return batch;
    }

    // A text file as one document, decoded strictly in blocks and cut into units.
    private IEnumerable<string> TextUnits(string path, Action<long> bytesRead)
    {
        using var stream = Open(path);
        var bytes = new byte[1 << 20];
        var decoded = new char[bytes.Length];
        var pending = new ArrayBufferWriter<char>(unitChars * 2);
        int carry = 0;
        long offset = 0, line = 1;
        bool first = true;
        while (true)
        {
            int n = Read(stream, path, bytes.AsSpan(carry));
            int total = carry + n;
            bool eof = n == 0;
            int start = first && total >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF ? 3 : 0;
            first = false;
            var status = System.Text.Unicode.Utf8.ToUtf16(bytes.AsSpan(start, total - start), decoded, out int read, out int written, replaceInvalidSequences: false, isFinalBlock: eof);
            line += bytes.AsSpan(start, read).Count((byte)'\n');
            if (status == OperationStatus.InvalidData)
                throw new TokenizerTrainingException($"{path}: line {line}: invalid UTF-8 (byte offset {offset + start + read})", "training text must be UTF-8 encoded");
            pending.Write(decoded.AsSpan(0, written));
            carry = total - start - read;
            bytes.AsSpan(start + read, carry).CopyTo(bytes);
            offset += start + read;
            bytesRead(start + read);
            while (pending.WrittenCount >= unitChars * 2 - 8)
            {
                var unit = TakeUnit(pending);
                yield return unit;
            }
            if (eof) break;
        }
        if (pending.WrittenCount > 0) yield return new string(pending.WrittenSpan);
    }

    // Cuts the first unit off the pending text.
    private string TakeUnit(ArrayBufferWriter<char> pending)
    {
        var text = pending.WrittenSpan;
        int cut = Cut(text, unitChars);
        var unit = new string(text[..cut]);
        var rest = text[cut..].ToArray();
        pending.Clear();
        pending.Write(rest);
        return unit;
    }

    // JSON lines: each line's text field is a document (cut into units when long).
    private IEnumerable<string> JsonlUnits(TrainingInput input, Action<long> bytesRead)
    {
        using var stream = Open(input.Path);
        var reader = new LineReader(stream, input.Path);
        int lineNo = 0;
        while (reader.Next() is { } raw)
        {
            lineNo++;
            bytesRead(raw.Length + 1);
            string line;
            try
            {
                line = StrictUtf8.GetString(raw.Span);
            }
            catch (DecoderFallbackException)
            {
                throw new TokenizerTrainingException($"{input.Path}: line {lineNo}: invalid UTF-8", "JSONL input must be UTF-8 encoded");
            }
            if (lineNo == 1 && line.StartsWith('\uFEFF')) line = line[1..];
            if (string.IsNullOrWhiteSpace(line)) continue;
            var text = ReadField(line, input, lineNo);
            for (int at = 0; at < text.Length;)
            {
                int cut = text.Length - at <= unitChars * 2 ? text.Length - at : Cut(text.AsSpan(at), unitChars);
                yield return at == 0 && cut == text.Length ? text : text.Substring(at, cut);
                at += cut;
            }
        }
    }

    private static string ReadField(string line, TrainingInput input, int lineNo)
    {
        var hint = $"each line must be a JSON object with a string field \"{input.TextField}\", e.g. {{\"{input.TextField}\": \"...\"}}";
        try
        {
            using var doc = JsonDocument.Parse(line);
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new TokenizerTrainingException($"{input.Path}: line {lineNo}: not a JSON object", hint);
            if (!doc.RootElement.TryGetProperty(input.TextField, out var t))
                throw new TokenizerTrainingException($"{input.Path}: line {lineNo}: no \"{input.TextField}\" field", hint);
            if (t.ValueKind != JsonValueKind.String) throw new TokenizerTrainingException($"{input.Path}: line {lineNo}: \"{input.TextField}\" is not a string", hint);
            return t.GetString()!;
        }
        catch (JsonException e)
        {
            throw new TokenizerTrainingException($"{input.Path}: line {lineNo}: not valid JSON ({e.Message})", hint);
        }
        catch (InvalidOperationException)
        {
            throw new TokenizerTrainingException($"{input.Path}: line {lineNo}: the text is not valid Unicode (an unpaired surrogate escape)");
        }
    }

    /// <summary>
    /// Where to cut <paramref name="text"/> near <paramref name="target"/> (see the class comment): the last exact point in
    /// [target/2, target], else after the last newline there, else at a character boundary.
    /// </summary>
    internal int Cut(ReadOnlySpan<char> text, int target)
    {
        target = Math.Min(target, text.Length - 1);
        for (int p = target; p > target / 2; p--)
            if (text[p] == ' ' && !UnicodeChars.IsWhiteSpace(text[p - 1]) && !InsideSpecial(text, p)) return p;
        for (int p = target; p > target / 2; p--)
            if (text[p - 1] == '\n' && !InsideSpecial(text, p)) return p;
        int q = target;
        while (q > 1 && (char.IsLowSurrogate(text[q]) || InsideSpecial(text, q))) q--;
        return q;
    }

    private bool InsideSpecial(ReadOnlySpan<char> text, int p)
    {
        foreach (var t in specialTokens)
        {
            for (int k = 1; k < t.Length; k++)
            {
                int s = p - k;
                if (s >= 0 && s + t.Length <= text.Length && text.Slice(s, t.Length).SequenceEqual(t)) return true;
            }
        }
        return false;
    }

    private static FileStream Open(string path)
    {
        try
        {
            return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new TokenizerTrainingException($"{path}: cannot read ({e.Message})", "check the path and its permissions", e);
        }
    }

    private static int Read(Stream stream, string path, Span<byte> into)
    {
        try
        {
            return stream.Read(into);
        }
        catch (IOException e)
        {
            throw new TokenizerTrainingException($"{path}: read failed ({e.Message})", inner: e, hint: null);
        }
    }

    /// <summary>The lines of a stream as bytes, without "\n" or "\r\n".</summary>
    private sealed class LineReader(Stream stream, string path)
    {
        private readonly byte[] block = new byte[1 << 20];
        private readonly ArrayBufferWriter<byte> line = new();
        private int pos, end;
        private bool eof;

        public ReadOnlyMemory<byte>? Next()
        {
            line.Clear();
            while (true)
            {
                if (pos == end)
                {
                    if (eof)
                    {
                        // (Not a ?: with null: null would convert to an empty ReadOnlyMemory through byte[].)
                        if (line.WrittenCount == 0) return null;
                        return line.WrittenMemory;
                    }
                    end = Read(stream, path, block);
                    pos = 0;
                    eof = end == 0;
                    continue;
                }
                int nl = block.AsSpan(pos, end - pos).IndexOf((byte)'\n');
                if (nl < 0)
                {
                    line.Write(block.AsSpan(pos, end - pos));
                    pos = end;
                    continue;
                }
                line.Write(block.AsSpan(pos, nl));
                pos += nl + 1;
                var m = line.WrittenMemory;
                return m.Length > 0 && m.Span[^1] == (byte)'\r' ? m[..^1] : m;
            }
        }
    }
}
