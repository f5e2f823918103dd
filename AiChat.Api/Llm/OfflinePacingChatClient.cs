using System.Runtime.CompilerServices;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Options;

namespace AiChat.Api.Llm;

/// <summary>
/// Gives the offline model's streamed reply a real model's pace: a pause of <c>Llm:Offline:WordDelay</c> before every
/// text update but the first (the offline model sends a word per update), so streaming and reconnecting can be watched
/// without a provider key. It sits above metering, where a non-streaming call is still a non-streaming call, so only a
/// streamed reply waits; a pause ends the moment the call is cancelled.
/// </summary>
public sealed class OfflinePacingChatClient(IChatClient inner, TimeSpan wordDelay, TimeProvider time) : DelegatingChatClient(inner)
{
    public TimeSpan WordDelay => wordDelay;

    public override async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(
        IEnumerable<ChatMessage> messages, ChatOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var spoken = false;
        await foreach (var update in base.GetStreamingResponseAsync(messages, options, cancellationToken))
        {
            if (update.Contents.Any(content => content is TextContent { Text.Length: > 0 }))
            {
                if (spoken)
                {
                    await Task.Delay(wordDelay, time, cancellationToken);
                }

                spoken = true;
            }

            yield return update;
        }
    }
}

public static class OfflinePacingExtensions
{
    /// <summary>Paces the pipeline's streamed replies when its model is the offline one and <c>Llm:Offline:WordDelay</c> is above zero; else adds nothing.</summary>
    public static ChatClientBuilder UseOfflinePace(this ChatClientBuilder builder) =>
        builder.Use((inner, services) =>
        {
            var delay = services.GetRequiredService<IOptions<LlmOptions>>().Value.Offline.WordDelay;
            return delay > TimeSpan.Zero && inner.GetService<OfflineChatClient>() is not null
                ? new OfflinePacingChatClient(inner, delay, services.GetService<TimeProvider>() ?? TimeProvider.System)
                : inner;
        });
}
