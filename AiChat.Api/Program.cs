using AiChat.Api.Data;
using AiChat.Api.Infrastructure;

var builder = WebApplication.CreateBuilder(args);

builder.AddServiceDefaults();
builder.AddApiDefaults();
builder.AddStore();

var app = builder.Build();

app.UseApiDefaults();
app.MapDefaultEndpoints();

app.Run();

public partial class Program;
