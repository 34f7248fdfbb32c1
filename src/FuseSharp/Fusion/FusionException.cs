namespace FuseSharp.Fusion;

/// <summary>
/// A fusion input problem: corpora that do not line up, a representation shard from another configuration, NaN
/// metrics, a tokenizer whose whitespace marker is unknown, a malformed case file. The message names the file and
/// the row/line; <see cref="FuseSharpException.Hint"/> says what to do.
/// </summary>
public sealed class FusionException : FuseSharpException
{
    public FusionException(string message, string? hint = null, Exception? inner = null) : base(message, hint, inner) { }

    public FusionException() : base("fusion error") { }

    public FusionException(string message) : base(message) { }

    public FusionException(string message, Exception inner) : base(message, inner) { }
}
