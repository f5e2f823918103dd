extern alias gateway;

using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;

namespace AiChat.Tests.Infrastructure;

/// <summary>The real gateway, its API destination resolved by service discovery as under the AppHost.</summary>
public sealed class GatewayFactory(Uri apiAddress) : WebApplicationFactory<gateway::Program>
{
    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseEnvironment("Testing");
        builder.UseSetting($"Services:{ResourceNames.Api}:http:0", apiAddress.ToString());
    }
}
