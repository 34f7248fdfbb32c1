namespace FuseSharp.Tensors;

/// <summary>Element types, named as safetensors names them.</summary>
public enum DType
{
    F32,
    F16,
    BF16,
    F64,
    I8,
    I16,
    I32,
    I64,
    U8,
    U16,
    U32,
    U64,
    Bool,
    F8E4M3,
    F8E5M2,
}

/// <summary>Sizes, safetensors names and parsing for <see cref="DType"/>.</summary>
public static class DTypes
{
    /// <summary>Bytes per element.</summary>
    public static int Size(this DType dtype) => dtype switch
    {
        DType.F64 or DType.I64 or DType.U64 => 8,
        DType.F32 or DType.I32 or DType.U32 => 4,
        DType.F16 or DType.BF16 or DType.I16 or DType.U16 => 2,
        DType.I8 or DType.U8 or DType.Bool or DType.F8E4M3 or DType.F8E5M2 => 1,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, null),
    };

    /// <summary>The name used in safetensors headers: "F32", "BF16", "BOOL", "F8_E4M3", ...</summary>
    public static string SafetensorsName(this DType dtype) => dtype switch
    {
        DType.Bool => "BOOL",
        DType.F8E4M3 => "F8_E4M3",
        DType.F8E5M2 => "F8_E5M2",
        _ => dtype.ToString(),
    };

    /// <summary>True for the floating-point types.</summary>
    public static bool IsFloat(this DType dtype) =>
        dtype is DType.F32 or DType.F16 or DType.BF16 or DType.F64 or DType.F8E4M3 or DType.F8E5M2;

    /// <summary>Parses a safetensors dtype name (exact, case-sensitive, as the format requires).</summary>
    public static bool TryParseSafetensors(string name, out DType dtype)
    {
        switch (name)
        {
            case "F32": dtype = DType.F32; return true;
            case "F16": dtype = DType.F16; return true;
            case "BF16": dtype = DType.BF16; return true;
            case "F64": dtype = DType.F64; return true;
            case "I8": dtype = DType.I8; return true;
            case "I16": dtype = DType.I16; return true;
            case "I32": dtype = DType.I32; return true;
            case "I64": dtype = DType.I64; return true;
            case "U8": dtype = DType.U8; return true;
            case "U16": dtype = DType.U16; return true;
            case "U32": dtype = DType.U32; return true;
            case "U64": dtype = DType.U64; return true;
            case "BOOL": dtype = DType.Bool; return true;
            case "F8_E4M3": dtype = DType.F8E4M3; return true;
            case "F8_E5M2": dtype = DType.F8E5M2; return true;
            default: dtype = default; return false;
        }
    }

    /// <summary>
    /// Parses the dtype names users write in configs: torch names ("float32", "bfloat16", "torch.float16", "half"),
    /// short names ("fp32", "bf16") and safetensors names ("F32"). Null when unknown.
    /// </summary>
    public static DType? ParseUserName(string? name)
    {
        if (string.IsNullOrWhiteSpace(name)) return null;
        var n = name.Trim();
        if (n.StartsWith("torch.", StringComparison.Ordinal)) n = n[6..];
        if (TryParseSafetensors(n, out var exact)) return exact;
        return n.ToLowerInvariant() switch
        {
            "float32" or "fp32" or "f32" or "float" => DType.F32,
            "float16" or "fp16" or "f16" or "half" => DType.F16,
            "bfloat16" or "bf16" => DType.BF16,
            "float64" or "fp64" or "f64" or "double" => DType.F64,
            "int8" => DType.I8,
            "int16" => DType.I16,
            "int32" => DType.I32,
            "int64" or "long" => DType.I64,
            "uint8" => DType.U8,
            "bool" => DType.Bool,
            _ => null,
        };
    }

    /// <summary>The torch name written into config.json's <c>torch_dtype</c> ("float32", "bfloat16", ...).</summary>
    public static string TorchName(this DType dtype) => dtype switch
    {
        DType.F32 => "float32",
        DType.F16 => "float16",
        DType.BF16 => "bfloat16",
        DType.F64 => "float64",
        DType.I8 => "int8",
        DType.I16 => "int16",
        DType.I32 => "int32",
        DType.I64 => "int64",
        DType.U8 => "uint8",
        DType.U16 => "uint16",
        DType.U32 => "uint32",
        DType.U64 => "uint64",
        DType.Bool => "bool",
        DType.F8E4M3 => "float8_e4m3fn",
        DType.F8E5M2 => "float8_e5m2",
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, null),
    };
}
