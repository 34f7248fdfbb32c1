using System.Globalization;
using System.Text;
using System.Text.Json;
using FuseSharp.IO;
using FuseSharp.Tokenization.ChatTemplates.Jinja;

namespace FuseSharp.Fusion.Vocab;

/// <summary>How a blending (source) vocabulary is mapped onto the base (target) vocabulary (spec §3).</summary>
public enum VocabMapType
{
    /// <summary>Exact match after marker harmonisation only; other pieces are unmapped (FuseLLM hard / FuseChat v2 EM).</summary>
    Em,

    /// <summary>Exact match, else the nearest base piece by Levenshtein distance, lowest id on ties (FuseLLM <c>vocab_mapping.py default</c>).</summary>
    MinEd,

    /// <summary>From DTW co-alignment statistics over a corpus (FuseChat v2 <c>align_type default</c>).</summary>
    Ms,
}

/// <summary>Counts of how a <see cref="VocabMap"/> was made, for the diagnostics.</summary>
public sealed record VocabMapStats(int Entries, int Exact, int Nearest, int Unmapped, int Forced);

/// <summary>
/// A map from every blending id to a base id (or none), with the key FuseLLM writes for it (the blending piece with
/// its marker replaced by the base marker). Two file formats: FuseLLM's JSON object <c>{key: base piece}</c> (the
/// <c>fuse vocab-map</c> contract) and FuseChat v2's JSON list indexed by blending id holding base ids.
/// </summary>
public sealed class VocabMap
{
    private readonly int[] _target;
    private readonly string?[] _keys;
    private readonly Dictionary<string, int> _byKey;

    /// <param name="type">How it was made.</param>
    /// <param name="target">Per blending id: the base id, or -1 when unmapped.</param>
    /// <param name="keys">Per blending id: the harmonised blending piece (null for unused ids).</param>
    /// <param name="distances">Per blending id: the Levenshtein distance to its base piece (MinED), or null.</param>
    /// <param name="stats">Counts for the diagnostics.</param>
    /// <param name="unmappedId">The base id FuseChat v2 stores for unmapped ids in its list form (MS: the base unk, else eos).</param>
    public VocabMap(VocabMapType type, int[] target, string?[] keys, int[]? distances, VocabMapStats stats, int? unmappedId = null)
    {
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(keys);
        if (keys.Length != target.Length) throw new ArgumentException("keys and target differ in length", nameof(keys));
        Type = type;
        _target = target;
        _keys = keys;
        Distances = distances;
        Stats = stats;
        UnmappedId = unmappedId;
        _byKey = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < keys.Length; i++)
        {
            // FuseLLM's dict assignment in vocab order: the last blending id with a key decides (all agree, the value
            // depends on the key alone).
            if (keys[i] is { } k && target[i] >= 0) _byKey[k] = target[i];
        }
    }

    public VocabMapType Type { get; }

    public VocabMapStats Stats { get; }

    /// <summary>Per blending id, the Levenshtein distance of a MinED entry (0 for exact), else null.</summary>
    public IReadOnlyList<int>? Distances { get; }

    /// <summary>The base id the list form holds for unmapped blending ids (null: none was defined).</summary>
    public int? UnmappedId { get; }

    /// <summary>Size of the blending id space.</summary>
    public int Count => _target.Length;

    /// <summary>The base id blending id <paramref name="blendingId"/> maps to, or -1.</summary>
    public int this[int blendingId] => (uint)blendingId < (uint)_target.Length ? _target[blendingId] : -1;

    /// <summary>The FuseLLM key of a blending id.</summary>
    public string? Key(int blendingId) => (uint)blendingId < (uint)_keys.Length ? _keys[blendingId] : null;

    /// <summary>FuseLLM's <c>map[key]</c>: the base id for a harmonised blending string, when the map has that key.</summary>
    public bool TryMapKey(string key, out int baseId) => _byKey.TryGetValue(key, out baseId);

    /// <summary>The map as a list indexed by blending id (FuseChat v2's <c>blending_to_base</c>), unmapped ids as <paramref name="unmapped"/>.</summary>
    public int[] ToIdList(int unmapped)
    {
        var r = new int[_target.Length];
        for (int i = 0; i < r.Length; i++) r[i] = _target[i] >= 0 ? _target[i] : unmapped;
        return r;
    }

    /// <summary>
    /// Writes FuseLLM's format, byte-identical to its <c>json.dump(dict)</c>: keys in blending id order, Python's
    /// separators and <c>ensure_ascii</c> escapes. Unmapped ids are left out.
    /// </summary>
    public void WriteFuseLlmJson(string path, TokenVocabulary @base)
    {
        ArgumentNullException.ThrowIfNull(@base);
        var order = new List<string>();
        var seen = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < _keys.Length; i++)
        {
            if (_keys[i] is not { } k || _target[i] < 0) continue;
            if (seen.TryAdd(k, _target[i])) order.Add(k);
            else seen[k] = _target[i];
        }
        var dict = new Dictionary<string, string>(order.Count, StringComparer.Ordinal);
        foreach (var k in order) dict[k] = @base.RequirePiece(seen[k]);
        AtomicFile.WriteAllText(path, PyJson.Dumps(PyJson.FromClr(dict), ensureAscii: true, indent: null, itemSeparator: null, keySeparator: null, sortKeys: false));
    }

    /// <summary>Writes FuseChat v2's format: a JSON list of base ids indexed by blending id (unmapped as <paramref name="unmapped"/>).</summary>
    public void WriteIdListJson(string path, int unmapped)
    {
        var ids = ToIdList(unmapped);
        var sb = new StringBuilder(ids.Length * 7);
        sb.Append('[');
        for (int i = 0; i < ids.Length; i++)
        {
            if (i > 0) sb.Append(", ");
            sb.Append(ids[i].ToString(CultureInfo.InvariantCulture));
        }
        sb.Append(']');
        AtomicFile.WriteAllText(path, sb.ToString());
    }

    /// <summary>
    /// Reads a map file in either format: FuseLLM's object (keys are harmonised blending pieces, values base pieces;
    /// each blending id takes the entry of its harmonised piece) or FuseChat v2's list of base ids.
    /// </summary>
    /// <exception cref="FusionException">The file is missing, malformed, or names pieces/ids the vocabularies do not have.</exception>
    public static VocabMap Read(string path, TokenVocabulary blending, TokenVocabulary @base)
    {
        ArgumentNullException.ThrowIfNull(blending);
        ArgumentNullException.ThrowIfNull(@base);
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(File.ReadAllBytes(path));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException)
        {
            throw new FusionException($"{path}: cannot read the vocabulary map ({e.Message})", "give a MAP.json written by `fusesharp fuse vocab-map` or by FuseLLM/FuseChat", e);
        }
        using (doc)
        {
            var keys = HarmonisedKeys(blending, @base.Marker);
            var target = new int[blending.Count];
            Array.Fill(target, -1);
            int exact = 0, other = 0;
            if (doc.RootElement.ValueKind == JsonValueKind.Object)
            {
                var byKey = new Dictionary<string, int>(StringComparer.Ordinal);
                foreach (var p in doc.RootElement.EnumerateObject())
                {
                    var value = p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString()! : throw new FusionException($"{path}: the value of key {JsonSerializer.Serialize(p.Name)} is not a string", "FuseLLM maps are {\"blending piece\": \"base piece\"}");
                    byKey[p.Name] = @base.Id(value) ?? throw new FusionException($"{path}: {JsonSerializer.Serialize(value)} is not a piece of the base vocabulary {@base.Name}", "the map was made for another base tokenizer");
                }
                for (int i = 0; i < keys.Length; i++)
                {
                    if (keys[i] is { } k && byKey.TryGetValue(k, out int b))
                    {
                        target[i] = b;
                        if (@base.Piece(b) == k) exact++; else other++;
                    }
                }
            }
            else if (doc.RootElement.ValueKind == JsonValueKind.Array)
            {
                int n = doc.RootElement.GetArrayLength();
                if (n != blending.Count)
                    throw new FusionException($"{path}: the id list has {n} entries but the blending vocabulary {blending.Name} has {blending.Count}", "the map was made for another blending tokenizer");
                int i = 0;
                foreach (var e in doc.RootElement.EnumerateArray())
                {
                    if (!e.TryGetInt32(out int b) || b < 0 || b >= @base.Count)
                        throw new FusionException($"{path}: entry {i} is not a base id in [0, {@base.Count})", "the map was made for another base tokenizer");
                    target[i] = b;
                    if (keys[i] is { } k && @base.Piece(b) == k) exact++; else other++;
                    i++;
                }
            }
            else
            {
                throw new FusionException($"{path}: expected a JSON object or list", "give a MAP.json written by `fusesharp fuse vocab-map`");
            }
            int unmapped = target.Count(t => t < 0);
            // Ids a map file leaves out (an MS map in FuseLLM's format) get what FuseChat v2's list holds for them.
            return new VocabMap(VocabMapType.MinEd, target, keys, null, new VocabMapStats(blending.Count - unmapped, exact, other, unmapped, 0), @base.UnkId ?? @base.EosId);
        }
    }

    /// <summary>Per blending id, its piece with the blending marker replaced by the base marker (FuseLLM's key).</summary>
    internal static string?[] HarmonisedKeys(TokenVocabulary blending, string baseMarker)
    {
        var keys = new string?[blending.Count];
        for (int i = 0; i < keys.Length; i++)
        {
            if (blending.Piece(i) is { } p) keys[i] = Alignment.DtwVariants.ReplaceMarker(p, blending.Marker, baseMarker);
        }
        return keys;
    }
}
