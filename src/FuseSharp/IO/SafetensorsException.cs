namespace FuseSharp.IO;

/// <summary>What is wrong with a safetensors file or index (mirrors the Rust crate's <c>SafeTensorError</c>).</summary>
public enum SafetensorsErrorKind
{
    /// <summary>The file is shorter than its 8-byte header length, or the data it declares.</summary>
    Truncated,
    /// <summary>The declared header length exceeds the cap or the file.</summary>
    HeaderTooLarge,
    /// <summary>The header is not UTF-8 JSON of the expected form.</summary>
    InvalidHeader,
    /// <summary>A dtype name that safetensors does not define.</summary>
    UnknownDType,
    /// <summary>shape x dtype size does not fit 64 bits.</summary>
    ShapeOverflow,
    /// <summary>Offsets that overlap, leave holes, run past the buffer or do not match the shape.</summary>
    InvalidOffsets,
    /// <summary>The same tensor name twice.</summary>
    DuplicateTensor,
    /// <summary>A tensor that was asked for and is not there.</summary>
    MissingTensor,
    /// <summary>A broken <c>model.safetensors.index.json</c>, or a shard it names that is missing or outside the folder.</summary>
    InvalidIndex,
    /// <summary>No weights found where weights were expected.</summary>
    NoWeights,
    /// <summary>Writing failed (disk full, permissions, a tensor not fully written).</summary>
    WriteFailed,
}

/// <summary>A safetensors file, index or write that is not valid; names the file and, where known, the tensor.</summary>
public sealed class SafetensorsException : FuseSharpException
{
    public SafetensorsException(SafetensorsErrorKind kind, string path, string problem, string? tensor = null, string? hint = null, Exception? inner = null)
        : base($"{path}: {(tensor is null ? "" : $"tensor '{tensor}': ")}{problem}", hint, inner)
    {
        Kind = kind;
        FilePath = path;
        Tensor = tensor;
    }

    public SafetensorsException() : base("invalid safetensors") { }

    public SafetensorsException(string message) : base(message) { }

    public SafetensorsException(string message, Exception inner) : base(message, inner) { }

    public SafetensorsErrorKind Kind { get; }

    public string FilePath { get; } = "";

    public string? Tensor { get; }
}
