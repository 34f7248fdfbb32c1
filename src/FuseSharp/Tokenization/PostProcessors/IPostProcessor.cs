namespace FuseSharp.Tokenization.PostProcessors;

/// <summary>An encoding being assembled: ids, original offsets, special-token flags.</summary>
public sealed class EncodingBuilder(Func<int, string?> idToToken)
{
    public List<int> Ids { get; } = [];

    public List<(int Start, int End)> Offsets { get; } = [];

    public List<bool> Special { get; } = [];

    /// <summary>The piece of an id (used by offset trimming).</summary>
    public Func<int, string?> IdToToken { get; } = idToToken;

    public int Count => Ids.Count;

    public void Add(int id, (int Start, int End) offsets, bool special)
    {
        Ids.Add(id);
        Offsets.Add(offsets);
        Special.Add(special);
    }

    public void Clear()
    {
        Ids.Clear();
        Offsets.Clear();
        Special.Clear();
    }

    /// <summary>Inserts special tokens (offsets (0, 0)) at <paramref name="index"/>.</summary>
    public void InsertSpecial(int index, IReadOnlyList<int> ids)
    {
        for (int k = 0; k < ids.Count; k++)
        {
            Ids.Insert(index + k, ids[k]);
            Offsets.Insert(index + k, (0, 0));
            Special.Insert(index + k, true);
        }
    }
}

/// <summary>Fourth stage: adds special tokens (BOS/EOS, templates) and adjusts offsets (HF <c>PostProcessor</c>).</summary>
public interface IPostProcessor
{
    /// <summary>Processes a single-sequence encoding; special tokens are only added when <paramref name="addSpecialTokens"/>.</summary>
    void Process(EncodingBuilder encoding, bool addSpecialTokens);
}
