using System.Net;
using System.Net.Sockets;

namespace AiChat.Tests.Infrastructure;

public static class Loopback
{
    /// <summary>A port on 127.0.0.1 that nothing listens on right now.</summary>
    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
