using System.Text.Json;
using FuseSharp.Tensors;

namespace FuseSharp.IO;

/// <summary>One tensor of a safetensors file: byte range [Begin, End) relative to the data buffer.</summary>
public sealed record TensorEntry(string Name, DType DType, Shape Shape, long Begin, long End)
{
    public long ByteLength => End - Begin;

    public long ElementCount => Shape.ElementCount;
}

/// <summary>Name, dtype and shape of a tensor to be written.</summary>
public sealed record TensorSpec(string Name, DType DType, Shape Shape)
{
    public long ByteLength => checked(Shape.ElementCount * DType.Size());
}

/// <summary>
/// The JSON header of a safetensors file, parsed and validated exactly as the format requires
/// (https://github.com/huggingface/safetensors README and <c>tensor.rs</c>): a length cap, UTF-8 JSON starting
/// with '{', known dtypes, checked shape x size arithmetic, offsets that start at 0, are contiguous, match the
/// shapes and cover the whole buffer, unique names, and an optional string-to-string <c>__metadata__</c>.
/// </summary>
public static class SafetensorsHeader
{
    /// <summary>Largest header accepted (the Rust crate's <c>MAX_HEADER_SIZE</c>).</summary>
    public const long MaxHeaderSize = 100_000_000;

    public const string MetadataKey = "__metadata__";

    /// <summary>Parses and validates a header against a data buffer of <paramref name="bufferLength"/> bytes.</summary>
    /// <returns>Tensors ordered by offset, and the metadata (empty if absent).</returns>
    /// <exception cref="SafetensorsException">Any violation, naming <paramref name="path"/> and the tensor.</exception>
    public static (IReadOnlyList<TensorEntry> Tensors, IReadOnlyDictionary<string, string> Metadata) Parse(ReadOnlySpan<byte> header, long bufferLength, string path)
    {
        if (header.Length == 0 || header[0] != (byte)'{')
            throw new SafetensorsException(SafetensorsErrorKind.InvalidHeader, path, "header does not start with '{'; this is not a safetensors file",
                hint: "check that the file was written by safetensors and fully downloaded");
        if (!System.Text.Unicode.Utf8.IsValid(header))
            throw new SafetensorsException(SafetensorsErrorKind.InvalidHeader, path, "header is not valid UTF-8");
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(header.ToArray(), new JsonDocumentOptions { MaxDepth = 8 });
        }
        catch (JsonException e)
        {
            throw new SafetensorsException(SafetensorsErrorKind.InvalidHeader, path, $"header is not valid UTF-8 JSON ({e.Message})", inner: e);
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new SafetensorsException(SafetensorsErrorKind.InvalidHeader, path, "header JSON is not an object");
            var tensors = new List<TensorEntry>();
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var prop in doc.RootElement.EnumerateObject())
            {
                if (!seen.Add(prop.Name))
                    throw new SafetensorsException(SafetensorsErrorKind.DuplicateTensor, path, "appears twice in the header", prop.Name);
                if (prop.Name == MetadataKey)
                {
                    ParseMetadata(prop.Value, metadata, path);
                    continue;
                }
                tensors.Add(ParseEntry(prop.Name, prop.Value, path));
            }
            ValidateOffsets(tensors, bufferLength, path);
            return (tensors, metadata);
        }
    }

    private static void ParseMetadata(JsonElement value, Dictionary<string, string> metadata, string path)
    {
        if (value.ValueKind == JsonValueKind.Null) return;
        if (value.ValueKind != JsonValueKind.Object)
            throw new SafetensorsException(SafetensorsErrorKind.InvalidHeader, path, "__metadata__ must be an object mapping strings to strings");
        foreach (var m in value.EnumerateObject())
        {
            if (m.Value.ValueKind != JsonValueKind.String)
                throw new SafetensorsException(SafetensorsErrorKind.InvalidHeader, path, $"__metadata__ value of '{m.Name}' is {m.Value.ValueKind}, must be a string");
            if (!metadata.TryAdd(m.Name, m.Value.GetString()!))
                throw new SafetensorsException(SafetensorsErrorKind.InvalidHeader, path, $"__metadata__ key '{m.Name}' appears twice");
        }
    }

    private static TensorEntry ParseEntry(string name, JsonElement value, string path)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw new SafetensorsException(SafetensorsErrorKind.InvalidHeader, path, "entry is not an object with dtype, shape and data_offsets", name);
        if (!value.TryGetProperty("dtype", out var dt) || dt.ValueKind != JsonValueKind.String)
            throw new SafetensorsException(SafetensorsErrorKind.InvalidHeader, path, "missing string field 'dtype'", name);
        if (!DTypes.TryParseSafetensors(dt.GetString()!, out var dtype))
            throw new SafetensorsException(SafetensorsErrorKind.UnknownDType, path, $"unknown dtype '{dt.GetString()}'", name,
                "known dtypes: F64 F32 F16 BF16 I64 I32 I16 I8 U64 U32 U16 U8 BOOL F8_E4M3 F8_E5M2");
        if (!value.TryGetProperty("shape", out var sh) || sh.ValueKind != JsonValueKind.Array)
            throw new SafetensorsException(SafetensorsErrorKind.InvalidHeader, path, "missing array field 'shape'", name);
        var dims = new List<long>();
        foreach (var d in sh.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetUInt64(out var u) || u > long.MaxValue)
                throw new SafetensorsException(d.ValueKind == JsonValueKind.Number && d.TryGetUInt64(out _) ? SafetensorsErrorKind.ShapeOverflow : SafetensorsErrorKind.InvalidHeader,
                    path, $"shape entry {d.GetRawText()} is not a non-negative integer", name);
            dims.Add((long)u);
        }
        if (!value.TryGetProperty("data_offsets", out var off) || off.ValueKind != JsonValueKind.Array || off.GetArrayLength() != 2)
            throw new SafetensorsException(SafetensorsErrorKind.InvalidHeader, path, "missing field 'data_offsets' of two integers", name);
        var b = ReadOffset(off[0], name, path);
        var e = ReadOffset(off[1], name, path);
        var shape = new Shape(dims.ToArray());
        var count = shape.TryElementCount();
        long size = dtype.Size();
        if (count is null || count.Value > long.MaxValue / size)
            throw new SafetensorsException(SafetensorsErrorKind.ShapeOverflow, path, $"shape {shape} x {size} bytes overflows 64 bits", name);
        if (e < b)
            throw new SafetensorsException(SafetensorsErrorKind.InvalidOffsets, path, $"data_offsets [{b}, {e}] end before they begin", name);
        if (e - b != count.Value * size)
            throw new SafetensorsException(SafetensorsErrorKind.InvalidOffsets, path,
                $"data_offsets [{b}, {e}] hold {e - b} bytes but {dtype.SafetensorsName()} {shape} needs {count.Value * size}", name);
        return new TensorEntry(name, dtype, shape, b, e);
    }

    private static long ReadOffset(JsonElement v, string name, string path)
    {
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetUInt64(out var u) || u > long.MaxValue)
            throw new SafetensorsException(SafetensorsErrorKind.InvalidOffsets, path, $"data offset {v.GetRawText()} is not a non-negative 64-bit integer", name);
        return (long)u;
    }

    private static void ValidateOffsets(List<TensorEntry> tensors, long bufferLength, string path)
    {
        tensors.Sort((x, y) => x.Begin != y.Begin ? x.Begin.CompareTo(y.Begin) : x.End.CompareTo(y.End));
        long expected = 0;
        foreach (var t in tensors)
        {
            if (t.Begin != expected)
            {
                var problem = t.Begin < expected
                    ? $"data_offsets [{t.Begin}, {t.End}] overlap the previous tensor, which ends at {expected}"
                    : $"data_offsets [{t.Begin}, {t.End}] leave a hole: the previous tensor ends at {expected}";
                throw new SafetensorsException(SafetensorsErrorKind.InvalidOffsets, path, problem, t.Name);
            }
            if (t.End > bufferLength)
                throw new SafetensorsException(SafetensorsErrorKind.Truncated, path,
                    $"data_offsets [{t.Begin}, {t.End}] run past the data buffer of {bufferLength} bytes (file truncated?)", t.Name,
                    "the file is incomplete; download or write it again");
            expected = t.End;
        }
        if (expected != bufferLength)
            throw new SafetensorsException(SafetensorsErrorKind.InvalidOffsets, path,
                $"tensors cover {expected} bytes of a {bufferLength}-byte data buffer; the buffer must be fully indexed (trailing bytes)");
    }

    /// <summary>
    /// Serializes a header for <paramref name="entries"/> (already laid out) padded with spaces to a multiple of 8
    /// bytes, as the reference writer does. <c>__metadata__</c> comes first when given.
    /// </summary>
    public static byte[] Serialize(IReadOnlyList<TensorEntry> entries, IReadOnlyDictionary<string, string>? metadata)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                w.WriteStartObject(MetadataKey);
                foreach (var (k, v) in metadata.OrderBy(p => p.Key, StringComparer.Ordinal)) w.WriteString(k, v);
                w.WriteEndObject();
            }
            foreach (var t in entries)
            {
                w.WriteStartObject(t.Name);
                w.WriteString("dtype", t.DType.SafetensorsName());
                w.WriteStartArray("shape");
                foreach (var d in t.Shape.Dims) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(t.Begin);
                w.WriteNumberValue(t.End);
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndObject();
        }
        var json = ms.ToArray();
        int padded = (json.Length + 7) / 8 * 8;
        var result = new byte[padded];
        json.CopyTo(result, 0);
        result.AsSpan(json.Length).Fill((byte)' ');
        return result;
    }

}
