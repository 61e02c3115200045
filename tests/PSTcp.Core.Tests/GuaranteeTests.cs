using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;
using System.Threading.Tasks;
using Xunit;

namespace PSTcp.Tests
{
    /// <summary>
    /// Issue 19's cases 3, 12, 13 and 15 in the core (SPEC "Guarantees"): each test is named
    /// after its case. The cmdlet-side cases (3, 5, 11, 13's timeouts) are in Guarantees.Tests.ps1.
    /// </summary>
    public class GuaranteeTests : IClassFixture<OriginFixture>
    {
        private readonly OriginFixture _fixture;

        public GuaranteeTests(OriginFixture fixture)
        {
            _fixture = fixture;
        }

        private List<TcpMessage> Messages(int count, int size, TcpConnection origin) =>
            Enumerable.Range(1, count)
                .Select(i => PSTcp.Tests.Messages.Create(Enumerable.Repeat((byte)('a' + i % 26), size).ToArray(), origin, i))
                .ToList();

        private static List<long> TakeAllNow(MessageQueue queue)
        {
            var list = new List<long>();
            while (queue.TryRead(out var message)) list.Add(message.Sequence);
            return list;
        }

        // ---- Case 12: queues are bounded in bytes too ----

        [Theory]
        [InlineData(QueueFullMode.DropOldest)]
        [InlineData(QueueFullMode.DropNewest)]
        public void Case12_QueueByteLimitBoundsTheBytesWithTheSameFullMode(QueueFullMode mode)
        {
            var origin = _fixture.NewOrigin();
            var queue = new MessageQueue(1000, mode, byteLimit: 100);
            foreach (var message in Messages(10, 30, origin))
            {
                Assert.True(queue.WriteAsync(message, default).IsCompletedSuccessfully);
                Assert.True(queue.Bytes <= 100, $"{queue.Bytes} bytes queued");
            }

            Assert.Equal(3, queue.Count);
            Assert.Equal(90, queue.Bytes);
            Assert.Equal(7, queue.DroppedCount);
            Assert.Equal(7, origin.MessagesDropped);
            Assert.Equal(mode == QueueFullMode.DropOldest ? new long[] { 8, 9, 10 } : new long[] { 1, 2, 3 }, TakeAllNow(queue));
            Assert.Equal(0, queue.Bytes);
        }

        [Fact]
        public async Task Case12_WaitModeWaitsForBytesToo()
        {
            var origin = _fixture.NewOrigin();
            var queue = new MessageQueue(1000, QueueFullMode.Wait, byteLimit: 100);
            var messages = Messages(3, 60, origin);
            Assert.True(queue.WriteAsync(messages[0], default).IsCompletedSuccessfully);
            var second = queue.WriteAsync(messages[1], default).AsTask();
            await Task.Delay(50);
            Assert.False(second.IsCompleted, "a second 60-byte message must wait under a 100-byte limit");
            Assert.Equal(60, queue.Bytes);
            Assert.True(queue.TryRead(out var first));
            Assert.Equal(1, first.Sequence);
            await Poll.WithTimeout(second, "the wait for room in bytes");
            Assert.Equal(60, queue.Bytes);
            Assert.Equal(0, queue.DroppedCount);
        }

        [Fact]
        public void Case12_AMessageLargerThanTheByteLimitStillFitsAnEmptyQueue()
        {
            var origin = _fixture.NewOrigin();
            var queue = new MessageQueue(10, QueueFullMode.Wait, byteLimit: 10);
            var big = Messages(1, 50, origin)[0];
            Assert.True(queue.WriteAsync(big, default).IsCompletedSuccessfully);
            Assert.Equal(50, queue.Bytes);
            Assert.True(queue.TryRead(out var message));
            Assert.Equal(50, message.Length);
        }

        [Fact]
        public async Task Case12_AFloodOfLongLinesHoldsAtMostTheByteLimit()
        {
            const long limit = 256 * 1024;
            var server = TcpServer.Start(new TcpServerOptions
            {
                Address = "127.0.0.1",
                Port = 0,
                StopTimeout = TimeSpan.FromSeconds(2),
                QueueByteLimit = limit,
                MaxLineLength = 70 * 1024,
            }, null);
            try
            {
                using var client = await RawClient.ConnectAsync(server.Port);
                var line = Bytes.Concat(Enumerable.Repeat((byte)'x', 65 * 1024).ToArray(), Bytes.Latin1("\n"));
                long maxSeen = 0;
                for (int i = 0; i < 40; i++)
                {
                    await client.SendAsync(line);
                    maxSeen = Math.Max(maxSeen, server.QueueBytes);
                }

                await Poll.UntilAsync(() => server.MessagesReceived == 40, "all 40 lines read");
                Assert.True(server.QueueBytes <= limit, $"QueueBytes {server.QueueBytes}");
                Assert.True(maxSeen <= limit, $"max QueueBytes {maxSeen}");
                Assert.Equal(40, server.QueueLength + server.MessagesDropped);
                Assert.Equal(server.QueueBytes, (long)server.QueueLength * 65 * 1024);
                Assert.True(server.MessagesDropped > 0);
            }
            finally
            {
                await Poll.WithTimeout(server.StopAsync(), "server stop", TimeSpan.FromSeconds(15));
            }
        }

        [Fact]
        public void Case03_ARawClientConnectionQueuesLosslesslyUnlessADropModeIsAskedFor()
        {
            Assert.Equal(QueueFullMode.Wait, new ConnectionOptions { Framing = PSTcp.Framing.FramingKind.Raw }.QueueFullMode);
            Assert.Equal(QueueFullMode.DropOldest, new ConnectionOptions().QueueFullMode);
            Assert.Equal(QueueFullMode.DropOldest, new TcpServerOptions { Framing = PSTcp.Framing.FramingKind.Raw }.QueueFullMode);
            Assert.Equal(QueueFullMode.DropNewest, new ConnectionOptions { Framing = PSTcp.Framing.FramingKind.Raw, QueueFullMode = QueueFullMode.DropNewest }.QueueFullMode);
        }

        // ---- Case 13: -Until's cost, -ByteCount's growth ----

        [Fact]
        public void Case13_UntilOnADribbleMatchesOnlyWhatIsNew()
        {
            // 96 KB one byte at a time, no match: the old splitter decoded and matched the whole
            // buffer on every byte (billions of char steps, tens of seconds); now each byte
            // costs the look-back.
            var splitter = StreamSplitter.ForPattern(new Regex("DONE\\r\\n", RegexOptions.CultureInvariant | RegexOptions.IgnoreCase), Bytes.Utf8);
            var clock = Stopwatch.StartNew();
            var one = new byte[1];
            for (int i = 0; i < 96 * 1024; i++)
            {
                one[0] = (byte)('a' + i % 26);
                splitter.Append(one);
                Assert.Equal(-1, splitter.FindEnd());
            }

            splitter.Append(Bytes.Latin1("DONE\r\n"));
            Assert.Equal(96 * 1024 + 6, splitter.FindEnd());
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(6), $"96 KB dribbled took {clock.Elapsed.TotalSeconds:0.0} s");
        }

        [Fact]
        public void Case13_AMatchWiderThanTheLookBackIsStillFoundAndAnchorsStillMeanTheStart()
        {
            // BEGIN … END spans 5 KB, more than the look-back: found by the full search at the latest.
            var splitter = StreamSplitter.ForPattern(new Regex("BEGIN[^!]*END"), Bytes.Utf8);
            var body = new string('x', 5000);
            var text = Bytes.Latin1("BEGIN" + body + "END" + "tail");
            int end = -1;
            for (int i = 0; i < text.Length && end < 0; i += 7)
            {
                splitter.Append(text.AsSpan(i, Math.Min(7, text.Length - i)));
                end = splitter.FindEnd();
            }

            if (end < 0) end = splitter.FindEndFully();
            Assert.Equal(5 + 5000 + 3, end);

            // ^ still means the start of the stream, not the start of the window searched.
            var anchored = StreamSplitter.ForPattern(new Regex("^abc"), Bytes.Utf8);
            anchored.Append(Bytes.Latin1(new string('z', 3000)));
            Assert.Equal(-1, anchored.FindEnd());
            anchored.Append(Bytes.Latin1("abc"));
            Assert.Equal(-1, anchored.FindEnd());
            Assert.Equal(-1, anchored.FindEndFully());
        }

        [Fact]
        public void Case13_UntilRegexesStopAtTheirMatchTimeout()
        {
            var splitter = StreamSplitter.ForPattern(new Regex("^(a+)+$", RegexOptions.None, TimeSpan.FromMilliseconds(200)), Bytes.Utf8);
            splitter.Append(Bytes.Latin1(new string('a', 40) + "!"));
            var clock = Stopwatch.StartNew();
            Assert.Throws<RegexMatchTimeoutException>(() => splitter.FindEnd());
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(3), $"took {clock.Elapsed.TotalSeconds:0.0} s");
        }

        [Fact]
        public void Case13_ByteCountGrowsToTheCountAtMostAndHandsItsArrayOver()
        {
            const int count = 3 * 1024 * 1024 + 5;
            var splitter = StreamSplitter.ForByteCount(count);
            var chunk = new byte[64 * 1024];
            int appended = 0;
            while (splitter.FindEnd() < 0)
            {
                int n = Math.Min(chunk.Length, count + 100 - appended);
                splitter.Append(chunk.AsSpan(0, Math.Min(n, count - appended)));
                appended += Math.Min(n, count - appended);
                Assert.True(splitter.Capacity <= count, $"capacity {splitter.Capacity} over the count");
            }

            Assert.Equal(count, splitter.Capacity);
            var message = splitter.Take(count);
            Assert.Equal(count, message.Length);

            Assert.Throws<ArgumentOutOfRangeException>(() => StreamSplitter.ForByteCount(int.MaxValue));
            Assert.Throws<ArgumentOutOfRangeException>(() => StreamSplitter.ForByteCount(-1));
            Assert.Equal(0, StreamSplitter.ForByteCount(0).FindEnd());
        }

        // ---- Case 15: canonical addresses ----

        [Theory]
        [InlineData("010.0.0.0/8")]
        [InlineData("192.168.001.010")]
        [InlineData("10.0.0.01")]
        [InlineData("1")]
        [InlineData("0x7f.1")]
        [InlineData("::ffff:010.0.0.1")]
        public void Case15_NonCanonicalIPv4IsRefused(string text)
        {
            // Refused: ArgumentException (not canonical) or FormatException (not an address at all).
            var e = Record.Exception(() => AddressRange.Parse(text));
            Assert.True(e is ArgumentException || e is FormatException, $"'{text}' was taken as {e?.GetType().Name ?? AddressRange.Parse(text).ToString()}");
        }

        [Fact]
        public void Case15_CanonicalAddressesStillParse()
        {
            Assert.Equal("10.0.0.0/8", AddressRange.Parse("10.0.0.0/8").ToString());
            Assert.Equal("0.0.0.0/0", AddressRange.Parse("0.0.0.0/0").ToString());
            Assert.True(AddressRange.Parse("192.168.1.10").Contains(IPAddress.Parse("192.168.1.10")));
            Assert.True(AddressRange.Parse("2001:db8::/32").Contains(IPAddress.Parse("2001:0db8::1")));
        }

        [Fact]
        public void Case15_IPv6RangesAdmitMappedIPv4()
        {
            var any = AddressRange.Parse("::/0");
            Assert.True(any.Contains(IPAddress.Parse("10.1.2.3")));
            Assert.True(any.Contains(IPAddress.Parse("::ffff:10.1.2.3")));
            var mapped = AddressRange.Parse("::ffff:10.0.0.0/104");
            Assert.True(mapped.Contains(IPAddress.Parse("10.9.9.9")));
            Assert.True(mapped.Contains(IPAddress.Parse("::ffff:10.9.9.9")));
            Assert.False(mapped.Contains(IPAddress.Parse("11.0.0.1")));
            Assert.False(AddressRange.Parse("2001:db8::/32").Contains(IPAddress.Parse("10.1.2.3")));
        }

        [Fact]
        public void Case15_AProxyHeaderWithALeadingZeroOctetIsInvalid()
        {
            var status = ProxyProtocol.TryParse(Bytes.Latin1("PROXY TCP4 012.1.2.3 203.0.113.1 40000 443\r\n"), out _, out _, out _);
            Assert.Equal(ProxyParseStatus.Invalid, status);
            status = ProxyProtocol.TryParse(Bytes.Latin1("PROXY TCP6 ::ffff:012.1.2.3 ::1 40000 443\r\n"), out _, out _, out _);
            Assert.Equal(ProxyParseStatus.Invalid, status);
            status = ProxyProtocol.TryParse(Bytes.Latin1("PROXY TCP4 12.1.2.3 203.0.113.1 40000 443\r\n"), out var header, out _, out _);
            Assert.Equal(ProxyParseStatus.Valid, status);
            Assert.Equal(IPAddress.Parse("12.1.2.3"), header.Source.Address);
        }

        [Fact]
        public async Task Case15_AProxyHeaderWithALeadingZeroOctetIsRejectedAndCounted()
        {
            await using var server = new EchoServer(o =>
            {
                o.ProxyProtocol = true;
                o.AllowedRemoteAddresses = new[] { AddressRange.Parse("10.0.0.0/8") };
            });
            using var client = await server.ConnectAsync();
            await client.SendAsync("PROXY TCP4 012.1.2.3 203.0.113.1 40000 443\r\nhi\n");
            var (data, _) = await client.ReadToEndAsync();
            Assert.Empty(data);
            await Poll.UntilAsync(() => server.Server.ConnectionsRejected == 1, "rejection counted");
            Assert.Equal(0, server.Server.MessagesReceived);
        }

        [Fact]
        public async Task Case15_ADualStackListenersAnyRangeAdmitsIPv4Clients()
        {
            if (!Socket.OSSupportsIPv6) return;
            TcpServer server;
            try
            {
                server = TcpServer.Start(new TcpServerOptions
                {
                    Address = "::",
                    Port = 0,
                    StopTimeout = TimeSpan.FromSeconds(2),
                    AllowedRemoteAddresses = new[] { AddressRange.Parse("::/0") },
                }, EchoLineHandler.Instance);
            }
            catch (TcpException)
            {
                return; // no IPv6 here
            }

            try
            {
                using var client = await RawClient.ConnectAsync(server.Port, IPAddress.Loopback);
                await client.SendAsync("v4\n");
                Assert.Equal("v4\n", await client.ReadLineTextAsync());
                Assert.Equal(0, server.ConnectionsRejected);
            }
            finally
            {
                await Poll.WithTimeout(server.StopAsync(), "server stop", TimeSpan.FromSeconds(15));
            }
        }
    }
}
