using System.Net;
using Microsoft.AspNetCore.HttpOverrides;
using Yarp.ReverseProxy.Transforms;
using Yarp.ReverseProxy.Transforms.Builder;

namespace AiChat.Gateway;

/// <summary>
/// The client address the API is told: the address of the connection the gateway accepted, or, when that connection comes
/// from a proxy named in <c>Gateway:KnownProxies</c>, the one address that proxy reports. Whatever a client writes in
/// <c>X-Forwarded-For</c>, <c>Forwarded</c> or <c>X-Real-IP</c> never reaches the API, which keys its auth limits on it.
/// </summary>
public static class ClientAddress
{
    /// <summary>Headers that name a client address or scheme but that no proxy of ours sets: dropped before forwarding.</summary>
    private static readonly string[] Dropped = ["X-Real-IP", "X-Original-For", "X-Original-Proto", "X-Original-Host"];

    public static IServiceCollection AddClientAddress(this IServiceCollection services, GatewayOptions options) =>
        services.Configure<ForwardedHeadersOptions>(forwarded =>
        {
            // Loopback is believed by default; a client on this machine is no proxy of ours.
            forwarded.KnownIPNetworks.Clear();
            forwarded.KnownProxies.Clear();
            foreach (var proxy in options.KnownProxies)
            {
                forwarded.KnownProxies.Add(IPAddress.Parse(proxy));
            }

            // The middleware believes everyone when both lists are empty, so with no known proxy it reads nothing at all.
            forwarded.ForwardedHeaders = forwarded.KnownProxies.Count == 0
                ? ForwardedHeaders.None
                : ForwardedHeaders.XForwardedFor | ForwardedHeaders.XForwardedProto | ForwardedHeaders.XForwardedHost;

            // The proxy in front appends the address it saw: that last entry is the only one a known proxy vouches for.
            forwarded.ForwardLimit = 1;
        });

    /// <summary>
    /// On every route: <c>X-Forwarded-For/Proto/Host/Prefix</c> replaced by what the gateway settled (YARP's Set action,
    /// which also removes <c>Forwarded</c>), and the other address headers dropped.
    /// </summary>
    public static void ForwardOnlyWhatTheGatewaySaw(TransformBuilderContext context)
    {
        context.AddXForwarded(ForwardedTransformActions.Set);
        foreach (var header in Dropped)
        {
            context.AddRequestHeaderRemove(header);
        }
    }
}
