using System.Runtime.CompilerServices;
using AiChat.Api.Llm;
using Microsoft.Extensions.Options;

namespace AiChat.Api.Agents;

/// <summary>Another turn holds the agent and did not let go within the wait.</summary>
public sealed class AgentBusyException() : Exception("The agent is answering another message.");

/// <summary>The user has no agent (yet).</summary>
public sealed class AgentNotFoundException() : Exception("The user has no agent.");

/// <summary>
/// The one way to an agent: finds the user's agent, picks its runtime, runs turns (serialised per conversation by the
/// store: one running turn per conversation, and none while a reset holds it) and holds the default conversation
/// for a reset. Turns in different conversations of one agent may run at once: its memory writes are atomic.
/// </summary>
public sealed class AgentService(
    AgentStore store,
    IServiceProvider services,
    IOptions<AgentOptions> agentOptions,
    IOptions<LlmOptions> llmOptions,
    TimeProvider time)
{
    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(50);

    public string NewAgentRuntime => agentOptions.Value.UsesLetta ? AgentRuntimes.Letta : AgentRuntimes.BuiltIn;

    public AgentDefaults Defaults(string? userName = null)
    {
        var now = time.GetUtcNow();
        var options = agentOptions.Value;
        return new AgentDefaults(
            [
                new MemoryBlock("persona", options.Persona, options.PersonaLimit, "Who I am and how I behave.", now),
                new MemoryBlock("human", string.IsNullOrWhiteSpace(userName) ? "" : $"Name: {userName}", options.HumanLimit, "What I know about the user.", now),
            ],
            llmOptions.Value.EffectiveModel);
    }

    public Task<AgentRecord?> FindAsync(Guid userId, CancellationToken cancellationToken) => store.FindByUserAsync(userId, cancellationToken);

    public async Task<AgentRecord> GetAsync(Guid userId, CancellationToken cancellationToken) =>
        await store.FindByUserAsync(userId, cancellationToken) ?? throw new AgentNotFoundException();

    // Resolved per use by the agent's runtime name: the Letta runtime holds a typed HttpClient, which must not live as long as this singleton.
    public IAgentRuntime RuntimeFor(AgentRecord agent) =>
        services.GetKeyedService<IAgentRuntime>(agent.Runtime)
            ?? throw new AgentRuntimeUnavailableException($"The '{agent.Runtime}' runtime is not configured on this instance.");

    /// <summary>
    /// Seconds until the open breaker of an upstream the user's agent needs (the LLM endpoint; Letta too for a Letta
    /// agent) lets a call through; null when every one would. Reads the agent only while some breaker is open.
    /// </summary>
    public async Task<int?> UpstreamRetryAfterAsync(Guid userId, CancellationToken cancellationToken)
    {
        var llm = services.GetKeyedService<UpstreamCircuit>(LlmExtensions.HttpClientName)?.RetryAfterSeconds;
        var letta = services.GetKeyedService<UpstreamCircuit>(Letta.LettaClient.Circuit)?.RetryAfterSeconds;
        if (llm is null && letta is null)
        {
            return null;
        }

        var usesLetta = (await store.FindByUserAsync(userId, cancellationToken))?.Runtime == AgentRuntimes.Letta;
        return usesLetta ? Math.Max(llm ?? 0, letta ?? 0) : llm;
    }

    /// <summary>Creates the user's agent, or completes one a failed attempt left half made; idempotent.</summary>
    public async Task<AgentRecord> CreateAsync(Guid userId, string? userName, CancellationToken cancellationToken)
    {
        var agent = await store.FindByUserAsync(userId, cancellationToken);
        var defaults = Defaults(userName);
        if (agent is null)
        {
            agent = new AgentRecord(Guid.NewGuid(), userId, NewAgentRuntime, null, "ready", defaults.Model, time.GetUtcNow(), null);
            await store.InsertAsync(agent, defaults.Blocks, cancellationToken);
        }

        if (agent.Runtime == AgentRuntimes.Letta && agent.ExternalId is null)
        {
            var externalId = await RuntimeFor(agent).CreateAsync(agent, defaults, cancellationToken);
            await store.SetExternalIdAsync(agent.Id, externalId, cancellationToken);
            agent = agent with { ExternalId = externalId };
        }

        return agent;
    }

    public async Task DeleteAsync(Guid userId, CancellationToken cancellationToken)
    {
        var agent = await store.FindByUserAsync(userId, cancellationToken);
        if (agent is null)
        {
            return;
        }

        if (agent.ExternalId is not null || agent.Runtime == AgentRuntimes.BuiltIn)
        {
            await RuntimeFor(agent).DeleteAsync(agent, cancellationToken);
        }

        await store.DeleteByUserAsync(userId, cancellationToken);
    }

    /// <summary>What status shows for the agent: <c>busy</c> while a turn runs in any of its conversations, else <c>ready</c>.</summary>
    public async Task<string> StatusAsync(AgentRecord agent, CancellationToken cancellationToken) =>
        await IsBusyAsync(agent, cancellationToken) ? "busy" : "ready";

    /// <summary>Whether a turn (or a reset) holds one of the agent's conversations right now.</summary>
    public async Task<bool> IsBusyAsync(AgentRecord agent, CancellationToken cancellationToken) =>
        await store.CountHeldAsync(agent.UserId, time.GetUtcNow(), cancellationToken) > 0;

    /// <summary>Makes the runtime's side of a new conversation (a Letta conversation); null when the runtime needs none.</summary>
    public async Task<string?> CreateConversationAsync(Guid userId, string? model, CancellationToken cancellationToken)
    {
        var agent = await GetAsync(userId, cancellationToken);
        return await RuntimeFor(agent).CreateConversationAsync(agent, model, cancellationToken);
    }

    /// <summary>Deletes the runtime's side of a conversation, if it has one.</summary>
    public async Task DeleteConversationAsync(Guid userId, string? externalId, CancellationToken cancellationToken)
    {
        if (externalId is not null && await store.FindByUserAsync(userId, cancellationToken) is { } agent)
        {
            await RuntimeFor(agent).DeleteConversationAsync(agent, externalId, cancellationToken);
        }
    }

    /// <summary>
    /// Runs a turn of the user's agent in the input's conversation. The turn is stored as running before it gets here,
    /// and that holds the conversation (one running turn per conversation, from the transaction that stores it to the one
    /// that ends it), so this only reads what the turn starts from: the agent, its state in the conversation and its
    /// blocks, in one round trip.
    /// </summary>
    public async IAsyncEnumerable<AgentEvent> RunTurnAsync(TurnInput input, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var agent = await store.ReadForTurnAsync(input.UserId, input.ConversationId, cancellationToken) ?? throw new AgentNotFoundException();
        await foreach (var @event in RuntimeFor(agent).RunTurnAsync(agent, input, cancellationToken))
        {
            yield return @event;
        }
    }

    /// <summary>
    /// Runs an operation that must not overlap a turn of the default conversation (a reset), holding that conversation:
    /// waits up to <paramref name="wait"/> for a running turn there to end (<see cref="AgentBusyException"/> after that).
    /// The operation gets the agent as read with the hold (its <see cref="AgentRecord.Conversation"/> is the default one).
    /// </summary>
    public async Task WithDefaultConversationHeldAsync(AgentRecord agent, TimeSpan wait, Func<AgentRecord, Task> operation, CancellationToken cancellationToken)
    {
        var holder = Guid.NewGuid();
        var duration = agentOptions.Value.LeaseDuration;
        var deadline = time.GetUtcNow() + wait;
        for (var attempt = 0; ; attempt++)
        {
            var now = time.GetUtcNow();
            if (await store.TryHoldDefaultAsync(agent.UserId, holder, now, now + duration, cancellationToken) is { } held)
            {
                await using var hold = new Hold(store, held.Conversation!.Id, holder, duration, time);
                await operation(held);
                return;
            }

            // Not taken: a turn or another reset holds the conversation, or there is no agent or conversation to hold.
            if (attempt == 0 && (await store.FindByUserAsync(agent.UserId, cancellationToken) is null
                || await store.GetConversationAsync(agent.UserId, null, cancellationToken) is null))
            {
                throw new AgentNotFoundException();
            }

            if (now >= deadline)
            {
                throw new AgentBusyException();
            }

            await Task.Delay(PollInterval, time, cancellationToken);
        }
    }

    /// <summary>Holds a conversation for a reset: renews its lease in the background until disposed, then releases it.</summary>
    private sealed class Hold : IAsyncDisposable
    {
        private readonly AgentStore _store;
        private readonly Guid _conversationId;
        private readonly Guid _holder;
        private readonly TimeProvider _time;
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _renewal;

        public Hold(AgentStore store, Guid conversationId, Guid holder, TimeSpan duration, TimeProvider time)
        {
            _store = store;
            _conversationId = conversationId;
            _holder = holder;
            _time = time;
            _renewal = RenewAsync(duration);
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            await _renewal;
            await _store.ReleaseHoldAsync(_conversationId, _holder);
            _stop.Dispose();
        }

        private async Task RenewAsync(TimeSpan duration)
        {
            try
            {
                while (!_stop.IsCancellationRequested)
                {
                    await Task.Delay(duration / 3, _time, _stop.Token);
                    await _store.RenewHoldAsync(_conversationId, _holder, _time.GetUtcNow() + duration, _stop.Token);
                }
            }
            catch (OperationCanceledException)
            {
            }
        }
    }
}
