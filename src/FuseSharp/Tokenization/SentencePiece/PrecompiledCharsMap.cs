using System.Buffers.Binary;

namespace FuseSharp.Tokenization.SentencePiece;

/// <summary>
/// SentencePiece's compiled normalization rules (<c>precompiled_charsmap</c>): a Darts-clone double-array trie over
/// UTF-8 keys whose values point into a blob of NUL-terminated replacement strings.
/// Layout: u32 LE trie size in bytes, the trie (u32 units), then the replacement blob.
/// </summary>
public sealed class PrecompiledCharsMap
{
    private readonly uint[] units;
    private readonly byte[] normalized;

    /// <exception cref="TokenizerException">The blob is truncated or inconsistent.</exception>
    public PrecompiledCharsMap(byte[] blob)
    {
        if (blob.Length < 4) throw new TokenizerException("precompiled_charsmap is shorter than its 4-byte header");
        uint trieSize = BinaryPrimitives.ReadUInt32LittleEndian(blob);
        if (trieSize % 4 != 0 || trieSize > blob.Length - 4) throw new TokenizerException($"precompiled_charsmap: trie size {trieSize} does not fit the {blob.Length}-byte blob");
        units = new uint[trieSize / 4];
        for (int i = 0; i < units.Length; i++) units[i] = BinaryPrimitives.ReadUInt32LittleEndian(blob.AsSpan(4 + (4 * i)));
        normalized = blob[(4 + (int)trieSize)..];
        if (units.Length == 0) throw new TokenizerException("precompiled_charsmap has an empty trie");
    }

    private static bool HasLeaf(uint u) => ((u >> 8) & 1) == 1;

    private static uint Value(uint u) => u & ((1u << 31) - 1);

    private static uint Label(uint u) => u & ((1u << 31) | 0xFF);

    private static uint Offset(uint u) => (u >> 10) << (int)((u & (1u << 9)) >> 6);

    /// <summary>Darts <c>commonPrefixSearch</c>: calls <paramref name="onMatch"/>(length, value) for every key that is a prefix of <paramref name="key"/>, shortest first.</summary>
    private void CommonPrefixSearch(ReadOnlySpan<byte> key, Func<int, uint, bool> onMatch)
    {
        uint nodePos = 0;
        uint unit = units[nodePos];
        nodePos ^= Offset(unit);
        for (int i = 0; i < key.Length; i++)
        {
            byte c = key[i];
            if (c == 0) break;
            nodePos ^= c;
            if (nodePos >= units.Length) return;
            unit = units[nodePos];
            if (Label(unit) != c) return;
            nodePos ^= Offset(unit);
            if (HasLeaf(unit))
            {
                if (nodePos >= units.Length) return;
                if (!onMatch(i + 1, Value(units[nodePos]))) return;
            }
        }
    }

    /// <summary>The replacement starting at <paramref name="offset"/> of the blob (up to its NUL).</summary>
    public ReadOnlySpan<byte> Replacement(uint offset)
    {
        if (offset >= normalized.Length) throw new TokenizerException($"precompiled_charsmap: replacement offset {offset} is outside the blob");
        var rest = normalized.AsSpan((int)offset);
        int end = rest.IndexOf((byte)0);
        return end < 0 ? rest : rest[..end];
    }

    /// <summary>The longest rule matching a prefix of <paramref name="input"/> (SentencePiece's <c>NormalizePrefix</c>): (length, replacement offset), or length 0.</summary>
    public (int Length, uint Value) LongestPrefix(ReadOnlySpan<byte> input)
    {
        int bestLen = 0;
        uint bestValue = 0;
        CommonPrefixSearch(input, (len, value) =>
        {
            if (len > bestLen)
            {
                bestLen = len;
                bestValue = value;
            }
            return true;
        });
        return (bestLen, bestValue);
    }

    /// <summary>The first (shortest) rule matching a prefix of <paramref name="input"/> (HF <c>Precompiled::transform</c>), or null.</summary>
    public byte[]? FirstPrefixReplacement(ReadOnlySpan<byte> input)
    {
        byte[]? result = null;
        CommonPrefixSearch(input, (_, value) =>
        {
            result = Replacement(value).ToArray();
            return false;
        });
        return result;
    }
}
