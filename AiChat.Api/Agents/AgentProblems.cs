using AiChat.Api.Infrastructure;

namespace AiChat.Api.Agents;

/// <summary>The problem codes of the agent feature.</summary>
public static class AgentProblems
{
    public const string AgentBusy = "agent_busy";
    public const string MemoryLimitExceeded = "memory_limit_exceeded";
    public const string UnknownBlock = "unknown_block";
    public const string AgentUnavailable = "agent_unavailable";
}

/// <summary>The agent feature's exceptions as problems: no agent is 404, an unreachable runtime 503.</summary>
public sealed class AgentExceptionProblems : IExceptionProblems
{
    public ProblemMapping? Map(Exception exception) => exception switch
    {
        AgentNotFoundException => new(StatusCodes.Status404NotFound, ProblemCodes.NotFound, "The account has no agent."),
        AgentRuntimeUnavailableException when UpstreamUnavailableException.In(exception) is not null =>
            new(StatusCodes.Status503ServiceUnavailable, ProblemCodes.UpstreamUnavailable, "The agent runtime is failing; AiChat stopped calling it for a while. Try again shortly."),
        AgentRuntimeUnavailableException => new(StatusCodes.Status503ServiceUnavailable, AgentProblems.AgentUnavailable, "The agent runtime is not reachable. Try again."),
        _ => null,
    };
}
