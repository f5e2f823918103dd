using System.Runtime.CompilerServices;
using Microsoft.Extensions.AI;

namespace AiChat.Tests.Agents;

/// <summary>
/// A model that answers from a script: each call takes the next step (a tool call or a text); records every call,
/// and how many calls ran at once. A conversation's title request is not a step of the script: it is answered at once
/// with <see cref="Title"/> and counted apart (<see cref="TitleCalls"/>), as a real model would answer it besides the turn.
/// </summary>
public sealed class ScriptedChatClient(Func<int, IList<ChatMessage>, ChatOptions?, ScriptedStep> script) : IChatClient
{
    private int _calls;
    private int _titleCalls;
    private int _running;
    private int _maxRunning;

    public int Calls => Volatile.Read(ref _calls);

    public int TitleCalls => Volatile.Read(ref _titleCalls);

    public string Title { get; init; } = "A scripted title";

    /// <summary>When set, a title request fails as an unreachable endpoint would.</summary>
    public bool TitleFails { get; init; }

    public int MaxConcurrentCalls => Volatile.Read(ref _maxRunning);

    public List<(IList<ChatMessage> Messages, ChatOptions? Options)> Received { get; } = [];

    public TimeSpan Delay { get; init; } = TimeSpan.Zero;

    public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
        await GetStreamingResponseAsync(messages, options, cancellationToken).ToChatResponseAsync(cancellationToken);

    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        if (TitleRequests.Is(messages))
        {
            Interlocked.Increment(ref _titleCalls);
            if (TitleFails)
            {
                throw new HttpRequestException("connection refused");
            }

            await foreach (var update in TitleRequests.AnswerAsync(Title))
            {
                yield return update;
            }

            yield break;
        }

        var call = Interlocked.Increment(ref _calls);
        var running = Interlocked.Increment(ref _running);
        InterlockedMax(ref _maxRunning, running);
        try
        {
            var list = messages.ToList();
            lock (Received)
            {
                Received.Add((list, options));
            }

            if (Delay > TimeSpan.Zero)
            {
                await Task.Delay(Delay, cancellationToken);
            }

            var step = script(call, list, options);
            if (step.Call is { } tool)
            {
                yield return new ChatResponseUpdate(ChatRole.Assistant, [new FunctionCallContent($"call_{call}", tool.Name, tool.Arguments)]) { FinishReason = ChatFinishReason.ToolCalls };
            }
            else
            {
                yield return new ChatResponseUpdate(ChatRole.Assistant, step.Text ?? "") { FinishReason = ChatFinishReason.Stop };
            }

            yield return new ChatResponseUpdate(ChatRole.Assistant, [new UsageContent(new UsageDetails { InputTokenCount = 10, OutputTokenCount = 2 })]);
        }
        finally
        {
            Interlocked.Decrement(ref _running);
        }
    }

    public object? GetService(Type serviceType, object? serviceKey = null) => null;

    public void Dispose()
    {
    }

    private static void InterlockedMax(ref int target, int value)
    {
        int current;
        while ((current = Volatile.Read(ref target)) < value && Interlocked.CompareExchange(ref target, value, current) != current)
        {
        }
    }
}

public sealed record ScriptedStep(string? Text, (string Name, Dictionary<string, object?> Arguments)? Call = null)
{
    public static ScriptedStep Say(string text) => new(text);

    public static ScriptedStep Use(string tool, Dictionary<string, object?> arguments) => new(null, (tool, arguments));
}

/// <summary>How the test models tell a conversation's title request (the title writer's prompt) from a turn's call, and answer it.</summary>
public static class TitleRequests
{
    public static bool Is(IEnumerable<ChatMessage> messages) =>
        messages.Any(m => m.Role == ChatRole.System && m.Text.Contains(AiChat.Api.Llm.OfflineChatClient.TitleMarker, StringComparison.Ordinal));

    public static async IAsyncEnumerable<ChatResponseUpdate> AnswerAsync(string title)
    {
        await Task.Yield();
        yield return new ChatResponseUpdate(ChatRole.Assistant, title) { FinishReason = ChatFinishReason.Stop };
        yield return new ChatResponseUpdate(ChatRole.Assistant, [new UsageContent(new UsageDetails { InputTokenCount = 10, OutputTokenCount = 2 })]);
    }
}
