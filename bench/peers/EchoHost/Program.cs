// EchoHost: Start-TcpEchoServer's server (PSTcp.Core's TcpServer with the echo handler) in a
// plain .NET process, for the portable multi-core benchmark (bench/run-table.sh).
//   EchoHost [--port N] [--no-queue] [--exit-on-stdin-eof]
// Listens on 127.0.0.1 (port 0: a free one), prints the bound port as the first line of stdout,
// and runs until stdin closes (with --exit-on-stdin-eof) or it is killed. Without --no-queue every
// line is also queued as a TcpMessage, as the bench's PSTcp server does (capacity 10,000,
// DropOldest: nobody consumes, the queue evicts).
using System;
using System.Threading;
using PSTcp;

internal static class Program
{
    private static int Main(string[] args)
    {
        int port = 0;
        bool noQueue = false, exitOnEof = false;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--port" when i + 1 < args.Length: port = int.Parse(args[++i]); break;
                case "--no-queue": noQueue = true; break;
                case "--exit-on-stdin-eof": exitOnEof = true; break;
                default:
                    Console.Error.WriteLine($"unknown argument {args[i]}; usage: EchoHost [--port N] [--no-queue] [--exit-on-stdin-eof]");
                    return 2;
            }
        }

        var options = new TcpServerOptions
        {
            Address = "127.0.0.1",
            Port = port,
            MaxConnections = 20000,
            QueueMessages = !noQueue,
            QueueCapacity = 10000,
            QueueFullMode = QueueFullMode.DropOldest,
        };
        var server = TcpServer.Start(options, EchoLineHandler.Instance);
        Console.Out.WriteLine(server.Port);
        Console.Out.Flush();
        if (exitOnEof)
        {
            while (Console.In.ReadLine() != null)
            {
            }
        }
        else
        {
            Thread.Sleep(Timeout.Infinite);
        }

        server.StopAsync(TimeSpan.FromSeconds(2)).Wait();
        return 0;
    }
}
