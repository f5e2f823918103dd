using System.Net;

namespace AiChat.Gateway;

/// <summary>The <c>Gateway</c> section: the edge's limits, the proxies it believes, the frontends it lets in.</summary>
public sealed class GatewayOptions
{
    public const string Section = "Gateway";

    /// <summary>The largest request body the gateway accepts (413 above it); the API's own default, 1 MiB.</summary>
    public long MaxRequestBodyBytes { get; set; } = 1024 * 1024;

    /// <summary>Addresses of the proxies in front of the gateway (a load balancer) whose <c>X-Forwarded-*</c> it believes.</summary>
    public string[] KnownProxies { get; set; } = [];

    public FrontendCorsOptions Cors { get; set; } = new();

    /// <summary>The section bound and checked once at startup, so a bad value stops the gateway with a clear message.</summary>
    public static GatewayOptions Read(IConfiguration configuration)
    {
        var options = configuration.GetSection(Section).Get<GatewayOptions>() ?? new GatewayOptions();
        if (options.MaxRequestBodyBytes <= 0)
        {
            throw new InvalidOperationException($"{Section}:MaxRequestBodyBytes must be a positive number of bytes (it is {options.MaxRequestBodyBytes}).");
        }

        foreach (var proxy in options.KnownProxies)
        {
            if (!IPAddress.TryParse(proxy, out _))
            {
                throw new InvalidOperationException($"{Section}:KnownProxies holds '{proxy}', which is not an IP address.");
            }
        }

        foreach (var origin in options.Cors.AllowedOrigins)
        {
            if (!FrontendCorsOptions.IsOrigin(origin))
            {
                throw new InvalidOperationException(
                    $"{Section}:Cors:AllowedOrigins holds '{origin}', which is not an origin (scheme://host[:port], no path, no wildcard).");
            }
        }

        return options;
    }
}

/// <summary>Separate frontends (another origin than the gateway's) that may call the API from a browser.</summary>
public sealed class FrontendCorsOptions
{
    /// <summary>Exact origins, e.g. <c>https://chat.example.com</c>; none by default, so only the gateway's own web client calls it.</summary>
    public string[] AllowedOrigins { get; set; } = [];

    /// <summary>How long a browser may reuse a preflight answer.</summary>
    public TimeSpan PreflightMaxAge { get; set; } = TimeSpan.FromMinutes(10);

    public static bool IsOrigin(string value) =>
        Uri.TryCreate(value, UriKind.Absolute, out var uri)
        && uri.Scheme is "http" or "https"
        && !value.Contains('*')
        && string.Equals(uri.GetLeftPart(UriPartial.Authority), value.TrimEnd('/'), StringComparison.OrdinalIgnoreCase);
}
