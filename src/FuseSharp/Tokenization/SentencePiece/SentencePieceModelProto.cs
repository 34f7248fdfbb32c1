namespace FuseSharp.Tokenization.SentencePiece;

/// <summary>The type of a SentencePiece piece (<c>ModelProto.SentencePiece.Type</c>).</summary>
public enum PieceType
{
    Normal = 1,
    Unknown = 2,
    Control = 3,
    UserDefined = 4,
    Unused = 5,
    Byte = 6,
}

/// <summary>SentencePiece's <c>NormalizerSpec</c> (the fields that matter when encoding).</summary>
public sealed record NormalizerSpec(string Name, byte[] PrecompiledCharsMap, bool AddDummyPrefix, bool RemoveExtraWhitespaces, bool EscapeWhitespaces)
{
    /// <summary>No rules: only the dummy prefix and ' ' → '▁' (Llama-2, llama.cpp's SPM vocabularies).</summary>
    public static NormalizerSpec Identity(bool addDummyPrefix) => new("identity", [], addDummyPrefix, false, true);
}

/// <summary>A piece of the vocabulary.</summary>
public readonly record struct SentencePieceEntry(string Piece, float Score, PieceType Type);

/// <summary>
/// The parts of a SentencePiece <c>ModelProto</c> (sentencepiece_model.proto) that encoding and decoding use, read
/// with <see cref="ProtobufReader"/> instead of a protobuf dependency.
/// </summary>
public sealed class SentencePieceModelProto
{
    /// <summary>1 = unigram, 2 = BPE, 3 = word, 4 = char (<c>TrainerSpec.model_type</c>).</summary>
    public int ModelType { get; private set; } = 1;

    public List<SentencePieceEntry> Pieces { get; } = [];

    public bool ByteFallback { get; private set; }

    public bool TreatWhitespaceAsSuffix { get; private set; }

    public string UnkPiece { get; private set; } = "<unk>";

    public string BosPiece { get; private set; } = "<s>";

    public string EosPiece { get; private set; } = "</s>";

    public string PadPiece { get; private set; } = "<pad>";

    public string UnkSurface { get; private set; } = " \u2047 ";

    public NormalizerSpec Normalizer { get; private set; } = new("", [], true, true, true);

    /// <summary>A model built from a vocabulary held elsewhere (a GGUF file): BPE or unigram, with the given normalizer.</summary>
    public static SentencePieceModelProto Create(IEnumerable<SentencePieceEntry> pieces, int modelType, bool byteFallback, NormalizerSpec normalizer)
    {
        var m = new SentencePieceModelProto { ModelType = modelType, ByteFallback = byteFallback, Normalizer = normalizer };
        m.Pieces.AddRange(pieces);
        return m;
    }

    /// <summary>Reads a serialized <c>ModelProto</c>.</summary>
    /// <exception cref="TokenizerException">The data is not a SentencePiece model (the message gives the byte offset).</exception>
    public static SentencePieceModelProto Parse(byte[] data, string path)
    {
        var m = new SentencePieceModelProto();
        var r = new ProtobufReader(data, path);
        while (!r.AtEnd)
        {
            var (field, wire) = r.ReadTag();
            switch (field)
            {
                case 1 when wire == 2:
                    m.Pieces.Add(ReadPiece(r.ReadBytes(out int ps), path, ps));
                    break;
                case 2 when wire == 2:
                    m.ReadTrainerSpec(r.ReadBytes(out int ts), path, ts);
                    break;
                case 3 when wire == 2:
                    m.Normalizer = ReadNormalizerSpec(r.ReadBytes(out int ns), path, ns);
                    break;
                case 4 or 5 when wire == 2:
                    r.Skip(wire); // self-test data, denormalizer spec
                    break;
                default:
                    throw r.Error($"unexpected field {field} (wire type {wire}) in ModelProto");
            }
        }
        if (m.Pieces.Count == 0) throw new TokenizerException($"{path}: not a SentencePiece model (no pieces)", "a SentencePiece .model file is a serialized ModelProto (protobuf)");
        if (m.ModelType is not (1 or 2 or 3 or 4)) throw new TokenizerException($"{path}: unknown SentencePiece model_type {m.ModelType}");
        return m;
    }

    private static SentencePieceEntry ReadPiece(ReadOnlySpan<byte> bytes, string path, int at)
    {
        var r = new ProtobufReader(bytes, path, at);
        string? piece = null;
        float score = 0;
        int type = 1;
        while (!r.AtEnd)
        {
            var (field, wire) = r.ReadTag();
            switch (field)
            {
                case 1 when wire == 2: piece = r.ReadString(); break;
                case 2 when wire == 5: score = r.ReadFloat(); break;
                case 3 when wire == 0: type = (int)r.ReadVarint(); break;
                default: r.Skip(wire); break;
            }
        }
        if (string.IsNullOrEmpty(piece)) throw new TokenizerException($"{path}: SentencePiece piece at byte {at} is empty");
        if (type is < 1 or > 6) throw new TokenizerException($"{path}: SentencePiece piece '{piece}' has unknown type {type}");
        return new SentencePieceEntry(piece, score, (PieceType)type);
    }

    private void ReadTrainerSpec(ReadOnlySpan<byte> bytes, string path, int at)
    {
        var r = new ProtobufReader(bytes, path, at);
        while (!r.AtEnd)
        {
            var (field, wire) = r.ReadTag();
            switch (field)
            {
                case 3 when wire == 0: ModelType = (int)r.ReadVarint(); break;
                case 24 when wire == 0: TreatWhitespaceAsSuffix = r.ReadVarint() != 0; break;
                case 35 when wire == 0: ByteFallback = r.ReadVarint() != 0; break;
                case 44 when wire == 2: UnkSurface = r.ReadString(); break;
                case 45 when wire == 2: UnkPiece = r.ReadString(); break;
                case 46 when wire == 2: BosPiece = r.ReadString(); break;
                case 47 when wire == 2: EosPiece = r.ReadString(); break;
                case 48 when wire == 2: PadPiece = r.ReadString(); break;
                default: r.Skip(wire); break;
            }
        }
    }

    private static NormalizerSpec ReadNormalizerSpec(ReadOnlySpan<byte> bytes, string path, int at)
    {
        var r = new ProtobufReader(bytes, path, at);
        string name = "";
        byte[] map = [];
        bool dummy = true, removeExtra = true, escape = true;
        while (!r.AtEnd)
        {
            var (field, wire) = r.ReadTag();
            switch (field)
            {
                case 1 when wire == 2: name = r.ReadString(); break;
                case 2 when wire == 2: map = r.ReadBytes(out _).ToArray(); break;
                case 3 when wire == 0: dummy = r.ReadVarint() != 0; break;
                case 4 when wire == 0: removeExtra = r.ReadVarint() != 0; break;
                case 5 when wire == 0: escape = r.ReadVarint() != 0; break;
                default: r.Skip(wire); break;
            }
        }
        return new NormalizerSpec(name, map, dummy, removeExtra, escape);
    }
}
