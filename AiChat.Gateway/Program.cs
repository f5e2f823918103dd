using AiChat.Gateway;

var builder = WebApplication.CreateBuilder(args);

builder.AddServiceDefaults();
builder.AddGateway();

var app = builder.Build();

app.MapAliveEndpoint();
app.MapGateway();

app.Run();

public partial class Program;
