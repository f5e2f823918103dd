extern alias gateway;

using gateway::AiChat.Gateway;
using Microsoft.Extensions.Configuration;

namespace AiChat.Tests.Gateway;

/// <summary>The <c>Gateway</c> section is checked at startup: a value the edge cannot honour stops it with a message naming the value.</summary>
public sealed class GatewayOptionsTests
{
    [Fact]
    public void TheDefaultsAreTheApisBodyLimitNoProxyAndNoFrontend()
    {
        var options = GatewayOptions.Read(Configuration());

        Assert.Equal(1_048_576, options.MaxRequestBodyBytes);
        Assert.Empty(options.KnownProxies);
        Assert.Empty(options.Cors.AllowedOrigins);
    }

    [Theory]
    [InlineData("Gateway:Cors:AllowedOrigins:0", "*")]
    [InlineData("Gateway:Cors:AllowedOrigins:0", "https://*.example.com")]
    [InlineData("Gateway:Cors:AllowedOrigins:0", "https://frontend.example/app")]
    [InlineData("Gateway:Cors:AllowedOrigins:0", "frontend.example")]
    [InlineData("Gateway:Cors:AllowedOrigins:0", "ftp://frontend.example")]
    [InlineData("Gateway:KnownProxies:0", "balancer.internal")]
    [InlineData("Gateway:MaxRequestBodyBytes", "0")]
    public void AValueTheEdgeCannotHonourStopsItWithTheValueNamed(string key, string value)
    {
        var error = Assert.Throws<InvalidOperationException>(() => GatewayOptions.Read(Configuration((key, value))));

        Assert.Contains(value, error.Message);
    }

    [Theory]
    [InlineData("https://frontend.example")]
    [InlineData("https://frontend.example/")]
    [InlineData("http://localhost:5173")]
    public void AnOriginIsAcceptedAsWritten(string origin)
    {
        var options = GatewayOptions.Read(Configuration(("Gateway:Cors:AllowedOrigins:0", origin)));

        Assert.Equal([origin], options.Cors.AllowedOrigins);
    }

    private static IConfiguration Configuration(params (string Key, string Value)[] settings) =>
        new ConfigurationBuilder().AddInMemoryCollection(settings.Select(s => new KeyValuePair<string, string?>(s.Key, s.Value))).Build();
}
