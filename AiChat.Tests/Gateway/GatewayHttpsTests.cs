using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using AiChat.Tests.Infrastructure;

namespace AiChat.Tests.Gateway;

/// <summary>
/// The gateway served over https (a self-signed certificate made for the test, trusted by this client only): HSTS is sent
/// there, for a real host name, and never for localhost, so a developer's browser never pins localhost to https.
/// </summary>
[Trait("Category", "EndToEnd")]
public sealed class GatewayHttpsTests : IAsyncLifetime
{
    private readonly X509Certificate2 _certificate = SelfSigned();
    private RunningSystem _system = null!;

    public ValueTask InitializeAsync()
    {
        _system = RunningSystem.Start(new ApiFactory(), gateway => gateway.WithHttps(_certificate));
        return ValueTask.CompletedTask;
    }

    public async ValueTask DisposeAsync()
    {
        await _system.DisposeAsync();
        _certificate.Dispose();
    }

    [Theory]
    [InlineData("/")]
    [InlineData("/health")]
    public async Task OverHttpsForARealHostTheResponseCarriesHsts(string path)
    {
        using var client = HttpsClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Host = "chat.example.com";

        var response = await client.SendAsync(request, TestContext.Current.CancellationToken);

        Assert.Equal("https", _system.GatewayAddress.Scheme);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("max-age=31536000", Assert.Single(response.Headers.GetValues("Strict-Transport-Security")));
        Assert.Equal(GatewayTests.ContentSecurityPolicy, Assert.Single(response.Headers.GetValues("Content-Security-Policy")));
    }

    [Theory]
    [InlineData("localhost")]
    [InlineData("127.0.0.1")]
    public async Task OverHttpsForThisMachineThereIsNoHsts(string host)
    {
        using var client = HttpsClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, "/");
        request.Headers.Host = $"{host}:{_system.GatewayAddress.Port}";

        var response = await client.SendAsync(request, TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.False(response.Headers.Contains("Strict-Transport-Security"));
    }

    private HttpClient HttpsClient() => new(new SocketsHttpHandler
    {
        SslOptions = { RemoteCertificateValidationCallback = (_, certificate, _, _) => certificate?.GetCertHashString() == _certificate.GetCertHashString() },
    })
    {
        BaseAddress = _system.GatewayAddress,
    };

    private static X509Certificate2 SelfSigned()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=aichat-gateway-test", key, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        names.AddIpAddress(IPAddress.Loopback);
        names.AddDnsName("localhost");
        request.CertificateExtensions.Add(names.Build());
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
        // Kestrel wants a certificate whose private key it can use for TLS: a PKCS#12 round trip gives it one.
        return X509CertificateLoader.LoadPkcs12(certificate.Export(X509ContentType.Pkcs12), password: null);
    }
}
