using AiChat.Api.Billing;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Caching.Memory;

namespace AiChat.Api.Llm;

/// <summary>The upstream chat and embedding clients of one LiteLLM virtual key.</summary>
public sealed record LiteLlmUserClients(IChatClient Chat, IEmbeddingGenerator<string, Embedding<float>> Embeddings);

/// <summary>
/// Full profile: every call goes to LiteLLM with the virtual key of the user it is charged to, so LiteLLM enforces that
/// user's budget too. The key comes from the call's <see cref="LlmCaller"/>; the clients of a key are kept for a while.
/// </summary>
public sealed class LiteLlmUserKeys(LiteLlmKeyStore keys, IMemoryCache cache, Func<string, LiteLlmUserClients> clientsFor)
{
    private static readonly TimeSpan KeepFor = TimeSpan.FromMinutes(30);

    public async Task<LiteLlmUserClients> ClientsForAsync(LlmCaller? caller, CancellationToken cancellationToken)
    {
        var userId = caller?.UserId ?? throw new InvalidOperationException("A call through LiteLLM must name the user whose key it uses.");
        var key = await keys.FindAsync(userId, cancellationToken)
            ?? throw new InvalidOperationException("The user has no LiteLLM key; their account was not provisioned for LiteLLM.");
        return (await cache.GetOrCreateAsync(("litellm-clients", key), entry =>
        {
            entry.SlidingExpiration = KeepFor;
            return Task.FromResult(clientsFor(key));
        }))!;
    }
}

/// <summary>The upstream chat model in the full profile: the configured model on LiteLLM, called with the caller's own key.</summary>
public sealed class LiteLlmUserKeyChatClient(LiteLlmUserKeys keys, string model) : IChatClient
{
    public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
        await (await keys.ClientsForAsync(LlmCaller.Of(options), cancellationToken)).Chat.GetResponseAsync(messages, options, cancellationToken);

    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(
        IEnumerable<ChatMessage> messages, ChatOptions? options = null, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var clients = await keys.ClientsForAsync(LlmCaller.Of(options), cancellationToken);
        await foreach (var update in clients.Chat.GetStreamingResponseAsync(messages, options, cancellationToken))
        {
            yield return update;
        }
    }

    public object? GetService(Type serviceType, object? serviceKey = null) =>
        serviceKey is null && serviceType == typeof(ChatClientMetadata) ? new ChatClientMetadata("litellm", null, model)
        : serviceKey is null && serviceType.IsInstanceOfType(this) ? this
        : null;

    public void Dispose()
    {
    }
}

/// <summary>The upstream embedding model in the full profile, called with the caller's own LiteLLM key.</summary>
public sealed class LiteLlmUserKeyEmbeddingGenerator(LiteLlmUserKeys keys) : IEmbeddingGenerator<string, Embedding<float>>
{
    public async Task<GeneratedEmbeddings<Embedding<float>>> GenerateAsync(IEnumerable<string> values, EmbeddingGenerationOptions? options = null, CancellationToken cancellationToken = default) =>
        await (await keys.ClientsForAsync(LlmCaller.Of(options), cancellationToken)).Embeddings.GenerateAsync(values, options, cancellationToken);

    public object? GetService(Type serviceType, object? serviceKey = null) =>
        serviceKey is null && serviceType.IsInstanceOfType(this) ? this : null;

    public void Dispose()
    {
    }
}
