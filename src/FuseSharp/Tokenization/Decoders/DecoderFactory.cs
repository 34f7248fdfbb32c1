namespace FuseSharp.Tokenization.Decoders;

/// <summary>The decoders of <c>tokenizer.json</c>, by their <c>"type"</c> tag.</summary>
public static class DecoderFactory
{
    private static readonly ComponentTable<IDecoder> Table = new("decoder", new(StringComparer.Ordinal)
    {
        ["ByteLevel"] = _ => new ByteLevelDecoder(),
        ["Metaspace"] = MetaspaceDecoder.FromJson,
        ["ByteFallback"] = _ => new ByteFallbackDecoder(),
        ["Fuse"] = _ => new FuseDecoder(),
        ["Strip"] = StripDecoder.FromJson,
        ["Replace"] = ReplaceDecoder.FromJson,
        ["WordPiece"] = WordPieceDecoder.FromJson,
        ["BPEDecoder"] = BpeDecoder.FromJson,
        ["CTC"] = CtcDecoder.FromJson,
        ["Sequence"] = SequenceDecoder.FromJson,
    });

    /// <summary>Builds the decoder described by <paramref name="j"/>.</summary>
    /// <exception cref="TokenizerException">Unknown type or bad fields (the message names them).</exception>
    public static IDecoder Create(JsonSection j) => Table.Create(j);

    /// <summary>Runs a decoder and concatenates the pieces.</summary>
    public static string Decode(this IDecoder decoder, List<string> tokens) => string.Concat(decoder.DecodeChain(tokens));
}
