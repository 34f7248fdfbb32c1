using System.IO.Compression;

namespace FuseSharp.Fusion.Store;

/// <summary>How a column's bytes are stored in a part file.</summary>
public enum ColumnCodecKind
{
    /// <summary>The raw little-endian array (a plain safetensors tensor).</summary>
    None,

    /// <summary>
    /// Byte-shuffled, then zlib (RFC 1950; Python's <c>zlib.decompress</c>): the k-th bytes of all elements are stored
    /// together, so the constant high bytes of small ids and the few exponents of sorted logits compress to almost
    /// nothing. Stored as a U8 tensor; the element dtype and shape are in the part's metadata.
    /// </summary>
    ShuffleZlib,
}

/// <summary>Encodes and decodes column bytes (see <see cref="ColumnCodecKind"/>). Thread-safe.</summary>
public static class ColumnCodec
{
    /// <summary>The codec's name in the manifest and part metadata.</summary>
    public static string Name(this ColumnCodecKind kind) => kind == ColumnCodecKind.ShuffleZlib ? "shuffle-zlib" : "none";

    public static ColumnCodecKind Parse(string name) => name switch
    {
        "none" => ColumnCodecKind.None,
        "shuffle-zlib" => ColumnCodecKind.ShuffleZlib,
        _ => throw new FusionException($"unknown column codec '{name}'", "known codecs: none, shuffle-zlib (a store naming another was written by a newer FuseSharp)"),
    };

    /// <summary>Encodes <paramref name="raw"/> (elements of <paramref name="elementSize"/> bytes).</summary>
    public static byte[] Encode(ReadOnlySpan<byte> raw, int elementSize, ColumnCodecKind kind)
    {
        if (kind == ColumnCodecKind.None) return raw.ToArray();
        var shuffled = elementSize > 1 ? Shuffle(raw, elementSize) : raw.ToArray();
        using var ms = new MemoryStream(raw.Length / 3 + 64);
        using (var z = new ZLibStream(ms, CompressionLevel.Optimal, leaveOpen: true)) z.Write(shuffled);
        return ms.ToArray();
    }

    /// <summary>Decodes into <paramref name="destination"/> (the exact raw length).</summary>
    /// <exception cref="FusionException">The data is corrupt or of the wrong length.</exception>
    public static void Decode(ReadOnlySpan<byte> stored, int elementSize, ColumnCodecKind kind, Span<byte> destination, string where)
    {
        if (kind == ColumnCodecKind.None)
        {
            if (stored.Length != destination.Length) throw new FusionException($"{where}: {stored.Length} bytes stored, {destination.Length} expected", "the file is corrupt; delete it and run the stage again to rewrite it");
            stored.CopyTo(destination);
            return;
        }
        var buffer = elementSize > 1 ? new byte[destination.Length] : null;
        var target = buffer is null ? destination : buffer;
        try
        {
            using var z = new ZLibStream(new MemoryStream(stored.ToArray()), CompressionMode.Decompress);
            int read = 0;
            while (read < target.Length)
            {
                int n = z.Read(target[read..]);
                if (n == 0) break;
                read += n;
            }
            if (read != target.Length || z.ReadByte() != -1)
                throw new FusionException($"{where}: the compressed column does not hold {destination.Length} bytes", "the file is corrupt; delete it and run the stage again to rewrite it");
        }
        catch (InvalidDataException e)
        {
            throw new FusionException($"{where}: corrupt compressed column ({e.Message})", "the file is corrupt; delete it and run the stage again to rewrite it", e);
        }
        if (buffer is not null) Unshuffle(buffer, elementSize, destination);
    }

    /// <summary>out[b·n + i] = in[i·size + b]: byte b of every element together.</summary>
    internal static byte[] Shuffle(ReadOnlySpan<byte> raw, int size)
    {
        int n = raw.Length / size;
        var r = new byte[raw.Length];
        for (int i = 0; i < n; i++)
        {
            for (int b = 0; b < size; b++) r[b * n + i] = raw[i * size + b];
        }
        return r;
    }

    internal static void Unshuffle(ReadOnlySpan<byte> shuffled, int size, Span<byte> destination)
    {
        int n = shuffled.Length / size;
        for (int b = 0; b < size; b++)
        {
            var plane = shuffled.Slice(b * n, n);
            for (int i = 0; i < n; i++) destination[i * size + b] = plane[i];
        }
    }
}
