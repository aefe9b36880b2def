// Socket activation, as sd_listen_fds_with_names(3) does it: when $LISTEN_PID is this process, descriptors
// 3 .. 3+$LISTEN_FDS-1 are listening sockets the service manager bound for us, named by the colon-separated
// $LISTEN_FDNAMES (FileDescriptorName= in the .socket unit). The three variables are removed afterwards, so
// nothing this process starts believes the sockets are its own, and each descriptor is marked close-on-exec.
// What it does not do: decide what a name serves. The host takes the names it serves (`smtp`; with no
// LISTEN_FDNAMES at all every socket is SMTP, as nothing else could be told apart) and the rest are
// warned about and closed. It does not check that a socket listens: the transport does, when it adopts it.
// How it fails: variables that do not parse, or a descriptor that is not a socket, are a
// SocketActivationException with one line to print; the host then refuses to start (exit 1).
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace EdgeMta.Systemd;

internal sealed class SocketActivationException(string message) : Exception(message);

internal static partial class SocketActivation
{
    /// <summary>SD_LISTEN_FDS_START: the first descriptor passed.</summary>
    public const int FirstDescriptor = 3;

    /// <summary>The name systemd reports for a socket when LISTEN_FDNAMES is absent.</summary>
    public const string UnnamedSocket = "unknown";

    /// <summary>A descriptor handed over and its name.</summary>
    public readonly record struct PassedSocket(int Descriptor, string Name);

    /// <summary>
    /// What the variables hand over to <paramref name="ownPid"/>: nothing when LISTEN_PID is unset or names
    /// another process. Names missing from LISTEN_FDNAMES are <see cref="UnnamedSocket"/>. Throws
    /// <see cref="SocketActivationException"/> when the variables meant for us do not parse.
    /// </summary>
    public static PassedSocket[] Parse(string? listenPid, string? listenFds, string? listenFdNames, int ownPid)
    {
        if (string.IsNullOrEmpty(listenPid)) return [];
        if (!int.TryParse(listenPid, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int pid) || pid <= 0)
        {
            throw new SocketActivationException($"LISTEN_PID={listenPid} is not a process id");
        }
        if (pid != ownPid) return [];
        // 1024 is far beyond any real unit (one socket per address and service) and keeps the loop bounded.
        if (!int.TryParse(listenFds, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int count) || count > 1024)
        {
            throw new SocketActivationException($"LISTEN_FDS={listenFds} is not a count of descriptors");
        }
        string[] names = string.IsNullOrEmpty(listenFdNames) ? [] : listenFdNames.Split(':');
        if (names.Length > 0 && names.Length != count)
        {
            throw new SocketActivationException($"LISTEN_FDNAMES={listenFdNames} names {names.Length} sockets, LISTEN_FDS={count}");
        }
        var passed = new PassedSocket[count];
        for (int i = 0; i < count; i++)
        {
            passed[i] = new PassedSocket(FirstDescriptor + i, names.Length > 0 && names[i].Length > 0 ? names[i] : UnnamedSocket);
        }
        return passed;
    }

    /// <summary>Reads and removes LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES, and wraps each descriptor meant
    /// for this process in a <see cref="Socket"/> that owns it.</summary>
    public static HandedOverSockets TakeFromEnvironment()
    {
        string? pid = Environment.GetEnvironmentVariable("LISTEN_PID");
        string? fds = Environment.GetEnvironmentVariable("LISTEN_FDS");
        string? names = Environment.GetEnvironmentVariable("LISTEN_FDNAMES");
        // .NET keeps the environment it hands to child processes itself; this is what they would inherit.
        Environment.SetEnvironmentVariable("LISTEN_PID", null);
        Environment.SetEnvironmentVariable("LISTEN_FDS", null);
        Environment.SetEnvironmentVariable("LISTEN_FDNAMES", null);
        PassedSocket[] passed = Parse(pid, fds, names, Environment.ProcessId);
        var sockets = new List<(Socket, string)>(passed.Length);
        try
        {
            foreach (PassedSocket p in passed)
            {
                const int FSetFd = 2, FdCloExec = 1;
                _ = fcntl(p.Descriptor, FSetFd, FdCloExec);
                var handle = new SafeSocketHandle(p.Descriptor, ownsHandle: true);
                try
                {
                    sockets.Add((new Socket(handle), p.Name));
                }
                catch (SocketException e)
                {
                    handle.Dispose();
                    throw new SocketActivationException($"descriptor {p.Descriptor} ({p.Name}) from LISTEN_FDS is not a socket ({e.Message})");
                }
            }
        }
        catch
        {
            foreach ((Socket s, _) in sockets) s.Dispose();
            throw;
        }
        return new HandedOverSockets(sockets, names is { Length: > 0 });
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fcntl(int fd, int command, int argument);
}

/// <summary>The sockets systemd handed over, taken by name by whoever serves that name.</summary>
internal sealed class HandedOverSockets(List<(Socket Socket, string Name)> sockets, bool named)
{
    /// <summary>How many are not yet taken.</summary>
    public int Count => sockets.Count;

    /// <summary>Takes every socket named <paramref name="name"/>. With no LISTEN_FDNAMES at all, SMTP (the
    /// first service asked for, <paramref name="takesUnnamed"/>) takes them all.</summary>
    public Socket[] Take(string name, bool takesUnnamed = false)
    {
        var taken = new List<Socket>();
        for (int i = sockets.Count - 1; i >= 0; i--)
        {
            if (sockets[i].Name == name || (takesUnnamed && !named))
            {
                taken.Insert(0, sockets[i].Socket);
                sockets.RemoveAt(i);
            }
        }
        return taken.ToArray();
    }

    /// <summary>Closes what nobody took, one warning line each: a socket unit named something edgemta does not serve.</summary>
    public void CloseRest(TextWriter errors, string served)
    {
        foreach ((Socket socket, string name) in sockets)
        {
            errors.WriteLine($"edgemta: warning: the socket named '{name}' from systemd is not one edgemta serves ({served}); closed");
            socket.Dispose();
        }
        sockets.Clear();
    }
}
