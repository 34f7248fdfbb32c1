namespace FuseSharp.Tokenization.PostProcessors;

/// <summary>
/// Wraps the sequence in a template of special tokens (HF <c>TemplateProcessing</c>), e.g. <c>&lt;s&gt; $A</c> for
/// Llama or <c>$A &lt;/s&gt;</c>. Only the single-sequence template is used; each special token of the template
/// may stand for several ids.
/// </summary>
public sealed class TemplateProcessing : IPostProcessor
{
    /// <summary>One template item: a special token (its ids) or the sequence itself (Ids is null).</summary>
    public sealed record Item(string Name, IReadOnlyList<int>? Ids);

    public TemplateProcessing(IReadOnlyList<Item> single) => Single = single;

    public IReadOnlyList<Item> Single { get; }

    /// <summary>The ids the template puts before the sequence.</summary>
    public IEnumerable<int> PrefixIds => Single.TakeWhile(i => i.Ids is not null).SelectMany(i => i.Ids!);

    /// <summary>The ids the template puts after the sequence.</summary>
    public IEnumerable<int> SuffixIds => Single.SkipWhile(i => i.Ids is not null).Skip(1).SelectMany(i => i.Ids ?? []);

    public static TemplateProcessing FromJson(JsonSection j)
    {
        var specials = new Dictionary<string, IReadOnlyList<int>>(StringComparer.Ordinal);
        if (j.ChildOrNull("special_tokens") is { } st)
        {
            foreach (var (key, value) in st.Members())
                specials[key] = value.Child("ids").Items().Select(x => x.AsInt()).ToList();
        }
        var single = new List<Item>();
        var template = j.Child("single");
        if (template.Element.ValueKind == System.Text.Json.JsonValueKind.String)
            throw template.Error("string templates (\"$A </s>\") are not supported in tokenizer.json; expected the list form");
        foreach (var piece in template.Items())
        {
            if (piece.ChildOrNull("SpecialToken") is { } sp)
            {
                var name = sp.GetString("id");
                single.Add(new Item(name, specials.TryGetValue(name, out var ids) ? ids
                    : throw sp.Error($"special token '{name}' is not in special_tokens")));
            }
            else if (piece.ChildOrNull("Sequence") is { } seq)
            {
                single.Add(new Item(seq.GetString("id"), null));
            }
            else
            {
                throw piece.Error("a template item must be {\"SpecialToken\": ...} or {\"Sequence\": ...}");
            }
        }
        return new TemplateProcessing(single);
    }

    public void Process(EncodingBuilder encoding, bool addSpecialTokens)
    {
        if (!addSpecialTokens) return;
        var ids = new List<int>(encoding.Ids);
        var offsets = new List<(int, int)>(encoding.Offsets);
        var special = new List<bool>(encoding.Special);
        encoding.Clear();
        foreach (var item in Single)
        {
            if (item.Ids is null)
            {
                for (int k = 0; k < ids.Count; k++) encoding.Add(ids[k], offsets[k], special[k]);
                continue;
            }
            foreach (var id in item.Ids) encoding.Add(id, (0, 0), true);
        }
    }
}
