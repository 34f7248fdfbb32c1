namespace FuseSharp;

/// <summary>
/// Base of every error FuseSharp reports about its input: the message says what is wrong and,
/// where there is one, <see cref="Hint"/> says what to do next. The CLI prints these without a stack trace.
/// Subsystems derive their own type (safetensors, config, tokenizer, merge, ...) carrying file/tensor/line context.
/// </summary>
public class FuseSharpException : Exception
{
    public FuseSharpException(string message, string? hint = null, Exception? inner = null)
        : base(message, inner) => Hint = hint;

    public FuseSharpException() : base("FuseSharp error") { }

    public FuseSharpException(string message) : base(message) { }

    public FuseSharpException(string message, Exception inner) : base(message, inner) { }

    /// <summary>What the user can do about it (llm.c's "---> HINT:"), or null.</summary>
    public string? Hint { get; }
}
