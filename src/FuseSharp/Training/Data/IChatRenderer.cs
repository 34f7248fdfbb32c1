namespace FuseSharp.Training.Data;

/// <summary>One message of a conversation, with the role normalised to "system", "user" or "assistant".</summary>
public sealed record ChatTurn(string Role, string Content);

/// <summary>A conversation rendered for training: the prompt text and the [Start, End) UTF-16 ranges the model learns to produce.</summary>
public sealed record RenderedChat(string Text, IReadOnlyList<(int Start, int End)> AssistantSpans);

/// <summary>
/// Renders a conversation with a model's chat template and says which characters come from assistant turns (the
/// turn's text and the end-of-turn marker that closes it, not the role header): the loss mask of supervised
/// fine-tuning. The chat-template engine implements it; tests use a fixed template.
/// </summary>
public interface IChatRenderer
{
    /// <exception cref="FuseSharpException">The template cannot render the conversation.</exception>
    RenderedChat Render(IReadOnlyList<ChatTurn> messages);
}
