using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;

namespace AiChat.Tests.Fakes;

/// <summary>What every contract fake does to come up: start on 127.0.0.1:0 and say where it listens.</summary>
public static class FakeHost
{
    /// <summary>Starts the app and returns its base address, without a trailing slash.</summary>
    public static async Task<string> StartOnLoopbackAsync(WebApplication app)
    {
        await app.StartAsync().ConfigureAwait(false);
        var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses
            ?? throw new InvalidOperationException("Kestrel did not report its addresses.");
        return addresses.First().TrimEnd('/');
    }
}
