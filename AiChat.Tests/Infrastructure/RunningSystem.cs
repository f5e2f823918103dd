using System.Net;
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
        if (gatewayFactory.Certificate is { } certificate)
        {
            gatewayFactory.UseKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, 0, listen => listen.UseHttps(certificate)));
        }

        var gatewayAddress = StartOnLoopback(gatewayFactory, listening: gatewayFactory.Certificate is not null);
        return new RunningSystem(api, gatewayFactory, apiAddress, gatewayAddress);
    }

    /// <summary>A plain client of the gateway, as a browser or frontend would use it.</summary>
    public HttpClient GatewayClient() => new() { BaseAddress = GatewayAddress, Timeout = TimeSpan.FromSeconds(60) };

    public async ValueTask DisposeAsync()
    {
        await Gateway.DisposeAsync();
        await Api.DisposeAsync();
    }

    private static Uri StartOnLoopback<T>(WebApplicationFactory<T> factory, bool listening = false) where T : class
    {
        if (!listening)
        {
            factory.UseKestrel(0);
        }

        factory.StartServer();
        var address = factory.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return new Uri(address.Replace("[::]", "127.0.0.1").Replace("0.0.0.0", "127.0.0.1"));
    }
}
