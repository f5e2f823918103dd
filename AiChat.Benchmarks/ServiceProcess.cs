using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace AiChat.Benchmarks;

/// <summary>
/// One component of the measured system as its own operating-system process (the API, the gateway, the stub, nginx), so
/// its CPU time and resident memory are its own: read from the kernel (<see cref="Process.TotalProcessorTime"/>,
/// <see cref="Process.WorkingSet64"/>) for it and its direct children (nginx's workers). Its output goes to a log file,
/// with its lines counted.
/// </summary>
public sealed class ServiceProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StreamWriter _log;
    private static readonly string[] LevelPrefixes = ["trce: ", "dbug: ", "info: ", "warn: ", "fail: ", "crit: "];
    private long _entries;

    private ServiceProcess(string name, Process process, Uri address, StreamWriter log, string logPath)
    {
        Name = name;
        _process = process;
        Address = address;
        _log = log;
        LogPath = logPath;
    }

    public string Name { get; }

    public Uri Address { get; }

    public string LogPath { get; }

    /// <summary>Log entries the process wrote to its console so far: lines that open with the console logger's level prefix.</summary>
    public long LogEntries => Interlocked.Read(ref _entries);

    public static async Task<ServiceProcess> StartAsync(
        string name, string file, IEnumerable<string> arguments, IReadOnlyDictionary<string, string> environment, Uri address, string healthPath, string logDirectory)
    {
        var start = new ProcessStartInfo(file, arguments)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = File.Exists(file) ? Path.GetDirectoryName(file)! : logDirectory,
        };
        foreach (var (key, value) in environment)
        {
            start.Environment[key] = value;
        }

        if (arguments.FirstOrDefault() is { } dll && dll.EndsWith(".dll", StringComparison.Ordinal))
        {
            start.WorkingDirectory = Path.GetDirectoryName(dll)!;
        }

        var logPath = Path.Combine(logDirectory, $"{name}.log");
        var log = new StreamWriter(logPath) { AutoFlush = false };
        var process = Process.Start(start) ?? throw new InvalidOperationException($"{name} did not start.");
        var service = new ServiceProcess(name, process, address, log, logPath);
        process.OutputDataReceived += (_, line) => service.Write(line.Data);
        process.ErrorDataReceived += (_, line) => service.Write(line.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        await service.WaitHealthyAsync(healthPath);
        return service;
    }

    /// <summary>CPU time (user + system) of the process and its direct children.</summary>
    public TimeSpan CpuTime() => Family().Aggregate(TimeSpan.Zero, (sum, process) => sum + Safe(() => process.TotalProcessorTime));

    /// <summary>File descriptors the process holds now (Linux), sockets included.</summary>
    public int OpenFiles() => OperatingSystem.IsLinux() ? Directory.GetFiles($"/proc/{_process.Id}/fd").Length : 0;

    /// <summary>Resident memory (RSS) of the process and its direct children, in bytes.</summary>
    public long ResidentBytes() => Family().Sum(process => Safe(() =>
    {
        process.Refresh();
        return process.WorkingSet64;
    }));

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(20)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        _process.Dispose();
        lock (_log)
        {
            _log.Dispose();
        }
    }

    /// <summary>A port on 127.0.0.1 that nothing listens on right now.</summary>
    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private void Write(string? line)
    {
        if (line is null)
        {
            return;
        }

        if (LevelPrefixes.Any(prefix => line.StartsWith(prefix, StringComparison.Ordinal)))
        {
            Interlocked.Increment(ref _entries);
        }

        lock (_log)
        {
            if (_log.BaseStream.CanWrite)
            {
                _log.WriteLine(line);
            }
        }
    }

    private async Task WaitHealthyAsync(string healthPath)
    {
        using var http = new HttpClient(new SocketsHttpHandler { UseProxy = false }) { BaseAddress = Address, Timeout = TimeSpan.FromSeconds(5) };
        var deadline = DateTime.UtcNow.AddSeconds(120);
        while (true)
        {
            try
            {
                if ((await http.GetAsync(healthPath)).IsSuccessStatusCode)
                {
                    return;
                }
            }
            catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
            {
            }

            if (_process.HasExited || DateTime.UtcNow > deadline)
            {
                lock (_log)
                {
                    _log.Flush();
                }

                throw new InvalidOperationException($"{Name} did not become healthy at {Address}{healthPath.TrimStart('/')} (exited: {_process.HasExited}); see {LogPath}:\n"
                    + string.Join('\n', File.ReadLines(LogPath).TakeLast(20)));
            }

            await Task.Delay(100);
        }
    }

    private IEnumerable<Process> Family()
    {
        yield return _process;
        foreach (var child in ChildrenOf(_process.Id))
        {
            yield return child;
        }
    }

    // Linux: a child's parent is the fourth field of /proc/<pid>/stat (after the parenthesised name).
    private static IEnumerable<Process> ChildrenOf(int pid)
    {
        if (!OperatingSystem.IsLinux())
        {
            yield break;
        }

        foreach (var directory in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(directory), NumberStyles.None, CultureInfo.InvariantCulture, out var candidate))
            {
                continue;
            }

            string stat;
            try
            {
                stat = File.ReadAllText(Path.Combine(directory, "stat"));
            }
            catch (IOException)
            {
                continue;
            }
            catch (UnauthorizedAccessException)
            {
                continue;
            }

            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            if (fields.Length > 1 && fields[1] == pid.ToString(CultureInfo.InvariantCulture))
            {
                Process? child = null;
                try
                {
                    child = Process.GetProcessById(candidate);
                }
                catch (ArgumentException)
                {
                }

                if (child is not null)
                {
                    yield return child;
                }
            }
        }
    }

    private static T Safe<T>(Func<T> read) where T : struct
    {
        try
        {
            return read();
        }
        catch (Exception ex) when (ex is InvalidOperationException or System.ComponentModel.Win32Exception)
        {
            return default; // the process ended between listing and reading
        }
    }
}
