namespace FuseSharp.Tokenization.SentencePiece;

/// <summary>
/// SentencePiece's normalizer on UTF-8 bytes (normalizer.cc): longest-match rules from the precompiled charsmap
/// (user-defined symbols pass through unchanged), optional removal of leading/trailing/repeated spaces, the dummy
/// prefix '▁' and ' ' → '▁'. Also returns, per normalized byte, the original byte it came from (norm_to_orig).
/// </summary>
internal sealed class SentencePieceNormalizer
{
    private static readonly byte[] SpaceSymbol = [0xE2, 0x96, 0x81]; // U+2581
    private readonly PrecompiledCharsMap? map;
    private readonly NormalizerSpec spec;
    private readonly bool treatWhitespaceAsSuffix;
    private readonly PrefixTrie<byte>? userDefined;

    public SentencePieceNormalizer(NormalizerSpec spec, bool treatWhitespaceAsSuffix, IEnumerable<string> userDefinedSymbols)
    {
        this.spec = spec;
        this.treatWhitespaceAsSuffix = treatWhitespaceAsSuffix;
        map = spec.PrecompiledCharsMap.Length > 0 ? new PrecompiledCharsMap(spec.PrecompiledCharsMap) : null;
        var symbols = userDefinedSymbols.ToList();
        if (symbols.Count > 0)
        {
            userDefined = new PrefixTrie<byte>();
            foreach (var s in symbols) userDefined.Add(System.Text.Encoding.UTF8.GetBytes(s), 0);
        }
    }

    public NormalizerSpec Spec => spec;

    // One step of NormalizePrefix: (replacement, consumed input bytes).
    private int NormalizePrefix(ReadOnlySpan<byte> input, out ReadOnlySpan<byte> output)
    {
        if (userDefined is not null)
        {
            int ud = userDefined.LongestMatch(input, 0).End;
            if (ud > 0)
            {
                output = input[..ud];
                return ud;
            }
        }
        if (map is not null)
        {
            var (len, value) = map.LongestPrefix(input);
            if (len > 0)
            {
                output = map.Replacement(value);
                return len;
            }
        }
        int charLen = ValidCharLength(input);
        output = charLen == 0 ? "\uFFFD"u8 : input[..charLen];
        return charLen == 0 ? 1 : charLen;
    }

    /// <summary>Length of the valid UTF-8 character at the start of <paramref name="s"/>, or 0 if it is malformed.</summary>
    internal static int ValidCharLength(ReadOnlySpan<byte> s)
    {
        var status = System.Text.Rune.DecodeFromUtf8(s, out _, out int consumed);
        return status == System.Buffers.OperationStatus.Done ? consumed : 0;
    }

    /// <summary>Normalizes <paramref name="input"/>; <c>NormToOrig</c> has one entry per output byte plus one for the end.</summary>
    public (byte[] Normalized, int[] NormToOrig) Normalize(ReadOnlySpan<byte> input)
    {
        var output = new List<byte>(input.Length * 3 / 2 + 4);
        var normToOrig = new List<int>(input.Length * 3 / 2 + 4);
        if (input.IsEmpty) return ([], [0]);
        int consumed = 0;
        if (spec.RemoveExtraWhitespaces)
        {
            while (!input.IsEmpty)
            {
                int c = NormalizePrefix(input, out var o);
                if (!o.SequenceEqual(" "u8)) break;
                input = input[c..];
                consumed += c;
            }
        }
        if (input.IsEmpty) return ([], [consumed]);
        void AddWhitespace(int at)
        {
            if (spec.EscapeWhitespaces)
            {
                foreach (var b in SpaceSymbol)
                {
                    output.Add(b);
                    normToOrig.Add(at);
                }
            }
            else
            {
                output.Add((byte)' ');
                normToOrig.Add(at);
            }
        }
        if (!treatWhitespaceAsSuffix && spec.AddDummyPrefix) AddWhitespace(consumed);
        bool isPrevSpace = spec.RemoveExtraWhitespaces;
        while (!input.IsEmpty)
        {
            int c = NormalizePrefix(input, out var sp);
            while (isPrevSpace && !sp.IsEmpty && sp[0] == ' ') sp = sp[1..];
            if (!sp.IsEmpty)
            {
                foreach (var b in sp)
                {
                    if (spec.EscapeWhitespaces && b == ' ')
                    {
                        AddWhitespace(consumed);
                    }
                    else
                    {
                        output.Add(b);
                        normToOrig.Add(consumed);
                    }
                }
                isPrevSpace = sp[^1] == ' ';
            }
            consumed += c;
            input = input[c..];
            if (!spec.RemoveExtraWhitespaces) isPrevSpace = false;
        }
        if (spec.RemoveExtraWhitespaces)
        {
            ReadOnlySpan<byte> space = spec.EscapeWhitespaces ? SpaceSymbol : " "u8;
            while (output.Count >= space.Length && System.Runtime.InteropServices.CollectionsMarshal.AsSpan(output)[^space.Length..].SequenceEqual(space))
            {
                int length = output.Count - space.Length;
                consumed = normToOrig[length];
                output.RemoveRange(length, space.Length);
                normToOrig.RemoveRange(length, space.Length);
            }
        }
        if (treatWhitespaceAsSuffix && spec.AddDummyPrefix) AddWhitespace(consumed);
        normToOrig.Add(consumed);
        return ([.. output], [.. normToOrig]);
    }
}
