using AiChat.Api.Agents;
using AiChat.Api.Auth;
using AiChat.Api.Billing;
using AiChat.Api.Chat;
using AiChat.Api.Clients;
using AiChat.Api.Data;
using AiChat.Api.Infrastructure;
using AiChat.Api.Llm;
using AiChat.Api.Users;

var builder = WebApplication.CreateBuilder(args);

builder.AddServiceDefaults();
builder.AddApiDefaults();
builder.AddStore();
builder.AddAuth();
builder.AddUsers();
builder.AddBilling();
builder.AddLlm();
builder.AddAgents();
builder.AddChat();
builder.AddClients();

var app = builder.Build();
if (AdminCommand.IsCommand(args))
{
    return await AdminCommand.RunAsync(app, args);
}


app.UseApiDefaults();
app.MapDefaultEndpoints();
app.MapJsonWebKeys();
app.MapAuthApi();
app.MapUserApi();
app.MapAdminApi();
app.MapApiKeyApi();
app.MapAgentApi();
app.MapChatApi();
app.MapConversationApi();
app.MapSearchApi();
app.MapBudgetApi();
app.MapModelsApi();
app.MapLlmProxy();
app.MapOpenAiApi();
app.MapMcpServer();

app.Run();
return 0;

public partial class Program;
