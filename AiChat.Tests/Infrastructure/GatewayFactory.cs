extern alias gateway;

using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.Logging;

namespace AiChat.Tests.Infrastructure;

/// <summary>The real gateway, its API destination resolved by service discovery as under the AppHost.</summary>
public sealed class GatewayFactory(Uri apiAddress) : WebApplicationFactory<gateway::Program>
{
    private readonly Dictionary<string, string?> _settings = new();

    /// <summary>When set, the gateway listens on https with this certificate instead of http.</summary>
    public X509Certificate2? Certificate { get; private set; }

    public GatewayFactory WithSetting(string key, string? value)
    {
        _settings[key] = value;
        return this;
    }

    public GatewayFactory WithHttps(X509Certificate2 certificate)
    {
        Certificate = certificate;
        return this;
    }

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseEnvironment("Testing");
        builder.UseSetting($"Services:{ResourceNames.Api}:http:0", apiAddress.ToString());
        builder.ConfigureLogging(logging => logging.AddProvider(new LogSink.Provider()).SetMinimumLevel(LogLevel.Trace));
        foreach (var (key, value) in _settings)
        {
            builder.UseSetting(key, value);
        }
    }
}
