using System.Net.Sockets;
using Xunit;

namespace PSTcp.Tests
{
    /// <summary>How a failed connect's error becomes Test-TcpEndpoint's Status, and what -HostName accepts.</summary>
    public class EndpointStatusMappingTests
    {
        [Theory]
        [InlineData(SocketError.ConnectionRefused, EndpointStatus.Refused)]     // ECONNREFUSED: a reset, nothing listens
        [InlineData(SocketError.ConnectionReset, EndpointStatus.Refused)]
        [InlineData(SocketError.TimedOut, EndpointStatus.TimedOut)]             // ETIMEDOUT
        [InlineData(SocketError.HostUnreachable, EndpointStatus.Unreachable)]   // EHOSTUNREACH: `ip route add unreachable`, ICMP host unreachable
        [InlineData(SocketError.NetworkUnreachable, EndpointStatus.Unreachable)] // ENETUNREACH: no route at all, `ip route add throw`
        [InlineData(SocketError.HostDown, EndpointStatus.Unreachable)]          // EHOSTDOWN
        [InlineData(SocketError.InvalidArgument, EndpointStatus.Unreachable)]   // EINVAL: what Linux says for `ip route add blackhole`
        [InlineData(SocketError.AccessDenied, EndpointStatus.Filtered)]         // EACCES (`ip route add prohibit`), EPERM (netfilter)
        [InlineData(SocketError.AddressNotAvailable, EndpointStatus.Refused)]
        public void SocketErrorsMapToStatuses(SocketError error, EndpointStatus expected)
        {
            Assert.Equal(expected, EndpointProbe.StatusOf(error));
        }

        [Theory]
        [InlineData("example.com", "example.com", 0)]
        [InlineData(" 127.0.0.1 ", "127.0.0.1", 0)]
        [InlineData("127.0.0.1:18080", "127.0.0.1", 18080)]
        [InlineData("db.example.com:5432", "db.example.com", 5432)]
        [InlineData("tcp://127.0.0.1:18080", "127.0.0.1", 18080)]
        [InlineData("tcp://db.example.com:5432/", "db.example.com", 5432)]
        [InlineData("tcp://db.example.com", "db.example.com", 0)]
        [InlineData("https://example.com", "example.com", 443)]
        [InlineData("tcp://[::1]:8080", "::1", 8080)]
        [InlineData("[::1]:8080", "::1", 8080)]
        [InlineData("[::1]", "::1", 0)]
        [InlineData("::1", "::1", 0)]
        [InlineData("fe80::1:2", "fe80::1:2", 0)]
        [InlineData("localhost:65535", "localhost", 65535)]
        public void HostNamesParseWithAndWithoutTheirPort(string text, string host, int port)
        {
            Assert.True(EndpointProbe.TryParseTarget(text, out var parsedHost, out var parsedPort, out var error), error);
            Assert.Equal(host, parsedHost);
            Assert.Equal(port, parsedPort);
        }

        [Theory]
        [InlineData("")]
        [InlineData("   ")]
        [InlineData("host:")]
        [InlineData("host:0")]
        [InlineData("host:65536")]
        [InlineData("host:http")]
        [InlineData("host:-1")]
        [InlineData(":80")]
        [InlineData("[::1]:")]
        [InlineData("[::1]x")]
        [InlineData("[nope]:80")]
        [InlineData("[::1")]
        [InlineData("tcp://")]
        public void TextThatIsNoHostIsRefusedWithAReason(string text)
        {
            Assert.False(EndpointProbe.TryParseTarget(text, out var host, out var port, out var error));
            Assert.Null(host);
            Assert.Equal(0, port);
            Assert.False(string.IsNullOrEmpty(error));
        }
    }
}
