using System.Globalization;
using AiChat.Api.Infrastructure;
using Microsoft.AspNetCore.Http.HttpResults;

namespace AiChat.Api.Agents;

public static class AgentApi
{
    /// <summary>How long a reset waits for a running turn to finish before answering 409 <c>agent_busy</c>.</summary>
    private static readonly TimeSpan ResetWait = TimeSpan.FromSeconds(5);

    public static IEndpointRouteBuilder MapAgentApi(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/api/v1/agent").WithTags("Agent").RequireAuthorization();

        group.MapGet("/status", GetStatusAsync);
        group.MapGet("/memory", GetMemoryAsync);
        group.MapPost("/memory", UpdateMemoryAsync);
        group.MapGet("/memory/changes", ListChangesAsync);
        group.MapPost("/memory/changes/{id}/revert", RevertChangeAsync);
        group.MapGet("/memory/archival", ListArchivalAsync);
        group.MapPost("/memory/archival", InsertArchivalAsync);
        group.MapDelete("/memory/archival/{id}", DeleteArchivalAsync);
        group.MapPost("/reset", ResetAsync);

        return app;
    }

    public static async Task<Ok<AgentStatusDto>> GetStatusAsync(HttpContext context, AgentService agents, CancellationToken cancellationToken)
    {
        var (agent, runtime) = await ResolveAsync(context, agents);
        var status = await agents.StatusAsync(agent, cancellationToken);
        var blocks = await runtime.GetBlocksAsync(agent, cancellationToken);
        var passages = await runtime.CountArchivalAsync(agent, cancellationToken);
        var agentContext = await runtime.GetContextAsync(agent, cancellationToken);
        return TypedResults.Ok(new AgentStatusDto(
            agent.Id, agent.Runtime, status, agent.Model, agent.CreatedAt, agent.LastActiveAt, agentContext.MessageCount,
            new MemoryCounts(blocks.Count, passages), new ContextDto(agentContext.Tokens, agentContext.Window)));
    }

    public static async Task<Ok<MemoryDto>> GetMemoryAsync(HttpContext context, AgentService agents, CancellationToken cancellationToken)
    {
        var (agent, runtime) = await ResolveAsync(context, agents);
        return TypedResults.Ok(new MemoryDto(
            (await runtime.GetBlocksAsync(agent, cancellationToken)).Select(BlockDto.From).ToList(),
            await runtime.CountArchivalAsync(agent, cancellationToken)));
    }

    public static async Task<Results<Ok<MemoryDto>, ProblemHttpResult>> UpdateMemoryAsync(
        UpdateMemoryRequest request, HttpContext context, AgentService agents, CancellationToken cancellationToken)
    {
        var errors = new FieldErrors();
        if (request.Blocks is not { Count: > 0 })
        {
            errors.Add("blocks", "Give at least one block to update.");
        }
        else
        {
            foreach (var (block, index) in request.Blocks.Select((b, i) => (b, i)))
            {
                if (string.IsNullOrWhiteSpace(block.Label))
                {
                    errors.Add($"blocks[{index}].label", "The label is required.");
                }

                if (block.Value is null)
                {
                    errors.Add($"blocks[{index}].value", "The value is required (it may be empty).");
                }
            }

            if (request.Blocks.GroupBy(b => b.Label).Any(g => g.Count() > 1))
            {
                errors.Add("blocks", "Each label may appear once.");
            }
        }

        if (errors.Any)
        {
            return errors.ToProblem();
        }

        var (agent, runtime) = await ResolveAsync(context, agents);
        return await UpdateBlocksAsync(agent, runtime, request.Blocks!.Select(b => new BlockUpdate(b.Label!, b.Value!, MemoryChangeSource.User)).ToList(), cancellationToken);
    }

    /// <summary>The change log, newest first, one page at a time (<c>next_cursor</c> goes into <c>before</c>).</summary>
    public static async Task<Results<Ok<MemoryChangePage>, ProblemHttpResult>> ListChangesAsync(
        HttpContext context, AgentService agents, MemoryStore memory, string? label, int? limit, string? before, CancellationToken cancellationToken)
    {
        var errors = new FieldErrors();
        var size = limit ?? 50;
        if (size is < 1 or > 200)
        {
            errors.Add("limit", "The limit must be between 1 and 200.");
        }

        if (label is not null && (string.IsNullOrWhiteSpace(label) || label.Length > 100))
        {
            errors.Add("label", "The label, when given, has 1 to 100 characters.");
        }

        long? beforeSeq = null;
        if (before is not null)
        {
            if (DecodeChangeCursor(before) is { } seq)
            {
                beforeSeq = seq;
            }
            else
            {
                errors.Add("before", "The cursor is not one this API returned.");
            }
        }

        if (errors.Any)
        {
            return errors.ToProblem();
        }

        var agent = await agents.GetAsync(context.User.UserId(), cancellationToken);
        var page = await memory.ListChangesAsync(agent.Id, label, beforeSeq, size + 1, cancellationToken);
        var next = page.Count > size ? Cursor.Encode($"c:{page[size - 1].Seq.ToString(CultureInfo.InvariantCulture)}") : null;
        return TypedResults.Ok(new MemoryChangePage(page.Take(size).Select(MemoryChangeDto.From).ToList(), next));
    }

    /// <summary>Sets the block back to its value before the change, within the block's limit; recorded as a revert of that change.</summary>
    public static async Task<Results<Ok<MemoryDto>, ProblemHttpResult>> RevertChangeAsync(
        string id, HttpContext context, AgentService agents, MemoryStore memory, CancellationToken cancellationToken)
    {
        var (agent, runtime) = await ResolveAsync(context, agents);
        if (!Guid.TryParse(id, out var changeId) || await memory.FindChangeAsync(agent.Id, changeId, cancellationToken) is not { } change)
        {
            return Problems.Of(StatusCodes.Status404NotFound, ProblemCodes.NotFound, "No such memory change.");
        }

        return await UpdateBlocksAsync(agent, runtime, [new BlockUpdate(change.Label, change.OldValue, MemoryChangeSource.Revert(change.Id))], cancellationToken);
    }

    private static async Task<Results<Ok<MemoryDto>, ProblemHttpResult>> UpdateBlocksAsync(
        AgentRecord agent, IAgentRuntime runtime, IReadOnlyList<BlockUpdate> updates, CancellationToken cancellationToken)
    {
        try
        {
            var blocks = await runtime.UpdateBlocksAsync(agent, updates, cancellationToken);
            return TypedResults.Ok(new MemoryDto(blocks.Select(BlockDto.From).ToList(), await runtime.CountArchivalAsync(agent, cancellationToken)));
        }
        catch (MemoryLimitExceededException limit)
        {
            return Problems.Of(StatusCodes.Status422UnprocessableEntity, AgentProblems.MemoryLimitExceeded, limit.Message,
                new Dictionary<string, object?> { ["label"] = limit.Label, ["limit"] = limit.Limit, ["requested"] = limit.Requested });
        }
        catch (UnknownBlockException unknown)
        {
            return Problems.Of(StatusCodes.Status422UnprocessableEntity, AgentProblems.UnknownBlock, unknown.Message,
                new Dictionary<string, object?> { ["label"] = unknown.Label });
        }
    }

    public static async Task<Results<Ok<ArchivalPage>, ProblemHttpResult>> ListArchivalAsync(
        HttpContext context, AgentService agents, string? query, int? limit, CancellationToken cancellationToken)
    {
        var size = limit ?? 50;
        if (size is < 1 or > 200)
        {
            return new FieldErrors().Add("limit", "The limit must be between 1 and 200.").ToProblem();
        }

        if (query is { Length: > 500 })
        {
            return new FieldErrors().Add("query", "The query must have at most 500 characters.").ToProblem();
        }

        var (agent, runtime) = await ResolveAsync(context, agents);
        var passages = await runtime.ListArchivalAsync(agent, string.IsNullOrWhiteSpace(query) ? null : query, size, cancellationToken);
        return TypedResults.Ok(new ArchivalPage(passages.Select(PassageDto.From).ToList(), await runtime.CountArchivalAsync(agent, cancellationToken)));
    }

    public static async Task<Results<Created<PassageDto>, ProblemHttpResult>> InsertArchivalAsync(
        InsertPassageRequest request, HttpContext context, AgentService agents, CancellationToken cancellationToken)
    {
        if (string.IsNullOrWhiteSpace(request.Content) || request.Content.Length > 20_000)
        {
            return new FieldErrors().Add("content", "The content is required and has at most 20000 characters.").ToProblem();
        }

        var (agent, runtime) = await ResolveAsync(context, agents);
        var passage = await runtime.InsertArchivalAsync(agent, request.Content.Trim(), cancellationToken);
        return TypedResults.Created($"/api/v1/agent/memory/archival/{passage.Id}", PassageDto.From(passage));
    }

    public static async Task<Results<NoContent, ProblemHttpResult>> DeleteArchivalAsync(
        string id, HttpContext context, AgentService agents, CancellationToken cancellationToken)
    {
        var (agent, runtime) = await ResolveAsync(context, agents);
        return await runtime.DeleteArchivalAsync(agent, id, cancellationToken)
            ? TypedResults.NoContent()
            : Problems.Of(StatusCodes.Status404NotFound, ProblemCodes.NotFound, "No such passage.");
    }

    public static async Task<Results<Ok<ResetResponse>, ProblemHttpResult>> ResetAsync(
        ResetRequest request, HttpContext context, AgentService agents, Users.UserStore users, CancellationToken cancellationToken)
    {
        if (!Enum.TryParse<ResetScope>(request.Scope, ignoreCase: true, out var scope) || int.TryParse(request.Scope, out _))
        {
            return new FieldErrors().Add("scope", "The scope is one of conversation, memory, all.").ToProblem();
        }

        var (agent, runtime) = await ResolveAsync(context, agents);
        try
        {
            // The defaults are the ones a new agent would get now, with the name from the profile.
            var name = (await users.FindAsync(agent.UserId, cancellationToken))?.Name;
            await agents.WithDefaultConversationHeldAsync(agent, ResetWait, leased => runtime.ResetAsync(leased, scope, agents.Defaults(name), cancellationToken), cancellationToken);
        }
        catch (AgentBusyException)
        {
            return Problems.Of(StatusCodes.Status409Conflict, AgentProblems.AgentBusy, "The agent is answering a message; reset it when the turn has ended.");
        }

        return TypedResults.Ok(new ResetResponse(scope.ToString().ToLowerInvariant()));
    }

    private static long? DecodeChangeCursor(string cursor) =>
        Cursor.TryDecode(cursor, out var position) && position.StartsWith("c:", StringComparison.Ordinal)
            && long.TryParse(position.AsSpan(2), NumberStyles.None, CultureInfo.InvariantCulture, out var seq)
            ? seq
            : null;

    // A missing agent (404) or an unreachable runtime (503) surfaces through the exception handler as a problem.
    private static async Task<(AgentRecord Agent, IAgentRuntime Runtime)> ResolveAsync(HttpContext context, AgentService agents)
    {
        var agent = await agents.GetAsync(context.User.UserId(), context.RequestAborted);
        return (agent, agents.RuntimeFor(agent));
    }
}

public sealed record MemoryCounts(int Blocks, int ArchivalPassages);

public sealed record ContextDto(int Tokens, int Window);

public sealed record AgentStatusDto(
    Guid AgentId, string Runtime, string Status, string? Model, DateTimeOffset CreatedAt, DateTimeOffset? LastActiveAt,
    int MessageCount, MemoryCounts Memory, ContextDto Context);

public sealed record BlockDto(string Label, string Value, int Limit, string? Description, DateTimeOffset UpdatedAt)
{
    public static BlockDto From(MemoryBlock block) => new(block.Label, block.Value, block.Limit, block.Description, block.UpdatedAt);
}

public sealed record MemoryDto(IReadOnlyList<BlockDto> Blocks, int ArchivalPassages);

public sealed record BlockUpdateRequest(string? Label, string? Value);

public sealed record UpdateMemoryRequest(IReadOnlyList<BlockUpdateRequest>? Blocks);

/// <summary>An archival passage; <paramref name="TurnId"/> and <paramref name="ConversationId"/> name the turn whose tool saved it (null when saved through the API).</summary>
public sealed record PassageDto(string Id, string Content, DateTimeOffset CreatedAt, Guid? TurnId, Guid? ConversationId)
{
    public static PassageDto From(ArchivalPassage passage) => new(passage.Id, passage.Content, passage.CreatedAt, passage.TurnId, passage.ConversationId);
}

/// <summary>Who made a change; the ids are null where they do not apply (conversation_id until conversations exist).</summary>
public sealed record MemoryChangeSourceDto(string Kind, Guid? ConversationId, Guid? TurnId, Guid? KeyId, Guid? RevertsChangeId);

public sealed record MemoryChangeDto(Guid Id, string Label, string OldValue, string NewValue, MemoryChangeSourceDto Source, DateTimeOffset CreatedAt)
{
    public static MemoryChangeDto From(MemoryChange change) => new(
        change.Id, change.Label, change.OldValue, change.NewValue,
        new MemoryChangeSourceDto(change.Source.Kind, change.Source.ConversationId, change.Source.TurnId, change.Source.KeyId, change.Source.RevertsChangeId),
        change.CreatedAt);
}

public sealed record MemoryChangePage(IReadOnlyList<MemoryChangeDto> Changes, string? NextCursor);

public sealed record ArchivalPage(IReadOnlyList<PassageDto> Passages, int Count);

public sealed record InsertPassageRequest(string? Content);

public sealed record ResetRequest(string? Scope);

public sealed record ResetResponse(string Scope);
