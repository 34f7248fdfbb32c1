using FuseSharp.Tokenization.Models;
using FuseSharp.Tokenization.Normalizers;
using FuseSharp.Tokenization.Patterns;
using FuseSharp.Tokenization.PostProcessors;
using FuseSharp.Tokenization.PreTokenizers;
using FuseSharp.Tokenization.Unicode;

namespace FuseSharp.Tokenization;

/// <summary>
/// A fused encoder for the byte-level BPE pipeline shape almost every GPT-style tokenizer has (no normalizer or NFC;
/// isolated regex splits; byte-level without prefix space; BPE), producing exactly what the stage-by-stage pipeline
/// produces (tests compare both) without building a <see cref="NormalizedString"/> per word: words are found with the
/// split scanners, rewritten into the byte-level alphabet in a reused buffer and looked up in the BPE word cache
/// without allocating. Text that NFC would change goes through the general pipeline.
/// </summary>
internal sealed class ByteLevelFastPath
{
    private readonly IWordScanner[] stages;
    private readonly bool nfc;
    private readonly BpeModel model;

    [ThreadStatic]
    private static char[]? buffer;

    [ThreadStatic]
    private static int[]? starts;

    [ThreadStatic]
    private static int[]? ends;

    private ByteLevelFastPath(IWordScanner[] stages, bool nfc, BpeModel model)
    {
        this.stages = stages;
        this.nfc = nfc;
        this.model = model;
    }

    /// <summary>The fast path for a pipeline, or null when its shape is not the supported one.</summary>
    public static ByteLevelFastPath? TryCreate(INormalizer? normalizer, IPreTokenizer? preTokenizer, ITokenizerModel model)
    {
        if (model is not BpeModel bpe || bpe.Options.ContinuingSubwordPrefix is not null || bpe.Options.EndOfWordSuffix is not null) return null;
        if (normalizer is not null && normalizer is not UnicodeNormalizer { Form: UnicodeForm.Nfc }) return null;
        var stages = new List<IWordScanner>();
        var list = preTokenizer is SequencePreTokenizer seq ? seq.PreTokenizers : preTokenizer is null ? [] : [preTokenizer];
        if (list.Count == 0 || list[^1] is not ByteLevelPreTokenizer { AddPrefixSpace: false } last) return null;
        for (int i = 0; i < list.Count - 1; i++)
        {
            if (list[i] is not SplitPreTokenizer { Behavior: SplitBehavior.Isolated, Invert: false } split || split.Pattern.Scanner is not { } scanner) return null;
            stages.Add(scanner);
        }
        if (last.UseRegex) stages.Add(WordScanners.Gpt2);
        return new ByteLevelFastPath([.. stages], normalizer is not null, bpe);
    }

    /// <summary>Encodes <paramref name="text"/> into <paramref name="output"/>; false (nothing added) when the general pipeline must run.</summary>
    public bool TryEncode(string text, AddedVocabulary added, EncodingBuilder output)
    {
        if (nfc && !UnicodeNormalization.IsQuickStable(text, UnicodeForm.Nfc)) return false;
        var words = new List<(int Start, int End)>();
        var scratch = new List<(int Start, int End)>();
        int cursor = 0;
        // The normalizer is the identity on this text, so raw and normalized added tokens are both matched in it.
        foreach (var (s, e, token) in added.HasRaw ? added.Matches(text, normalizedSet: false) : [])
        {
            EncodeSegment(text, cursor, s, added, output, words, scratch);
            output.Add(token.Id, (s, e), token.Special);
            cursor = e;
        }
        EncodeSegment(text, cursor, text.Length, added, output, words, scratch);
        return true;
    }

    private void EncodeSegment(string text, int start, int end, AddedVocabulary added, EncodingBuilder output, List<(int, int)> words, List<(int, int)> scratch)
    {
        if (start >= end) return;
        if (added.HasNormalized)
        {
            var segment = text[start..end];
            int cursor = 0;
            foreach (var (s, e, token) in added.Matches(segment, normalizedSet: true))
            {
                EncodeWords(text, start + cursor, start + s, output, words, scratch);
                output.Add(token.Id, (start + s, start + e), token.Special);
                cursor = e;
            }
            EncodeWords(text, start + cursor, end, output, words, scratch);
            return;
        }
        EncodeWords(text, start, end, output, words, scratch);
    }

    // Splits [start, end) with every stage (matches and the gaps between them are words, as Isolated splits keep both).
    private void EncodeWords(string text, int start, int end, EncodingBuilder output, List<(int Start, int End)> words, List<(int Start, int End)> scratch)
    {
        if (start >= end) return;
        words.Clear();
        words.Add((start, end));
        foreach (var stage in stages)
        {
            var next = new List<(int, int)>(words.Count * 2);
            foreach (var (ws, we) in words)
            {
                scratch.Clear();
                stage.FindAll(text.AsSpan(ws, we - ws), scratch);
                int prev = 0;
                foreach (var (ms, me) in scratch)
                {
                    if (ms > prev) next.Add((ws + prev, ws + ms));
                    if (me > ms) next.Add((ws + ms, ws + me));
                    prev = me;
                }
                if (we - ws > prev) next.Add((ws + prev, we));
            }
            words.Clear();
            words.AddRange(next);
        }
        foreach (var (ws, we) in words) EncodeWord(text, ws, we, output);
    }

    private void EncodeWord(string text, int start, int end, EncodingBuilder output)
    {
        int n = end - start;
        var buf = buffer ??= new char[256];
        if (buf.Length < n * 3) buf = buffer = new char[Math.Max(n * 3, buf.Length * 2)];
        bool ascii = true;
        var src = text.AsSpan(start, n);
        for (int i = 0; i < src.Length; i++)
        {
            char c = src[i];
            if (c >= 0x80)
            {
                ascii = false;
                break;
            }
            buf[i] = ByteLevelAlphabet.Encode((byte)c);
        }
        if (ascii)
        {
            var pieces = model.Pieces(buf.AsSpan(0, n));
            for (int k = 0; k < pieces.Length; k += 3) output.Add(pieces[k], (start + pieces[k + 1], start + pieces[k + 2]), false);
            return;
        }
        // Non-ASCII: one alphabet character per UTF-8 byte, each remembering the character it came from.
        int cap = n * 3;
        var st = starts is { } s0 && s0.Length >= cap ? s0 : starts = new int[Math.Max(cap, 256)];
        var en = ends is { } e0 && e0.Length >= cap ? e0 : ends = new int[Math.Max(cap, 256)];
        Span<byte> utf8 = stackalloc byte[4];
        int m = 0;
        for (int i = start; i < end;)
        {
            int cs = i;
            int cp = UnicodeNormalization.NextCodePoint(text, ref i);
            int len = new System.Text.Rune(cp).EncodeToUtf8(utf8);
            for (int k = 0; k < len; k++)
            {
                buf[m] = ByteLevelAlphabet.Encode(utf8[k]);
                st[m] = cs;
                en[m] = i;
                m++;
            }
        }
        var ps = model.Pieces(buf.AsSpan(0, m));
        for (int k = 0; k < ps.Length; k += 3) output.Add(ps[k], (st[ps[k + 1]], en[ps[k + 2] - 1]), false);
    }
}
