using FuseSharp.Merging.Config;
using FuseSharp.Merging.Execution;
using FuseSharp.Merging.Methods;
using FuseSharp.Merging.Planning;
using FuseSharp.Tensors;

namespace FuseSharp.Tests.Merging;

/// <summary>Runs one registered method on in-memory tensors (no files), with defaults filled in as the planner does.</summary>
internal static class MethodHarness
{
    public static float[] Run(string method, float[]? baseValues, float[][] inputs, long[] shape, object? globals = null, object[]? perModel = null,
        long seed = 0, string name = "model.layers.0.mlp.up_proj.weight", bool inputEmbedding = false)
    {
        MergeMethodRegistry.TryGet(method, out var m);
        var task = Task(m, baseValues, inputs, shape, globals, perModel, name, inputEmbedding);
        m.Validate(task);
        var sink = new MemorySink();
        sink.Allocate(task.Name, task.Count);
        var output = new TensorOutput(sink, task.Name, task.Count);
        using (var ctx = new TensorMergeContext(task, output, seed, default)) m.Merge(ctx);
        var stats = output.Complete();
        if (stats.NonFiniteCount > 0) throw new InvalidOperationException($"{stats.NonFiniteCount} non-finite outputs");
        return sink[task.Name];
    }

    public static TensorTask Task(IMergeMethod m, float[]? baseValues, float[][] inputs, long[] shape, object? globals, object[]? perModel,
        string name = "model.layers.0.mlp.up_proj.weight", bool inputEmbedding = false)
    {
        var s = new Shape(shape);
        var list = new List<TaskInput>();
        for (int i = 0; i < inputs.Length; i++)
            list.Add(new TaskInput(i + 1, $"m{i}", name, new ArraySource(inputs[i], s, $"m{i}"), Values(m.ModelParameters, perModel?[i])));
        return new TensorTask
        {
            Name = name,
            Shape = s,
            OutputDType = DType.F32,
            Inputs = list,
            Base = baseValues is null ? null : new TaskInput(0, "base", name, new ArraySource(baseValues, s, "base"), ParameterValues.Empty),
            Parameters = Values(m.Parameters, globals),
            IsEmbedding = inputEmbedding,
            IsInputEmbedding = inputEmbedding,
        };
    }

    /// <summary>Defaults of <paramref name="defs"/> overridden by the properties of an anonymous object.</summary>
    public static ParameterValues Values(IReadOnlyList<ParameterDef> defs, object? given)
    {
        var d = new Dictionary<string, ParameterScalar>();
        foreach (var def in defs)
            if (def.Default is { } v) d[def.Name] = v;
        if (given is not null)
            foreach (var p in given.GetType().GetProperties())
            {
                var v = p.GetValue(given);
                d[p.Name] = v switch
                {
                    bool b => ParameterScalar.Bool(b),
                    string str => ParameterScalar.String(str),
                    _ => ParameterScalar.Number(Convert.ToDouble(v, System.Globalization.CultureInfo.InvariantCulture)),
                };
            }
        return new ParameterValues(d);
    }

    public static float[] Random(int n, int seed, float scale = 1f)
    {
        var r = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => (float)(r.NextDouble() * 2 - 1) * scale).ToArray();
    }

    public static float[] Add(float[] a, float[] b, float s = 1f) => a.Select((x, i) => x + s * b[i]).ToArray();
}
