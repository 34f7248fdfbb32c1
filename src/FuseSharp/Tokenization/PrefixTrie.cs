namespace FuseSharp.Tokenization;

/// <summary>
/// A trie over sequences of <typeparamref name="T"/> (characters or UTF-8 bytes) mapping keys to ids, for
/// longest-match and common-prefix search (added tokens, user-defined symbols, unigram pieces).
/// </summary>
internal sealed class PrefixTrie<T>
    where T : notnull
{
    private readonly List<Dictionary<T, int>?> children = [null];
    private readonly List<int> values = [-1];
    private readonly HashSet<T> firstItems = [];

    /// <summary>Adds a key; a key added twice keeps the later value (as HF's token_to_ids does).</summary>
    public void Add(ReadOnlySpan<T> key, int value)
    {
        int node = 0;
        foreach (var c in key)
        {
            var map = children[node] ??= [];
            if (!map.TryGetValue(c, out int child))
            {
                child = children.Count;
                children.Add(null);
                values.Add(-1);
                map[c] = child;
            }
            node = child;
        }
        if (!key.IsEmpty) firstItems.Add(key[0]);
        values[node] = value;
    }

    /// <summary>True when some key starts with <paramref name="first"/>.</summary>
    public bool MayStartWith(T first) => firstItems.Contains(first);

    /// <summary>Appends every key that is a prefix of text[start..] as (value, end), shortest first.</summary>
    public void PrefixMatches(ReadOnlySpan<T> text, int start, List<(int Value, int End)> output)
    {
        int node = 0;
        for (int i = start; i < text.Length; i++)
        {
            var map = children[node];
            if (map is null || !map.TryGetValue(text[i], out node)) return;
            if (values[node] >= 0) output.Add((values[node], i + 1));
        }
    }

    /// <summary>The longest key that is a prefix of text[start..]: (value, end), or (-1, start).</summary>
    public (int Value, int End) LongestMatch(ReadOnlySpan<T> text, int start)
    {
        int node = 0, bestValue = -1, bestEnd = start;
        for (int i = start; i < text.Length; i++)
        {
            var map = children[node];
            if (map is null || !map.TryGetValue(text[i], out node)) break;
            if (values[node] >= 0)
            {
                bestValue = values[node];
                bestEnd = i + 1;
            }
        }
        return (bestValue, bestEnd);
    }
}
