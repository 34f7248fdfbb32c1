using System.Collections.Concurrent;
using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;
using FuseSharp.Tensors;
using FuseSharp.Tokenization.Normalizers;
using FuseSharp.Tokenization.Patterns;
using FuseSharp.Tokenization.PreTokenizers;

namespace FuseSharp.Tokenization.Training;

/// <summary>
/// Counts the words of the training text exactly as the trained tokenizer will cut text: special tokens are taken out
/// first (they never join other text), the rest goes through the tokenizer's own normalizer and pre-tokenizer (the
/// components loaded from the <c>tokenizer.json</c> sections the trainer writes), and every piece is a word. Text units
/// are counted in parallel on <see cref="Parallelism.MaxThreads"/> threads; the counts do not depend on the thread count.
/// Words longer than <see cref="MaxWordChars"/> (text without spaces under Metaspace, such as Chinese or Japanese)
/// are counted in pieces of that length (SentencePiece kinds only; byte-level words are never cut, so that counts are
/// those of the reference), which keeps the unigram lattice and the BPE words bounded.
/// </summary>
internal sealed class WordCounter
{
    /// <summary>Longest word the SentencePiece kinds count as one; longer ones are cut at character boundaries.</summary>
    public const int MaxWordChars = 4096;

    private readonly int maxWordChars;

    private readonly AddedVocabulary specials;
    private readonly INormalizer? normalizer;
    private readonly IPreTokenizer? preTokenizer;
    private readonly bool byteLevelFast;

    public WordCounter(INormalizer? normalizer, IPreTokenizer? preTokenizer, IReadOnlyList<string> specialTokens, bool cutLongWords)
    {
        maxWordChars = cutLongWords ? MaxWordChars : int.MaxValue;
        this.normalizer = normalizer;
        this.preTokenizer = preTokenizer;
        specials = new AddedVocabulary(specialTokens.Select((t, i) => new AddedToken(i, t, Special: true)), normalizer);
        // The two shapes the trainer writes, cut without building normalized strings (tests compare with the pipeline):
        // GPT-2's split scanner and byte alphabet, and Metaspace ('▁', prepended to every piece, split before each '▁').
        byteLevelFast = normalizer is null && preTokenizer is ByteLevelPreTokenizer { AddPrefixSpace: false, UseRegex: true };
        metaspaceFast = normalizer is null && preTokenizer is MetaspacePreTokenizer { Replacement: "\u2581", PrependScheme: PrependScheme.Always } m && m.Split;
    }

    private readonly bool metaspaceFast;

    /// <summary>Counts every word of <paramref name="batches"/>.</summary>
    public Dictionary<string, long> Count(IEnumerable<List<string>> batches, Action<long>? charsDone, CancellationToken cancellation)
    {
        var total = new Dictionary<string, long>(StringComparer.Ordinal);
        var gate = new object();
        var options = new ParallelOptions { MaxDegreeOfParallelism = Parallelism.MaxThreads, CancellationToken = cancellation };
        try
        {
            Parallel.ForEach(Partitioner.Create(batches, EnumerablePartitionerOptions.NoBuffering), options,
                () => new Tally(maxWordChars),
                (batch, _, tally) =>
                {
                    foreach (var text in batch)
                    {
                        AddWords(text, tally);
                        charsDone?.Invoke(text.Length);
                    }
                    return tally;
                },
                tally =>
                {
                    lock (gate)
                    {
                        foreach (var (w, c) in tally.Counts) CollectionsMarshal.GetValueRefOrAddDefault(total, w, out _) += c;
                    }
                });
        }
        catch (AggregateException e) when (e.InnerExceptions.Count > 0)
        {
            var inner = e.InnerExceptions.FirstOrDefault(x => x is FuseSharpException or OperationCanceledException) ?? e.InnerExceptions[0];
            ExceptionDispatchInfo.Capture(inner).Throw();
        }
        return total;
    }

    /// <summary>Adds the words of one text to <paramref name="tally"/>.</summary>
    internal void AddWords(string text, Tally tally)
    {
        TextChecks.RejectLoneSurrogates(text);
        if (byteLevelFast || metaspaceFast)
        {
            int cursor = 0;
            foreach (var (s, e, _) in specials.Matches(text, normalizedSet: false))
            {
                AddSegment(text.AsSpan(cursor, s - cursor), tally);
                cursor = e;
            }
            AddSegment(text.AsSpan(cursor), tally);
            return;
        }
        var pts = specials.ExtractAndNormalize(normalizer, text);
        preTokenizer?.PreTokenize(pts);
        foreach (var piece in pts.Pieces)
            if (piece.Tokens is null) tally.Add(piece.Normalized.Normalized);
    }

    private void AddSegment(ReadOnlySpan<char> segment, Tally tally)
    {
        if (segment.IsEmpty) return;
        if (byteLevelFast) AddByteLevel(segment, tally);
        else AddMetaspace(segment, tally);
    }

    // Metaspace words: every ' ' (and every '▁' already in the text) starts a word, '▁' + what follows up to the next
    // one; the segment's first word gets a '▁' in front unless it starts with one.
    private static void AddMetaspace(ReadOnlySpan<char> segment, Tally tally)
    {
        var buffer = tally.Buffer(segment.Length + 1);
        int start = 0;
        for (int i = 1; i <= segment.Length; i++)
        {
            if (i < segment.Length && segment[i] is not (' ' or '\u2581')) continue;
            var word = segment[start..i];
            int n = 0;
            if (word[0] is not (' ' or '\u2581')) buffer[n++] = '\u2581';
            foreach (var c in word) buffer[n++] = c == ' ' ? '\u2581' : c;
            tally.Add(buffer.AsSpan(0, n));
            start = i;
        }
    }

    // GPT-2 regex words (the matches and any gaps between them, as an isolated split keeps both), in the byte alphabet.
    private static void AddByteLevel(ReadOnlySpan<char> segment, Tally tally)
    {
        var matches = tally.Matches;
        matches.Clear();
        WordScanners.Gpt2.FindAll(segment, matches);
        int prev = 0;
        foreach (var (s, e) in matches)
        {
            if (s > prev) tally.AddUtf8Alphabet(segment[prev..s]);
            if (e > s) tally.AddUtf8Alphabet(segment[s..e]);
            prev = e;
        }
        if (prev < segment.Length) tally.AddUtf8Alphabet(segment[prev..]);
    }

    /// <summary>One thread's word counts.</summary>
    internal sealed class Tally
    {
        private readonly Dictionary<string, long>.AlternateLookup<ReadOnlySpan<char>> lookup;
        private readonly int maxWordChars;
        private char[] buffer = new char[256];

        public Tally(int maxWordChars = int.MaxValue)
        {
            this.maxWordChars = maxWordChars;
            lookup = Counts.GetAlternateLookup<ReadOnlySpan<char>>();
        }

        public Dictionary<string, long> Counts { get; } = new(StringComparer.Ordinal);

        public List<(int Start, int End)> Matches { get; } = [];

        public void Add(ReadOnlySpan<char> word)
        {
            while (word.Length > maxWordChars)
            {
                int cut = char.IsLowSurrogate(word[maxWordChars]) ? maxWordChars - 1 : maxWordChars;
                CollectionsMarshal.GetValueRefOrAddDefault(lookup, word[..cut], out _)++;
                word = word[cut..];
            }
            if (!word.IsEmpty) CollectionsMarshal.GetValueRefOrAddDefault(lookup, word, out _)++;
        }

        /// <summary>A scratch buffer of at least <paramref name="length"/> characters.</summary>
        public char[] Buffer(int length)
        {
            if (buffer.Length < length) buffer = new char[Math.Max(length, buffer.Length * 2)];
            return buffer;
        }

        /// <summary>Adds the byte-alphabet form of <paramref name="word"/>'s UTF-8 bytes.</summary>
        public void AddUtf8Alphabet(ReadOnlySpan<char> word)
        {
            if (!System.Text.Ascii.IsValid(word))
            {
                AddUtf8AlphabetSlow(word);
                return;
            }
            var ascii = Buffer(word.Length);
            for (int i = 0; i < word.Length; i++) ascii[i] = ByteLevelAlphabet.Encode((byte)word[i]);
            Add(ascii.AsSpan(0, word.Length));
        }

        private void AddUtf8AlphabetSlow(ReadOnlySpan<char> word)
        {
            int max = System.Text.Encoding.UTF8.GetMaxByteCount(word.Length);
            Span<byte> utf8 = max <= 1024 ? stackalloc byte[max] : new byte[max];
            int n = System.Text.Encoding.UTF8.GetBytes(word, utf8);
            var chars = Buffer(n);
            for (int i = 0; i < n; i++) chars[i] = ByteLevelAlphabet.Encode(utf8[i]);
            Add(chars.AsSpan(0, n));
        }
    }
}
