namespace FuseSharp.Tokenization.SentencePiece;

/// <summary>
/// Just enough of the protobuf wire format to read a SentencePiece <c>ModelProto</c>: varints, 32/64-bit fixed
/// fields and length-delimited fields; unknown fields are skipped. Every read is bounds-checked.
/// </summary>
internal ref struct ProtobufReader
{
    private readonly ReadOnlySpan<byte> data;
    private readonly int baseOffset;
    private readonly string path;
    private int pos;

    public ProtobufReader(ReadOnlySpan<byte> data, string path, int baseOffset = 0)
    {
        this.data = data;
        this.path = path;
        this.baseOffset = baseOffset;
        pos = 0;
    }

    public readonly bool AtEnd => pos >= data.Length;

    public readonly int Offset => baseOffset + pos;

    public readonly TokenizerException Error(string what) =>
        new($"{path}: not a SentencePiece model ({what} at byte {baseOffset + pos})", "a SentencePiece .model file is a serialized ModelProto (protobuf); check that the file is complete");

    public ulong ReadVarint()
    {
        ulong result = 0;
        for (int shift = 0; shift < 64; shift += 7)
        {
            if (pos >= data.Length) throw Error("truncated varint");
            byte b = data[pos++];
            result |= (ulong)(b & 0x7F) << shift;
            if ((b & 0x80) == 0) return result;
        }
        throw Error("varint longer than 10 bytes");
    }

    public (int Field, int WireType) ReadTag()
    {
        ulong tag = ReadVarint();
        int field = (int)(tag >> 3), wire = (int)(tag & 7);
        if (field == 0 || tag >> 3 > int.MaxValue) throw Error($"invalid field number {tag >> 3}");
        return (field, wire);
    }

    public uint ReadFixed32()
    {
        if (pos + 4 > data.Length) throw Error("truncated 32-bit field");
        uint v = System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(data[pos..]);
        pos += 4;
        return v;
    }

    public float ReadFloat() => BitConverter.UInt32BitsToSingle(ReadFixed32());

    public ReadOnlySpan<byte> ReadBytes(out int start)
    {
        ulong len = ReadVarint();
        if (len > (ulong)(data.Length - pos)) throw Error($"length {len} runs past the end of the data");
        start = baseOffset + pos;
        var s = data.Slice(pos, (int)len);
        pos += (int)len;
        return s;
    }

    public string ReadString()
    {
        var bytes = ReadBytes(out int start);
        try
        {
            return new System.Text.UTF8Encoding(false, true).GetString(bytes);
        }
        catch (System.Text.DecoderFallbackException)
        {
            throw new TokenizerException($"{path}: string at byte {start} is not valid UTF-8");
        }
    }

    public void Skip(int wireType)
    {
        switch (wireType)
        {
            case 0: ReadVarint(); break;
            case 1:
                if (pos + 8 > data.Length) throw Error("truncated 64-bit field");
                pos += 8;
                break;
            case 2: ReadBytes(out _); break;
            case 5: ReadFixed32(); break;
            default: throw Error($"unsupported wire type {wireType}");
        }
    }
}
