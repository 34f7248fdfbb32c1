namespace FuseSharp.Tokenization.Training;

/// <summary>The tokenizer families the trainer produces (each written as a Hugging Face <c>tokenizer.json</c>).</summary>
public enum TokenizerKind
{
    /// <summary>
    /// GPT-2-style byte-level BPE: the GPT-2 split regex, words rewritten into the 256-character byte alphabet (every
    /// byte is a base token, so nothing is ever unknown), merges learnt over byte symbols.
    /// </summary>
    ByteLevelBpe,

    /// <summary>
    /// SentencePiece-style BPE (Llama / Mistral family): spaces become '▁' with one prepended to the text (Metaspace),
    /// base symbols are the characters that make up <see cref="TokenizerTrainingOptions.CharacterCoverage"/> of the text,
    /// merges follow SentencePiece's BPE trainer, optionally with <c>&lt;0xNN&gt;</c> byte fallback.
    /// </summary>
    SentencePieceBpe,

    /// <summary>
    /// SentencePiece's unigram language model (T5 / ALBERT family): seed pieces from frequent substrings, EM over the
    /// segmentation lattice, pruning to the target size while keeping every covered character.
    /// </summary>
    Unigram,
}

/// <summary>How BPE chooses among pairs that occur equally often. The references differ; each rule is one of them.</summary>
public enum BpeTieBreak
{
    /// <summary>
    /// The lexicographically greatest pair of byte strings, compared as the tuple (left bytes, right bytes)
    /// (stanford-cs336 assignment 1's reference <c>train_bpe</c>; its fixture merges are reproduced with this rule).
    /// Default for <see cref="TokenizerKind.ByteLevelBpe"/>.
    /// </summary>
    GreatestBytes,

    /// <summary>
    /// The pair with the smallest token ids, left id first (Hugging Face <c>tokenizers</c>' <c>BpeTrainer</c>, whose ids
    /// are: special tokens, then the alphabet sorted by code point, then merges in order).
    /// </summary>
    LowestIds,

    /// <summary>
    /// The shorter merged piece (in characters), then the lexicographically smaller one (SentencePiece's
    /// <c>bpe_model_trainer.cc</c>). Default for <see cref="TokenizerKind.SentencePieceBpe"/>.
    /// </summary>
    SentencePiece,
}

/// <summary>The normalizer written into the tokenizer (and applied to the training text).</summary>
public enum TrainingNormalization
{
    /// <summary>No normalizer: encoding then decoding gives the text back exactly (default).</summary>
    None,

    /// <summary>Unicode NFC.</summary>
    Nfc,

    /// <summary>Unicode NFKC (compatibility characters folded: ligatures, full-width forms, ...).</summary>
    Nfkc,

    /// <summary>
    /// SentencePiece's default <c>nmt_nfkc</c> rule as Hugging Face writes it: <c>Nmt</c> (control characters dropped,
    /// odd spaces made ' ') then NFKC.
    /// </summary>
    NmtNfkc,
}

/// <summary>Where the special tokens go in the vocabulary.</summary>
public enum SpecialTokensPlacement
{
    /// <summary>Ids 0, 1, ... in the order given (Hugging Face trainers, SentencePiece's &lt;unk&gt; &lt;s&gt; &lt;/s&gt;).</summary>
    Start,

    /// <summary>After every learnt token (GPT-2's <c>&lt;|endoftext|&gt;</c> = 50256).</summary>
    End,
}

/// <summary>
/// What to train. Options left null take the default of <see cref="Kind"/> (see <see cref="Resolve"/>): the defaults are
/// those of the reference trainer of each family (cs336 / Hugging Face for byte-level BPE, SentencePiece for the other
/// two), except that no normalizer is applied unless asked for, so that trained tokenizers are lossless.
/// </summary>
public sealed record TokenizerTrainingOptions
{
    /// <summary>The tokenizer family.</summary>
    public required TokenizerKind Kind { get; init; }

    /// <summary>
    /// The size of the vocabulary, special tokens, byte-fallback pieces and base alphabet included (what
    /// <c>len(tokenizer)</c> reports). Training stops early (with a notice) when the text has nothing left to merge.
    /// </summary>
    public required int VocabSize { get; init; }

    /// <summary>
    /// Special tokens, in id order: cut out of the training text (never merged across) and added as special tokens.
    /// Null: <c>&lt;|endoftext|&gt;</c> for byte-level BPE, <c>&lt;unk&gt; &lt;s&gt; &lt;/s&gt;</c> for the SentencePiece kinds.
    /// </summary>
    public IReadOnlyList<string>? SpecialTokens { get; init; }

    /// <summary>Where the special tokens go (default: the start).</summary>
    public SpecialTokensPlacement SpecialTokensPlacement { get; init; } = SpecialTokensPlacement.Start;

    /// <summary>
    /// The unknown token (required by the SentencePiece kinds, default <c>&lt;unk&gt;</c>; unused by byte-level BPE, which
    /// has no unknown input). Added to the special tokens (first) when missing.
    /// </summary>
    public string? UnkToken { get; init; }

    /// <summary>BOS token for <c>tokenizer_config.json</c> (default: <c>&lt;s&gt;</c> or <c>&lt;|endoftext|&gt;</c> when among the special tokens).</summary>
    public string? BosToken { get; init; }

    /// <summary>EOS token for <c>tokenizer_config.json</c> (default: <c>&lt;/s&gt;</c> or <c>&lt;|endoftext|&gt;</c> when among the special tokens).</summary>
    public string? EosToken { get; init; }

    /// <summary>Padding token for <c>tokenizer_config.json</c> (default: none).</summary>
    public string? PadToken { get; init; }

    /// <summary>Add the BOS token in front of every encoding (a <c>TemplateProcessing</c> post-processor).</summary>
    public bool AddBosToken { get; init; }

    /// <summary>Add the EOS token after every encoding.</summary>
    public bool AddEosToken { get; init; }

    /// <summary>BPE: a pair must occur at least this often to be merged (Hugging Face's <c>min_frequency</c>; default 0 = any pair).</summary>
    public long MinFrequency { get; init; }

    /// <summary>BPE tie-break rule (null: <see cref="BpeTieBreak.GreatestBytes"/> for byte-level, <see cref="BpeTieBreak.SentencePiece"/> otherwise).</summary>
    public BpeTieBreak? TieBreak { get; init; }

    /// <summary>
    /// Longest token, in characters (byte-level BPE: bytes). Null: unlimited for byte-level BPE, 16 for the SentencePiece
    /// kinds (SentencePiece's <c>max_sentencepiece_length</c>).
    /// </summary>
    public int? MaxTokenLength { get; init; }

    /// <summary>
    /// SentencePiece kinds: the share of the training characters (by count) that must be base symbols; the rarest
    /// characters beyond it become byte fallback or the unknown token. SentencePiece's default 0.9995; 1 keeps every character.
    /// </summary>
    public double CharacterCoverage { get; init; } = 0.9995;

    /// <summary>SentencePiece kinds: add the 256 <c>&lt;0xNN&gt;</c> pieces and encode uncovered characters as their UTF-8 bytes.</summary>
    public bool ByteFallback { get; init; }

    /// <summary>The normalizer (default none: lossless).</summary>
    public TrainingNormalization Normalization { get; init; } = TrainingNormalization.None;

    /// <summary>
    /// SentencePiece kinds: a piece may not mix Unicode scripts (letters of one script, or "common" characters: digits,
    /// punctuation, symbols); SentencePiece's <c>split_by_unicode_script</c>, default true. See <see cref="PieceRules"/>.
    /// </summary>
    public bool SplitByScript { get; init; } = true;

    /// <summary>SentencePiece kinds: digits do not join letters (<c>split_by_number</c>, default true).</summary>
    public bool SplitByNumber { get; init; } = true;

    /// <summary>SentencePiece kinds: every digit is its own piece (<c>split_digits</c>, default false; Llama uses true).</summary>
    public bool SplitDigits { get; init; }

    /// <summary>Unigram: how many seed pieces the EM starts from (<c>seed_sentencepiece_size</c>, default 1,000,000).</summary>
    public int SeedSize { get; init; } = 1_000_000;

    /// <summary>Unigram: the share of pieces each pruning round keeps (<c>shrinking_factor</c>, default 0.75).</summary>
    public double ShrinkingFactor { get; init; } = 0.75;

    /// <summary>Unigram: EM iterations between prunings (<c>num_sub_iterations</c>, default 2).</summary>
    public int EmSubIterations { get; init; } = 2;

    /// <summary>After <see cref="Resolve"/>: the special tokens in id order (the unknown and role tokens included).</summary>
    public IReadOnlyList<string> ResolvedSpecialTokens { get; private init; } = [];

    /// <summary>After <see cref="Resolve"/>: the BPE tie-break rule in effect.</summary>
    public BpeTieBreak ResolvedTieBreak { get; private init; }

    /// <summary>After <see cref="Resolve"/>: the longest token allowed (int.MaxValue = no limit).</summary>
    public int ResolvedMaxTokenLength { get; private init; }

    /// <summary>True for the kinds that use SentencePiece's conventions ('▁', character coverage, piece rules).</summary>
    internal bool IsSentencePiece => Kind != TokenizerKind.ByteLevelBpe;

    /// <summary>Fills the kind-dependent defaults and checks every option; throws before any text is read.</summary>
    /// <exception cref="TokenizerTrainingException">An option is out of range or contradicts another.</exception>
    public TokenizerTrainingOptions Resolve()
    {
        if (VocabSize <= 0) throw new TokenizerTrainingException($"the vocabulary size must be positive, got {VocabSize}");
        if (MinFrequency < 0) throw new TokenizerTrainingException($"the minimum frequency must be 0 or more, got {MinFrequency}");
        if (MaxTokenLength is <= 0) throw new TokenizerTrainingException($"the maximum token length must be positive, got {MaxTokenLength}");
        if (!(CharacterCoverage > 0 && CharacterCoverage <= 1)) throw new TokenizerTrainingException($"the character coverage must be in (0, 1], got {CharacterCoverage}");
        if (SeedSize < 1) throw new TokenizerTrainingException($"the seed size must be positive, got {SeedSize}");
        if (!(ShrinkingFactor > 0 && ShrinkingFactor < 1)) throw new TokenizerTrainingException($"the shrinking factor must be in (0, 1), got {ShrinkingFactor}");
        if (EmSubIterations < 1) throw new TokenizerTrainingException($"the number of EM sub-iterations must be positive, got {EmSubIterations}");
        if (Kind == TokenizerKind.ByteLevelBpe && ByteFallback)
            throw new TokenizerTrainingException("byte fallback is for the SentencePiece kinds", "byte-level BPE already has every byte as a token");
        if (Kind == TokenizerKind.Unigram && TieBreak is not null)
            throw new TokenizerTrainingException("a BPE tie-break rule was given for a unigram tokenizer");

        bool sp = Kind != TokenizerKind.ByteLevelBpe;
        var specials = new List<string>(SpecialTokens ?? (sp ? ["<unk>", "<s>", "</s>"] : ["<|endoftext|>"]));
        foreach (var s in specials)
            if (s.Length == 0) throw new TokenizerTrainingException("a special token is empty");
        var duplicate = specials.GroupBy(s => s, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null) throw new TokenizerTrainingException($"special token '{duplicate.Key}' is listed twice");
        string? unk = UnkToken ?? (sp ? "<unk>" : null);
        if (unk is not null && !specials.Contains(unk, StringComparer.Ordinal)) specials.Insert(0, unk);
        foreach (var role in new[] { BosToken, EosToken, PadToken })
            if (role is not null && !specials.Contains(role, StringComparer.Ordinal)) specials.Add(role);
        return this with
        {
            UnkToken = unk,
            BosToken = BosToken ?? FirstPresent(specials, sp ? "<s>" : "<|endoftext|>"),
            EosToken = EosToken ?? FirstPresent(specials, sp ? "</s>" : "<|endoftext|>"),
            ResolvedSpecialTokens = specials,
            ResolvedTieBreak = TieBreak ?? (sp ? BpeTieBreak.SentencePiece : BpeTieBreak.GreatestBytes),
            ResolvedMaxTokenLength = MaxTokenLength ?? (sp ? 16 : int.MaxValue),
        };
    }

    private static string? FirstPresent(List<string> specials, string name) => specials.Contains(name, StringComparer.Ordinal) ? name : null;
}

/// <summary>Training cannot proceed: bad options, an unreadable or empty corpus, or a vocabulary too small for the alphabet.</summary>
public class TokenizerTrainingException : FuseSharpException
{
    public TokenizerTrainingException() : base("tokenizer training failed") { }

    public TokenizerTrainingException(string message) : base(message) { }

    public TokenizerTrainingException(string message, Exception inner) : base(message, inner) { }

    public TokenizerTrainingException(string message, string? hint, Exception? inner = null) : base(message, hint, inner) { }
}
