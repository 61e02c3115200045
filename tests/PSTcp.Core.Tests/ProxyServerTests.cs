using System;
using System.Linq;
using System.Net;
using System.Threading.Tasks;
using Xunit;

namespace PSTcp.Tests
{
    /// <summary>Servers behind a PROXY-protocol proxy: the receive loop's header step.</summary>
    public class ProxyServerTests
    {
        private static EchoServer ProxyServer(Action<TcpServerOptions> more = null) => new EchoServer(o =>
        {
            o.ProxyProtocol = true;
            more?.Invoke(o);
        });

        [Fact]
        public async Task AV1HeaderSplitByteByByteNamesTheRealClient()
        {
            await using var server = ProxyServer();
            using var client = await server.ConnectAsync();
            foreach (var b in Bytes.Latin1("PROXY TCP4 198.51.100.7 203.0.113.1 40000 443\r\n"))
            {
                await client.SendAsync(new[] { b });
            }

            await client.SendAsync("hello\n");
            // The echo is the payload only: the header is not the client's data.
            Assert.Equal("hello\n", await client.ReadLineTextAsync());
            var message = Assert.Single(await server.TakeAsync(1));
            Assert.Equal(new IPEndPoint(IPAddress.Parse("198.51.100.7"), 40000), message.RemoteEndPoint);
            Assert.Equal(0, server.Server.ConnectionsRejected);
        }

        [Fact]
        public async Task AV2HeaderAndPayloadInOneWrite()
        {
            await using var server = ProxyServer();
            using var client = await server.ConnectAsync();
            var header = ProxyProtocol.Write(ProxyProtocolVersion.V2, new IPEndPoint(IPAddress.Parse("2001:db8::5"), 1234), new IPEndPoint(IPAddress.Parse("2001:db8::1"), 80));
            await client.SendAsync(Bytes.Concat(header, Bytes.Latin1("one\ntwo\n")));
            Assert.Equal("one\n", await client.ReadLineTextAsync());
            var messages = await server.TakeAsync(2);
            Assert.All(messages, m => Assert.Equal(new IPEndPoint(IPAddress.Parse("2001:db8::5"), 1234), m.RemoteEndPoint));
        }

        [Fact]
        public async Task AMissingHeaderIsRejectedAndCounted()
        {
            await using var server = ProxyServer();
            using var client = await server.ConnectAsync();
            await client.SendAsync("GET / HTTP/1.1\r\n\r\n");
            var (data, _) = await client.ReadToEndAsync();
            Assert.Empty(data);
            await Poll.UntilAsync(() => server.Server.ConnectionsRejected == 1, "rejection counted");
            Assert.Equal(0, server.Server.MessagesReceived);
            Assert.Equal(0, server.Server.ErrorCount);
        }

        [Fact]
        public async Task AnUntrustedProxyIsRejectedAtAccept()
        {
            await using var server = ProxyServer(o => o.TrustedProxies = new[] { AddressRange.Parse("10.0.0.0/8") });
            using var client = await server.ConnectAsync();
            await client.SendAsync("PROXY TCP4 198.51.100.7 203.0.113.1 40000 443\r\nhi\n");
            var (data, _) = await client.ReadToEndAsync();
            Assert.Empty(data);
            await Poll.UntilAsync(() => server.Server.ConnectionsRejected == 1, "rejection counted");
        }

        [Fact]
        public async Task TheAllowListAppliesToTheRealSource()
        {
            await using var server = ProxyServer(o => o.AllowedRemoteAddresses = new[] { AddressRange.Parse("198.51.100.0/24") });
            using var allowed = await server.ConnectAsync();
            await allowed.SendAsync("PROXY TCP4 198.51.100.7 203.0.113.1 40000 443\r\nin\n");
            Assert.Equal("in\n", await allowed.ReadLineTextAsync());

            using var refused = await server.ConnectAsync();
            await refused.SendAsync("PROXY TCP4 192.0.2.9 203.0.113.1 40000 443\r\nout\n");
            var (data, _) = await refused.ReadToEndAsync();
            Assert.Empty(data);
            await Poll.UntilAsync(() => server.Server.ConnectionsRejected == 1, "rejection counted");
            Assert.Equal(new[] { "in" }, (await server.TakeAsync(1)).Select(m => m.Text));
        }

        [Fact]
        public async Task ALocalHeaderKeepsTheProxysAddress()
        {
            await using var server = ProxyServer();
            using var client = await server.ConnectAsync();
            var local = Bytes.Concat(new byte[] { 0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, 0x20, 0x00, 0x00, 0x00 }, Bytes.Latin1("ping\n"));
            await client.SendAsync(local);
            Assert.Equal("ping\n", await client.ReadLineTextAsync());
            var message = Assert.Single(await server.TakeAsync(1));
            Assert.Equal(IPAddress.Loopback, ((IPEndPoint)message.RemoteEndPoint).Address);
        }
    }

    /// <summary>A handler that replies, then closes its own connection from inside the handler.</summary>
    internal sealed class ReplyAndCloseHandler : LineHandler
    {
        public override async ValueTask OnLinesAsync(TcpConnection connection, System.Buffers.ReadOnlySequence<byte> rawLines,
            System.Collections.Generic.IReadOnlyList<TcpMessage> messages, int lineCount, System.Threading.CancellationToken cancellationToken)
        {
            foreach (var message in messages)
            {
                await connection.SendAsync(Bytes.Latin1("bye " + message.Text + "\n"), cancellationToken);
                // From inside the handler: returns at once, closes once the handler returns.
                Assert.True(await connection.CloseAsync(TimeSpan.FromSeconds(5)));
                Assert.True(connection.CloseRequested);
                if (connection.CloseRequested) break;
            }
        }
    }

    public class HandlerCloseTests
    {
        [Fact]
        public async Task AHandlerCanReplyAndThenCloseItsConnection()
        {
            await using var server = new EchoServer(handler: new ReplyAndCloseHandler());
            using var client = await server.ConnectAsync();
            await client.SendAsync("one\ntwo\n");
            var (data, end) = await client.ReadToEndAsync();
            Assert.Equal("bye one\n", System.Text.Encoding.Latin1.GetString(data));
            Assert.Equal(EndKind.Eof, end);
            await Poll.UntilAsync(() => server.Server.ConnectionCount == 0, "connection closed");
        }
    }
}
