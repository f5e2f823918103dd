using System.Runtime.InteropServices;

namespace AiChat.Benchmarks;

/// <summary>
/// Raises the open-file limit of this process before it starts the others, which inherit it: 10,000 idle streams hold
/// 20,000 sockets in the gateway alone (in from the clients, out to the API).
/// </summary>
public static partial class FileLimits
{
    private const int RlimitNofile = 7;

    /// <summary>The soft limit now in force, after raising it towards <paramref name="wanted"/> as far as allowed.</summary>
    public static ulong Raise(ulong wanted)
    {
        if (!OperatingSystem.IsLinux() || GetRLimit(RlimitNofile, out var limit) != 0)
        {
            return 0;
        }

        if (limit.Current >= wanted)
        {
            return limit.Current;
        }

        // Raising the hard limit needs privileges (root here); otherwise go as far as the hard limit allows.
        if (SetRLimit(RlimitNofile, new RLimit { Current = wanted, Maximum = Math.Max(wanted, limit.Maximum) }) != 0)
        {
            SetRLimit(RlimitNofile, new RLimit { Current = limit.Maximum, Maximum = limit.Maximum });
        }

        return GetRLimit(RlimitNofile, out limit) == 0 ? limit.Current : 0;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct RLimit
    {
        public ulong Current;
        public ulong Maximum;
    }

    [LibraryImport("libc", EntryPoint = "getrlimit")]
    private static partial int GetRLimit(int resource, out RLimit limit);

    [LibraryImport("libc", EntryPoint = "setrlimit")]
    private static partial int SetRLimit(int resource, in RLimit limit);
}
