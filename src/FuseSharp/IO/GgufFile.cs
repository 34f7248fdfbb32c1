using System.Buffers.Binary;
using System.Text;

namespace FuseSharp.IO;

/// <summary>The value types of GGUF metadata.</summary>
public enum GgufValueType : uint
{
    UInt8 = 0,
    Int8 = 1,
    UInt16 = 2,
    Int16 = 3,
    UInt32 = 4,
    Int32 = 5,
    Float32 = 6,
    Bool = 7,
    String = 8,
    Array = 9,
    UInt64 = 10,
    Int64 = 11,
    Float64 = 12,
}

/// <summary>One metadata value: a scalar, a string, or an array (held as a typed .NET array: string[], float[], int[], ...).</summary>
public sealed record GgufValue(GgufValueType Type, object Value, GgufValueType? ElementType = null)
{
    /// <summary>Integer scalars of any width as long; false when the value is not an integer.</summary>
    public bool TryGetInteger(out long value)
    {
        switch (Value)
        {
            case byte v: value = v; return true;
            case sbyte v: value = v; return true;
            case ushort v: value = v; return true;
            case short v: value = v; return true;
            case uint v: value = v; return true;
            case int v: value = v; return true;
            case ulong v when v <= long.MaxValue: value = (long)v; return true;
            case long v: value = v; return true;
            default: value = 0; return false;
        }
    }
}

/// <summary>A tensor described in a GGUF header (the data is not read).</summary>
public sealed record GgufTensorInfo(string Name, long[] Dimensions, uint GgmlType, ulong Offset);

/// <summary>A GGUF file that cannot be read; the message names the file and the byte offset.</summary>
public sealed class GgufException : FuseSharpException
{
    public GgufException(string message, string? hint = null, Exception? inner = null) : base(message, hint, inner) { }

    public GgufException() : base("GGUF error") { }

    public GgufException(string message) : base(message) { }

    public GgufException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>
/// The header of a GGUF file (llama.cpp's container, versions 1–3): metadata key/values and tensor descriptions.
/// Every count and length is checked against the file size before anything is allocated, so a damaged or hostile file
/// fails with a <see cref="GgufException"/>, never with an out-of-memory. Tensor data is not read.
/// </summary>
public sealed class GgufFile
{
    private GgufFile(string path, uint version, Dictionary<string, GgufValue> metadata, List<GgufTensorInfo> tensors, long dataOffset)
    {
        Path = path;
        Version = version;
        Metadata = metadata;
        Tensors = tensors;
        DataOffset = dataOffset;
    }

    public string Path { get; }

    public uint Version { get; }

    public IReadOnlyDictionary<string, GgufValue> Metadata { get; }

    public IReadOnlyList<GgufTensorInfo> Tensors { get; }

    /// <summary>Where the tensor data section starts (aligned to <c>general.alignment</c>, default 32).</summary>
    public long DataOffset { get; }

    /// <summary>Reads the header of <paramref name="path"/>.</summary>
    /// <exception cref="GgufException">Not a GGUF file, an unsupported version, or a damaged header.</exception>
    public static GgufFile Read(string path)
    {
        if (!File.Exists(path)) throw new GgufException($"{path}: not found");
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        var r = new Reader(stream, path);
        var magic = r.Bytes(4);
        if (!magic.AsSpan().SequenceEqual("GGUF"u8)) throw new GgufException($"{path}: not a GGUF file (magic is not 'GGUF')");
        uint version = r.U32();
        if (version is < 1 or > 3) throw new GgufException($"{path}: GGUF version {version} is not supported (1–3 are)");
        r.Version = version;
        ulong tensorCount = r.Count(), kvCount = r.Count();
        // Each entry needs at least a few bytes: a count larger than the file is damage, not a reason to allocate.
        if (kvCount > (ulong)stream.Length || tensorCount > (ulong)stream.Length) throw r.Error($"counts {tensorCount} tensors / {kvCount} keys exceed the file size");
        var metadata = new Dictionary<string, GgufValue>(StringComparer.Ordinal);
        for (ulong i = 0; i < kvCount; i++)
        {
            var key = r.String();
            var type = (GgufValueType)r.U32();
            var value = r.Value(type, key);
            if (!metadata.TryAdd(key, value)) throw r.Error($"metadata key '{key}' appears twice");
        }
        var tensors = new List<GgufTensorInfo>();
        for (ulong i = 0; i < tensorCount; i++)
        {
            var name = r.String();
            uint nDims = r.U32();
            if (nDims > 8) throw r.Error($"tensor '{name}' has {nDims} dimensions");
            var dims = new long[nDims];
            for (int d = 0; d < nDims; d++)
            {
                ulong v = r.U64();
                if (v > long.MaxValue) throw r.Error($"tensor '{name}' dimension {d} is {v}");
                dims[d] = (long)v;
            }
            tensors.Add(new GgufTensorInfo(name, dims, r.U32(), r.U64()));
        }
        long alignment = metadata.TryGetValue("general.alignment", out var al) && al.TryGetInteger(out long a) && a > 0 ? a : 32;
        long dataOffset = (stream.Position + alignment - 1) / alignment * alignment;
        return new GgufFile(path, version, metadata, tensors, dataOffset);
    }

    /// <summary>The value of <paramref name="key"/>, or null.</summary>
    public GgufValue? Get(string key) => Metadata.TryGetValue(key, out var v) ? v : null;

    /// <summary>A string value, or null when absent.</summary>
    /// <exception cref="GgufException">The key holds another type.</exception>
    public string? GetString(string key) => Get(key) switch
    {
        null => null,
        { Value: string s } => s,
        var v => throw new GgufException($"{Path}: metadata '{key}' is {v.Type}, expected a string"),
    };

    /// <summary>An integer value, or null when absent.</summary>
    public long? GetInteger(string key) => Get(key) switch
    {
        null => null,
        var v when v.TryGetInteger(out long n) => n,
        var v => throw new GgufException($"{Path}: metadata '{key}' is {v.Type}, expected an integer"),
    };

    /// <summary>A boolean value, or null when absent.</summary>
    public bool? GetBool(string key) => Get(key) switch
    {
        null => null,
        { Value: bool b } => b,
        var v => throw new GgufException($"{Path}: metadata '{key}' is {v.Type}, expected a bool"),
    };

    /// <summary>An array value as <typeparamref name="T"/>[], or null when absent.</summary>
    public T[]? GetArray<T>(string key) => Get(key) switch
    {
        null => null,
        { Value: T[] arr } => arr,
        var v => throw new GgufException($"{Path}: metadata '{key}' is {v.Type} of {v.ElementType}, expected an array of {typeof(T).Name}"),
    };

    private sealed class Reader(Stream stream, string path)
    {
        private readonly byte[] buf = new byte[8];

        public uint Version { get; set; }

        public GgufException Error(string what) => new($"{path}: damaged GGUF header ({what} at byte {stream.Position})", "the file may be truncated or not a GGUF file");

        private void Fill(int n)
        {
            if (stream.ReadAtLeast(buf.AsSpan(0, n), n, throwOnEndOfStream: false) < n) throw Error("unexpected end of file");
        }

        public byte[] Bytes(int n)
        {
            if (n < 0 || n > stream.Length - stream.Position) throw Error($"length {n} runs past the end of the file");
            var b = new byte[n];
            if (stream.ReadAtLeast(b, n, throwOnEndOfStream: false) < n) throw Error("unexpected end of file");
            return b;
        }

        public byte U8()
        {
            Fill(1);
            return buf[0];
        }

        public ushort U16()
        {
            Fill(2);
            return BinaryPrimitives.ReadUInt16LittleEndian(buf);
        }

        public uint U32()
        {
            Fill(4);
            return BinaryPrimitives.ReadUInt32LittleEndian(buf);
        }

        public ulong U64()
        {
            Fill(8);
            return BinaryPrimitives.ReadUInt64LittleEndian(buf);
        }

        // Version 1 stored counts and string lengths as u32.
        public ulong Count() => Version == 1 ? U32() : U64();

        public string String()
        {
            ulong len = Count();
            if (len > (ulong)(stream.Length - stream.Position)) throw Error($"string length {len} runs past the end of the file");
            var bytes = Bytes((int)len);
            try
            {
                return new UTF8Encoding(false, true).GetString(bytes);
            }
            catch (DecoderFallbackException)
            {
                // llama.cpp vocabularies may hold raw byte tokens; keep them readable rather than failing.
                return Encoding.UTF8.GetString(bytes);
            }
        }

        public GgufValue Value(GgufValueType type, string key) => type switch
        {
            GgufValueType.UInt8 => new(type, U8()),
            GgufValueType.Int8 => new(type, (sbyte)U8()),
            GgufValueType.UInt16 => new(type, U16()),
            GgufValueType.Int16 => new(type, (short)U16()),
            GgufValueType.UInt32 => new(type, U32()),
            GgufValueType.Int32 => new(type, (int)U32()),
            GgufValueType.Float32 => new(type, BitConverter.UInt32BitsToSingle(U32())),
            GgufValueType.Bool => new(type, U8() != 0),
            GgufValueType.String => new(type, String()),
            GgufValueType.UInt64 => new(type, U64()),
            GgufValueType.Int64 => new(type, (long)U64()),
            GgufValueType.Float64 => new(type, BitConverter.UInt64BitsToDouble(U64())),
            GgufValueType.Array => Array(key),
            _ => throw Error($"metadata '{key}' has unknown value type {(uint)type}"),
        };

        private GgufValue Array(string key)
        {
            var et = (GgufValueType)U32();
            ulong n = Count();
            long remaining = stream.Length - stream.Position;
            int minSize = et switch
            {
                GgufValueType.UInt8 or GgufValueType.Int8 or GgufValueType.Bool => 1,
                GgufValueType.UInt16 or GgufValueType.Int16 => 2,
                GgufValueType.UInt32 or GgufValueType.Int32 or GgufValueType.Float32 => 4,
                GgufValueType.String => Version == 1 ? 4 : 8,
                GgufValueType.Array => 12,
                _ => 8,
            };
            if (n > (ulong)(remaining / minSize)) throw Error($"array '{key}' of {n} elements runs past the end of the file");
            int count = (int)n;
            object values = et switch
            {
                GgufValueType.String => Fill(count, String),
                GgufValueType.Float32 => Fill(count, () => BitConverter.UInt32BitsToSingle(U32())),
                GgufValueType.Int32 => Fill(count, () => (int)U32()),
                GgufValueType.UInt32 => Fill(count, U32),
                GgufValueType.Int64 => Fill(count, () => (long)U64()),
                GgufValueType.UInt64 => Fill(count, U64),
                GgufValueType.Float64 => Fill(count, () => BitConverter.UInt64BitsToDouble(U64())),
                GgufValueType.Bool => Fill(count, () => U8() != 0),
                GgufValueType.UInt8 => Fill(count, U8),
                GgufValueType.Int8 => Fill(count, () => (sbyte)U8()),
                GgufValueType.UInt16 => Fill(count, U16),
                GgufValueType.Int16 => Fill(count, () => (short)U16()),
                GgufValueType.Array => Fill(count, () => Array(key)),
                _ => throw Error($"array '{key}' has unknown element type {(uint)et}"),
            };
            return new GgufValue(GgufValueType.Array, values, et);
        }

        private static T[] Fill<T>(int n, Func<T> read)
        {
            var a = new T[n];
            for (int i = 0; i < n; i++) a[i] = read();
            return a;
        }
    }
}
