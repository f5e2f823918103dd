using AiChat.Api.Agents.Letta;
using AiChat.Api.Users;

namespace AiChat.Api.Agents;

public static class AgentsExtensions
{
    /// <summary>Personal agents: their row and memory, the built-in and Letta runtimes, the agent service, the title writer, and the agent's part of an account. Needs AddLlm and a <see cref="ITranscript"/>.</summary>
    public static IHostApplicationBuilder AddAgents(this IHostApplicationBuilder builder)
    {
        builder.Services.Configure<AgentOptions>(builder.Configuration.GetSection(AgentOptions.Section));
        builder.Services.AddSingleton<AgentStore>();
        builder.Services.AddSingleton<MemoryStore>();
        builder.Services.AddSingleton<ContextAssembler>();
        builder.Services.AddKeyedSingleton<IAgentRuntime, BuiltInRuntime>(AgentRuntimes.BuiltIn);
        builder.AddLettaRuntime();
        builder.Services.AddSingleton<AgentService>();
        builder.Services.AddSingleton<AgentMemory>();
        builder.Services.AddSingleton<TitleWriter>();
        builder.Services.AddSingleton<AgentAccount>();
        builder.Services.AddSingleton<IAccountComponent>(sp => sp.GetRequiredService<AgentAccount>());
        builder.Services.AddSingleton<IAgentSummaries>(sp => sp.GetRequiredService<AgentAccount>());
        builder.Services.AddSingleton<Infrastructure.IExceptionProblems, AgentExceptionProblems>();
        return builder;
    }
}
