using FuseSharp.IO;
using FuseSharp.Models;
using FuseSharp.Models.Weights;
using FuseSharp.Tensors;
using FuseSharp.Training;
using FuseSharp.Training.Data;

namespace FuseSharp.Tests.Fusion;

/// <summary>
/// An engine model (any architecture with an untied output head) trained in its output projection only: the
/// forward is the engine's, over an arena that holds every weight (so saved folders are complete checkpoints the
/// engine loads), and the backward is <c>dW_head = dlogitsᵀ · final_norm(x)</c>, the other gradients staying zero.
/// The recipe tests use it as the trainer's model so that they do not depend on a full transformer backward.
/// </summary>
internal sealed class HeadOnlyTrainable : ITrainableModel
{
    private readonly TransformerModel _model;
    private readonly string _head;

    private HeadOnlyTrainable(ModelConfig config, TensorArena parameters, TransformerModel model, string head)
    {
        Config = config;
        Parameters = parameters;
        Gradients = parameters.CreateLike();
        _model = model;
        _head = head;
    }

    public ModelConfig Config { get; }

    public TensorArena Parameters { get; }

    public TensorArena Gradients { get; }

    public int VocabSize => _model.Spec.VocabSize;

    public int MaxPositions => _model.Spec.MaxPositions;

    public static HeadOnlyTrainable Load(string folder)
    {
        using var mf = ModelFolder.Open(folder);
        var config = mf.Config!;
        var architecture = ArchitectureRegistry.Resolve(config);
        var spec = architecture.Resolve(config);
        var layout = architecture.Parameters(spec);
        var head = layout.Single(p => p.Role == ParameterRole.LmHead).Name;
        var arena = TensorArena.Create(layout.Select(p => (p.Name, new Shape(p.Shape))));
        using (var weights = SafetensorsModel.Open(folder)) ArenaFiles.Load(arena, weights);
        var views = layout.ToDictionary(p => p.Name, p => arena.View(p.Name));
        var model = TransformerModel.Create(architecture, spec, new TensorWeightSource(views), config: config);
        return new HeadOnlyTrainable(config, arena, model, head);
    }

    public void Run(MicroBatch batch, MicroBatchLoss loss, bool backward)
    {
        int v = VocabSize, d = _model.Spec.HiddenSize, n = batch.PositionCount, t = batch.SequenceLength;
        var mask = new byte[n];
        for (int b = 0; b < batch.BatchSize; b++)
            for (int i = 0; i < batch.Lengths[b]; i++) mask[b * t + i] = 1;
        var tokens = new TokenBatch(batch.BatchSize, t, batch.InputIds, mask);
        var logits = new float[(long)n * v];
        var sink = new AllLogits(logits, v);
        var hidden = new HiddenRows(n, d);
        _model.Observer = hidden;
        try
        {
            _model.Forward(tokens, sink);
        }
        finally
        {
            _model.Observer = null;
        }
        loss.Apply(0, n, logits, v, backward);
        if (!backward) return;
        // Rows of final_norm come in the order of the wanted positions (the real ones, row-major).
        var grad = Gradients.Span(_head);
        int row = 0;
        for (int p = 0; p < n; p++)
        {
            if (mask[p] == 0) continue;
            var h = hidden.Values.AsSpan(row++ * d, d);
            for (int j = 0; j < v; j++)
            {
                float g = logits[(long)p * v + j];
                if (g != 0) System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(h, g, grad.Slice(j * d, d), grad.Slice(j * d, d));
            }
        }
    }

    public void Dispose()
    {
        _model.Dispose();
        Parameters.Dispose();
        Gradients.Dispose();
    }

    /// <summary>The logits of every real position into a (B·T, V) buffer.</summary>
    private sealed class AllLogits(float[] buffer, int vocab) : LogitsSink
    {
        private int _length;

        public override void Begin(TokenBatch batch, int vocabSize)
        {
            ArgumentNullException.ThrowIfNull(batch);
            _length = batch.Length;
        }

        public override void ConsumeRow(int b, int t, ReadOnlySpan<float> logits) => logits.CopyTo(buffer.AsSpan((b * _length + t) * vocab, vocab));
    }

    private sealed class HiddenRows(int rows, int columns) : ITensorObserver
    {
        public float[] Values { get; } = new float[(long)rows * columns];

        public void Observe(string name, int layer, int rowOffset, ReadOnlySpan<float> values, int columns)
        {
            if (name == "final_norm") values.CopyTo(Values.AsSpan(rowOffset * columns));
        }
    }
}

/// <summary>A model that calls back before every run (tests interrupt a training at a chosen micro-batch with it).</summary>
internal sealed class CallbackModel(ITrainableModel inner, Action onRun) : ITrainableModel
{
    public ModelConfig Config => inner.Config;

    public TensorArena Parameters => inner.Parameters;

    public TensorArena Gradients => inner.Gradients;

    public int VocabSize => inner.VocabSize;

    public int MaxPositions => inner.MaxPositions;

    public void Run(MicroBatch batch, MicroBatchLoss loss, bool backward)
    {
        onRun();
        inner.Run(batch, loss, backward);
    }

    public void Dispose() => inner.Dispose();
}
