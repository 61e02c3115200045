using System;
using System.Collections.Generic;
using System.Linq;
using System.Net;
using System.Text;
using Xunit;

namespace PSTcp.Tests
{
    public class ProxyProtocolTests
    {
        private static readonly byte[] Signature =
            { 0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A };

        private static byte[] Ascii(string text) => Encoding.ASCII.GetBytes(text);

        /// <summary>A v2 header built by hand from the specification, not by the writer under test.</summary>
        private static byte[] V2(byte versionCommand, byte familyTransport, params byte[] block)
        {
            var header = new List<byte>(Signature) { versionCommand, familyTransport, (byte)(block.Length >> 8), (byte)block.Length };
            header.AddRange(block);
            return header.ToArray();
        }

        private static byte[] V2Inet(byte[] tlvs = null)
        {
            var block = new List<byte> { 192, 0, 2, 1, 198, 51, 100, 2, 0xDC, 0x04, 0x01, 0xBB };
            if (tlvs != null) block.AddRange(tlvs);
            return V2(0x21, 0x11, block.ToArray());
        }

        private static byte[] V2Inet6()
        {
            var block = new List<byte>();
            block.AddRange(IPAddress.Parse("2001:db8::1").GetAddressBytes());
            block.AddRange(IPAddress.Parse("2001:db8::2").GetAddressBytes());
            block.AddRange(new byte[] { 0x30, 0x39, 0x00, 0x50 });
            return V2(0x21, 0x21, block.ToArray());
        }

        private static (ProxyParseStatus Status, ProxyHeader Header, int Consumed, string Error) Parse(byte[] data)
        {
            var status = ProxyProtocol.TryParse(data, out var header, out int consumed, out string error);
            return (status, header, consumed, error);
        }

        public static IEnumerable<object[]> ValidHeaders()
        {
            yield return new object[] { "v1 TCP4", Ascii("PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n"), "192.0.2.1:56324", "198.51.100.2:443" };
            yield return new object[] { "v1 TCP6", Ascii("PROXY TCP6 2001:db8::1 2001:db8::2 12345 80\r\n"), "[2001:db8::1]:12345", "[2001:db8::2]:80" };
            yield return new object[] { "v1 TCP6 mapped", Ascii("PROXY TCP6 ::ffff:10.0.0.1 ::1 1 2\r\n"), "[::ffff:10.0.0.1]:1", "[::1]:2" };
            yield return new object[] { "v1 UNKNOWN", Ascii("PROXY UNKNOWN\r\n"), null, null };
            yield return new object[] { "v1 UNKNOWN with fields", Ascii("PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n"), null, null };
            yield return new object[] { "v1 longest", Ascii("PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n"),
                "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535", "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535" };
            yield return new object[] { "v2 INET", V2Inet(), "192.0.2.1:56324", "198.51.100.2:443" };
            yield return new object[] { "v2 INET TLVs", V2Inet(new byte[] { 0x01, 0x00, 0x02, (byte)'h', (byte)'2', 0x04, 0x00, 0x00, 0xEA, 0x00, 0x03, 1, 2, 3 }),
                "192.0.2.1:56324", "198.51.100.2:443" };
            yield return new object[] { "v2 INET6", V2Inet6(), "[2001:db8::1]:12345", "[2001:db8::2]:80" };
            yield return new object[] { "v2 LOCAL", V2(0x20, 0x00), null, null };
            yield return new object[] { "v2 LOCAL with addresses", V2(0x20, 0x11, 127, 0, 0, 1, 127, 0, 0, 1, 0, 1, 0, 2), null, null };
            yield return new object[] { "v2 PROXY UNSPEC", V2(0x21, 0x00), null, null };
            yield return new object[] { "v2 PROXY UNIX", V2(0x21, 0x31, new byte[216]), null, null };
        }

        [Theory]
        [MemberData(nameof(ValidHeaders))]
        public void ParsesValidHeaderAndLeavesThePayload(string name, byte[] header, string source, string destination)
        {
            var data = header.Concat(Ascii("hello\n")).ToArray();
            var result = Parse(data);
            Assert.True(result.Status == ProxyParseStatus.Valid, $"{name}: {result.Error}");
            Assert.Equal(header.Length, result.Consumed);
            Assert.Equal(name.StartsWith("v1") ? ProxyProtocolVersion.V1 : ProxyProtocolVersion.V2, result.Header.Version);
            Assert.Equal(source == null, result.Header.IsLocal);
            Assert.Equal(source, result.Header.Source?.ToString());
            Assert.Equal(destination, result.Header.Destination?.ToString());
            Assert.Null(result.Error);
        }

        [Theory]
        [MemberData(nameof(ValidHeaders))]
        public void EveryProperPrefixIsIncomplete(string name, byte[] header, string source, string destination)
        {
            _ = source;
            _ = destination;
            for (int length = 0; length < header.Length; length++)
            {
                var result = Parse(header.Take(length).ToArray());
                Assert.True(result.Status == ProxyParseStatus.Incomplete, $"{name}, first {length} bytes: {result.Status} {result.Error}");
                Assert.Equal(0, result.Consumed);
                Assert.Null(result.Header);
            }
        }

        [Theory]
        [InlineData("GET / HTTP/1.1\r\n", 1)]
        [InlineData("hello\n", 1)]
        [InlineData("\u0000", 1)]
        [InlineData("PROXZ TCP4", 5)]
        [InlineData("proxy TCP4", 1)]
        [InlineData("PROXY TCP5 ", 10)]
        [InlineData("PROXY  TCP4", 7)]
        [InlineData("PROXY UDP4 ", 8)]
        [InlineData("PROXY TCP4 1.2.3.4\t", 19)]
        public void GarbageIsInvalidAsSoonAsItShows(string text, int bytesNeeded)
        {
            var data = Encoding.Latin1.GetBytes(text);
            Assert.Equal(ProxyParseStatus.Invalid, Parse(data.Take(bytesNeeded).ToArray()).Status);
            if (bytesNeeded > 1)
            {
                Assert.Equal(ProxyParseStatus.Incomplete, Parse(data.Take(bytesNeeded - 1).ToArray()).Status);
            }

            var result = Parse(data);
            Assert.Equal(ProxyParseStatus.Invalid, result.Status);
            Assert.False(string.IsNullOrEmpty(result.Error));
            Assert.Null(result.Header);
        }

        [Theory]
        [InlineData("PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\n")]
        [InlineData("PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\r\n")]
        [InlineData("PROXY TCP4 192.0.2.1 198.51.100.2 56324\r\n")]
        [InlineData("PROXY TCP4 192.0.2.1 198.51.100.2 56324 443 9\r\n")]
        [InlineData("PROXY TCP4 1 198.51.100.2 56324 443\r\n")]
        [InlineData("PROXY TCP4 192.0.2.256 198.51.100.2 56324 443\r\n")]
        [InlineData("PROXY TCP4 192.0.2.1 198.51.100.2 65536 443\r\n")]
        [InlineData("PROXY TCP4 192.0.2.1 198.51.100.2 +1 443\r\n")]
        [InlineData("PROXY TCP4 2001:db8::1 2001:db8::2 1 2\r\n")]
        [InlineData("PROXY TCP6 192.0.2.1 198.51.100.2 1 2\r\n")]
        [InlineData("PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n")]
        [InlineData("PROXY TCP4 192.0.2.1  198.51.100.2 1 2\r\n")]
        [InlineData("PROXY TCP4\r\n")]
        public void MalformedV1IsInvalid(string text)
        {
            var result = Parse(Ascii(text));
            Assert.Equal(ProxyParseStatus.Invalid, result.Status);
            Assert.False(string.IsNullOrEmpty(result.Error));
        }

        [Fact]
        public void V1WithoutLineEndWithin107BytesIsInvalid()
        {
            var data = Ascii("PROXY UNKNOWN " + new string('a', 200));
            Assert.Equal(ProxyParseStatus.Incomplete, Parse(data.Take(ProxyProtocol.MaxV1Length - 1).ToArray()).Status);
            Assert.Equal(ProxyParseStatus.Invalid, Parse(data.Take(ProxyProtocol.MaxV1Length).ToArray()).Status);
            Assert.Equal(ProxyParseStatus.Invalid, Parse(data).Status);
        }

        public static IEnumerable<object[]> MalformedV2()
        {
            var good = V2Inet();
            byte[] With(int index, byte value) { var copy = (byte[])good.Clone(); copy[index] = value; return copy; }
            yield return new object[] { "signature", With(7, 0x50), 8 };
            yield return new object[] { "version 1", With(12, 0x11), 13 };
            yield return new object[] { "command 2", With(12, 0x22), 13 };
            yield return new object[] { "family 4", With(13, 0x41), 14 };
            yield return new object[] { "transport 3", With(13, 0x13), 14 };
            yield return new object[] { "INET block too short", V2(0x21, 0x11, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11), 16 };
            yield return new object[] { "INET6 block too short", V2(0x21, 0x21, new byte[35]), 16 };
            yield return new object[] { "over the limit", V2(0x21, 0x11, new byte[ProxyProtocol.MaxHeaderLength - 15]), 16 };
            yield return new object[] { "TLV overruns", V2Inet(new byte[] { 0x01, 0x00, 0x05, 1, 2 }), good.Length + 5 };
            yield return new object[] { "TLV header cut", V2Inet(new byte[] { 0x01, 0x00 }), good.Length + 2 };
        }

        [Theory]
        [MemberData(nameof(MalformedV2))]
        public void MalformedV2IsInvalidAsSoonAsItShows(string name, byte[] data, int bytesNeeded)
        {
            var result = Parse(data.Take(bytesNeeded).ToArray());
            Assert.True(result.Status == ProxyParseStatus.Invalid, $"{name}: {result.Status}");
            Assert.False(string.IsNullOrEmpty(result.Error));
            Assert.Equal(ProxyParseStatus.Incomplete, Parse(data.Take(bytesNeeded - 1).ToArray()).Status);
        }

        [Fact]
        public void V2AtTheLengthLimitIsAccepted()
        {
            // 16 + 12 address bytes + one NOOP TLV padding the header to exactly MaxHeaderLength.
            int tlvLength = ProxyProtocol.MaxHeaderLength - 16 - 12 - 3;
            var tlv = new byte[3 + tlvLength];
            tlv[0] = 0x04;
            tlv[1] = (byte)(tlvLength >> 8);
            tlv[2] = (byte)tlvLength;
            var header = V2Inet(tlv);
            Assert.Equal(ProxyProtocol.MaxHeaderLength, header.Length);
            var result = Parse(header);
            Assert.Equal(ProxyParseStatus.Valid, result.Status);
            Assert.Equal(ProxyProtocol.MaxHeaderLength, result.Consumed);
        }

        [Fact]
        public void WritesV1AsTheSpecificationSpellsIt()
        {
            Assert.Equal("PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n", Encoding.ASCII.GetString(ProxyProtocol.Write(ProxyProtocolVersion.V1,
                IPEndPoint.Parse("192.0.2.1:56324"), IPEndPoint.Parse("198.51.100.2:443"))));
            Assert.Equal("PROXY TCP6 2001:db8::1 ::1 1 2\r\n", Encoding.ASCII.GetString(ProxyProtocol.Write(ProxyProtocolVersion.V1,
                IPEndPoint.Parse("[2001:db8::1]:1"), IPEndPoint.Parse("[::1]:2"))));
            Assert.Equal("PROXY UNKNOWN\r\n", Encoding.ASCII.GetString(ProxyProtocol.Write(ProxyProtocolVersion.V1, null, null)));
        }

        [Fact]
        public void WritesV2AsBuiltByHand()
        {
            Assert.Equal(V2Inet(), ProxyProtocol.Write(ProxyProtocolVersion.V2, IPEndPoint.Parse("192.0.2.1:56324"), IPEndPoint.Parse("198.51.100.2:443")));
            Assert.Equal(V2Inet6(), ProxyProtocol.Write(ProxyProtocolVersion.V2, IPEndPoint.Parse("[2001:db8::1]:12345"), IPEndPoint.Parse("[2001:db8::2]:80")));
            Assert.Equal(V2(0x20, 0x00), ProxyProtocol.Write(ProxyProtocolVersion.V2, null, null));
        }

        [Theory]
        [InlineData("[::ffff:127.0.0.5]:1000", "[::ffff:127.0.0.1]:2000", "127.0.0.5:1000", "127.0.0.1:2000")]
        [InlineData("127.0.0.5:1000", "[::1]:2000", "[::ffff:127.0.0.5]:1000", "[::1]:2000")]
        [InlineData("[fe80::1%2]:1000", "[fe80::2%2]:2000", "[fe80::1]:1000", "[fe80::2]:2000")]
        public void WrittenHeadersParseBack(string source, string destination, string expectedSource, string expectedDestination)
        {
            foreach (var version in new[] { ProxyProtocolVersion.V1, ProxyProtocolVersion.V2 })
            {
                var bytes = ProxyProtocol.Write(version, IPEndPoint.Parse(source), IPEndPoint.Parse(destination));
                var result = Parse(bytes);
                Assert.True(result.Status == ProxyParseStatus.Valid, $"{version}: {result.Error}");
                Assert.Equal(bytes.Length, result.Consumed);
                Assert.Equal(version, result.Header.Version);
                Assert.Equal(expectedSource, result.Header.Source.ToString());
                Assert.Equal(expectedDestination, result.Header.Destination.ToString());
            }
        }

        [Fact]
        public void WriteNeedsAVersion()
        {
            Assert.Throws<ArgumentOutOfRangeException>(() =>
                ProxyProtocol.Write(ProxyProtocolVersion.None, IPEndPoint.Parse("127.0.0.1:1"), IPEndPoint.Parse("127.0.0.1:2")));
        }
    }
}
