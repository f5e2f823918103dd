using System.Globalization;

namespace AiChat.Benchmarks;

/// <summary>
/// Debian's nginx (<c>apt-get install -y nginx</c>) as a reverse proxy in front of the same API, for comparison with the
/// YARP gateway: a generated configuration on a free port, in the foreground as a child process, SSE-safe (no buffering,
/// HTTP/1.1 keep-alive to the API, as the gateway does).
/// </summary>
public static class Nginx
{
    public static string? Binary => new[] { "/usr/sbin/nginx", "/usr/bin/nginx" }.FirstOrDefault(File.Exists);

    public static async Task<ServiceProcess> StartAsync(Uri api, string workDirectory)
    {
        var binary = Binary ?? throw new InvalidOperationException("nginx is not installed (apt-get install -y nginx).");
        var prefix = Path.Combine(workDirectory, "nginx");
        Directory.CreateDirectory(Path.Combine(prefix, "logs"));
        var port = ServiceProcess.FreePort();
        var config = Path.Combine(prefix, "nginx.conf");
        await File.WriteAllTextAsync(config, string.Create(CultureInfo.InvariantCulture, $$"""
            daemon off;
            worker_processes {{Environment.ProcessorCount}};
            pid {{prefix}}/nginx.pid;
            error_log {{prefix}}/logs/error.log warn;
            events { worker_connections 20000; }
            http {
                access_log off;
                client_body_temp_path {{prefix}}/body;
                proxy_temp_path {{prefix}}/proxy;
                fastcgi_temp_path {{prefix}}/fastcgi;
                uwsgi_temp_path {{prefix}}/uwsgi;
                scgi_temp_path {{prefix}}/scgi;
                upstream api {
                    server {{api.Host}}:{{api.Port}};
                    keepalive 256;
                }
                server {
                    listen 127.0.0.1:{{port}};
                    location / {
                        proxy_pass http://api;
                        proxy_http_version 1.1;
                        proxy_set_header Connection "";
                        proxy_set_header Host $host;
                        proxy_set_header X-Forwarded-For $remote_addr;
                        proxy_set_header X-Forwarded-Proto $scheme;
                        proxy_buffering off;
                        proxy_request_buffering off;
                        proxy_read_timeout 15m;
                    }
                }
            }
            """));

        // The master runs as root here; its workers drop to nobody, who must reach the prefix.
        if (!OperatingSystem.IsWindows())
        {
            foreach (var directory in new[] { workDirectory, prefix })
            {
                File.SetUnixFileMode(directory, File.GetUnixFileMode(directory) | UnixFileMode.OtherExecute | UnixFileMode.OtherRead);
            }
        }

        return await ServiceProcess.StartAsync("nginx", binary, ["-p", prefix, "-c", config, "-e", Path.Combine(prefix, "logs", "error.log")],
            new Dictionary<string, string>(), new Uri($"http://127.0.0.1:{port}/"), "/health", workDirectory);
    }
}
