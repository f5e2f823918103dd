namespace AiChat.Gateway;

/// <summary>
/// Security headers on every gateway response, the web client's files and the API's proxied answers alike
/// (NetEscapades.AspNetCore.SecurityHeaders sets them as each response starts, so YARP's copied headers cannot drop them).
/// </summary>
public static class EdgeHeaders
{
    /// <summary>One year, the usual HSTS lifetime.</summary>
    public const int HstsMaxAgeSeconds = 60 * 60 * 24 * 365;

    /// <summary>HSTS is never sent for these: a browser would otherwise pin a developer's localhost to https.</summary>
    public static readonly string[] HostsWithoutHsts = ["localhost", "127.0.0.1", "[::1]"];

    public static HeaderPolicyCollection Policy() => new HeaderPolicyCollection()
        // The web client is same-origin ES modules and CSS files: no inline script or style, no plugins, no framing.
        .AddContentSecurityPolicy(csp =>
        {
            csp.AddDefaultSrc().Self();
            csp.AddScriptSrc().Self();
            csp.AddStyleSrc().Self();
            csp.AddImgSrc().Self().Data();
            csp.AddConnectSrc().Self();
            csp.AddObjectSrc().None();
            csp.AddBaseUri().None();
            csp.AddFormAction().Self();
            csp.AddFrameAncestors().None();
        })
        .AddContentTypeOptionsNoSniff()
        // Chat pages hold conversation ids and answers hold links: no Referer, not even the origin, leaves for another site.
        .AddReferrerPolicyNoReferrer()
        .AddFrameOptionsDeny()
        // Only over https (the policy skips http), without includeSubDomains: the gateway cannot vouch for its sibling hosts.
        .AddStrictTransportSecurity(HstsMaxAgeSeconds, includeSubdomains: false, preload: false, HostsWithoutHsts);
}
