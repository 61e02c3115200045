// PipelinesEcho: the benchmark's .NET reference peer, a minimal line-echo server on
// System.IO.Pipelines. Per connection: the socket fills a Pipe; the reader finds lines with
// PositionOf('\n'), copies each complete line into an output buffer and sends the whole
// batch back with one send per read batch. A final fragment without '\n' is echoed at EOF.
//
// Usage: PipelinesEcho [--port 0] [--address 127.0.0.1]
// The bound port is printed as the first line of stdout. Exits when killed, or with
// --exit-on-stdin-eof when stdin reaches end of file.
using System;
using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;

static class Program
{
    const int MaxLine = 1 << 20; // a line longer than this closes the connection

    static async Task<int> Main(string[] args)
    {
        int port = 0;
        var address = IPAddress.Loopback;
        bool exitOnEof = false;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--port": port = int.Parse(args[++i]); break;
                case "--address": address = IPAddress.Parse(args[++i]); break;
                case "--exit-on-stdin-eof": exitOnEof = true; break;
                default:
                    Console.Error.WriteLine($"unknown argument {args[i]}; usage: PipelinesEcho [--port N] [--address IP] [--exit-on-stdin-eof]");
                    return 2;
            }
        }

        using var listener = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(address, port));
        listener.Listen(4096);
        Console.Out.WriteLine(((IPEndPoint)listener.LocalEndPoint!).Port);
        Console.Out.Flush();

        if (exitOnEof)
        {
            var t = new Thread(() => { while (Console.In.ReadLine() != null) { } Environment.Exit(0); }) { IsBackground = true };
            t.Start();
        }

        while (true)
        {
            Socket s;
            try { s = await listener.AcceptAsync(); }
            catch (SocketException) { continue; }
            _ = Serve(s);
        }
    }

    static async Task Serve(Socket socket)
    {
        socket.NoDelay = true;
        var pipe = new Pipe(new PipeOptions(
            pauseWriterThreshold: 1 << 20, resumeWriterThreshold: 1 << 19,
            minimumSegmentSize: 16 << 10, useSynchronizationContext: false));
        try
        {
            Task fill = Fill(socket, pipe.Writer);
            Task echo = Echo(socket, pipe.Reader);
            await Task.WhenAll(fill, echo).ConfigureAwait(false);
        }
        catch (Exception) { /* a reset costs only this connection */ }
        finally { socket.Dispose(); }
    }

    static async Task Fill(Socket socket, PipeWriter writer)
    {
        Exception? error = null;
        try
        {
            while (true)
            {
                Memory<byte> memory = writer.GetMemory(16 << 10);
                int n = await socket.ReceiveAsync(memory, SocketFlags.None).ConfigureAwait(false);
                if (n == 0) break;
                writer.Advance(n);
                FlushResult result = await writer.FlushAsync().ConfigureAwait(false);
                if (result.IsCompleted) break;
            }
        }
        catch (Exception e) { error = e; }
        await writer.CompleteAsync(error).ConfigureAwait(false);
    }

    static async Task Echo(Socket socket, PipeReader reader)
    {
        byte[] output = Array.Empty<byte>(); // grows to the largest batch; idle connections keep none
        try
        {
            while (true)
            {
                ReadResult result = await reader.ReadAsync().ConfigureAwait(false);
                ReadOnlySequence<byte> buffer = result.Buffer;
                int length = 0;
                SequencePosition? newline;
                while ((newline = buffer.PositionOf((byte)'\n')) != null)
                {
                    ReadOnlySequence<byte> line = buffer.Slice(0, buffer.GetPosition(1, newline.Value));
                    Append(ref output, ref length, line);
                    buffer = buffer.Slice(line.End);
                }
                if (result.IsCompleted && !buffer.IsEmpty)
                {
                    Append(ref output, ref length, buffer); // final fragment without '\n'
                    buffer = buffer.Slice(buffer.End);
                }
                if (buffer.Length > MaxLine) break;
                reader.AdvanceTo(buffer.Start, buffer.End);
                if (length > 0)
                {
                    await SendAll(socket, output.AsMemory(0, length)).ConfigureAwait(false);
                }
                if (result.IsCompleted || result.IsCanceled) break;
            }
        }
        finally
        {
            await reader.CompleteAsync().ConfigureAwait(false);
        }
        try { socket.Shutdown(SocketShutdown.Send); } catch (SocketException) { }
    }

    static void Append(ref byte[] output, ref int length, in ReadOnlySequence<byte> data)
    {
        int needed = length + (int)data.Length;
        if (needed > output.Length)
        {
            Array.Resize(ref output, Math.Max(needed, Math.Max(4096, output.Length * 2)));
        }
        data.CopyTo(output.AsSpan(length));
        length = needed;
    }

    static async ValueTask SendAll(Socket socket, ReadOnlyMemory<byte> data)
    {
        while (!data.IsEmpty)
        {
            int n = await socket.SendAsync(data, SocketFlags.None).ConfigureAwait(false);
            data = data.Slice(n);
        }
    }
}
