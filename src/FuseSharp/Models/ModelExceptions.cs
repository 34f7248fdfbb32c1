namespace FuseSharp.Models;

/// <summary>A checkpoint that does not fit its architecture: a missing tensor, a wrong shape or dtype. The message names the tensor.</summary>
public class ModelLoadException : FuseSharpException
{
    public ModelLoadException() : base("cannot load the model") { }

    public ModelLoadException(string message) : base(message) { }

    public ModelLoadException(string message, Exception inner) : base(message, inner) { }

    public ModelLoadException(string message, string? hint, Exception? inner = null) : base(message, hint, inner) { }
}

/// <summary>Input the model cannot take: token ids outside the vocabulary, sequences past the maximum position, a full KV cache.</summary>
public class ModelInputException : FuseSharpException
{
    public ModelInputException() : base("invalid model input") { }

    public ModelInputException(string message) : base(message) { }

    public ModelInputException(string message, Exception inner) : base(message, inner) { }

    public ModelInputException(string message, string? hint, Exception? inner = null) : base(message, hint, inner) { }
}
