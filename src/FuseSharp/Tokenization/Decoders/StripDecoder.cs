namespace FuseSharp.Tokenization.Decoders;

/// <summary>Removes up to <c>start</c> leading and <c>stop</c> trailing occurrences of a character from every piece (HF <c>Strip</c>).</summary>
public sealed class StripDecoder(string content, int start, int stop) : IDecoder
{
    public static StripDecoder FromJson(JsonSection j) => new(j.GetChar("content", " "), j.GetInt("start", 0), j.GetInt("stop", 0));

    public List<string> DecodeChain(List<string> tokens)
    {
        var result = new List<string>(tokens.Count);
        foreach (var t in tokens)
        {
            var runes = t.EnumerateRunes().Select(r => r.ToString()).ToList();
            int s = 0, e = runes.Count;
            while (s < start && s < runes.Count && runes[s] == content) s++;
            int removed = 0;
            while (removed < stop && e > s && runes[e - 1] == content)
            {
                e--;
                removed++;
            }
            result.Add(string.Concat(runes.Skip(s).Take(e - s)));
        }
        return result;
    }
}
