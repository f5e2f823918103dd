using System.Net;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace AiChat.Tests.Infrastructure;

/// <summary>The embedded system as users reach it: the API and the gateway on real loopback sockets, talking real HTTP.</summary>
public sealed class RunningSystem : IAsyncDisposable
{
    private RunningSystem(ApiFactory api, GatewayFactory gateway, Uri apiAddress, Uri gatewayAddress)
    {
        Api = api;
        Gateway = gateway;
        ApiAddress = apiAddress;
        GatewayAddress = gatewayAddress;
    }

    public ApiFactory Api { get; }

    public GatewayFactory Gateway { get; }

    public Uri ApiAddress { get; }

    public Uri GatewayAddress { get; }

    /// <summary>Starts the API, then a gateway in front of it (<paramref name="gateway"/> may give it settings or https).</summary>
    public static RunningSystem Start(ApiFactory api, Action<GatewayFactory>? gateway = null)
    {
        var apiAddress = StartOnLoopback(api);
        var gatewayFactory = new GatewayFactory(apiAddress);
        gateway?.Invoke(gatewayFactory);
        var gatewayAddress = StartOnLoopback(gatewayFactory, gatewayFactory.Certificate);
        return new RunningSystem(api, gatewayFactory, apiAddress, gatewayAddress);
    }

    /// <summary>A plain client of the gateway, as a browser or frontend would use it.</summary>
    public HttpClient GatewayClient() => new() { BaseAddress = GatewayAddress, Timeout = TimeSpan.FromSeconds(60) };

    public async ValueTask DisposeAsync()
    {
        await Gateway.DisposeAsync();
        await Api.DisposeAsync();
    }

    // A listen option, not UseKestrel(port): the factory sets a port on the server's addresses while the app's own thread
    // may already be starting the server, which then refuses the change.
    private static Uri StartOnLoopback<T>(WebApplicationFactory<T> factory, X509Certificate2? certificate = null) where T : class
    {
        factory.UseKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, 0, listen =>
        {
            if (certificate is not null)
            {
                listen.UseHttps(certificate);
            }
        }));
        factory.StartServer();
        var address = factory.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return new Uri(address.Replace("[::]", "127.0.0.1").Replace("0.0.0.0", "127.0.0.1"));
    }
}
