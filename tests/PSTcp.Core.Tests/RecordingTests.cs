using System;
using System.IO;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Threading.Tasks;
using Xunit;

namespace PSTcp.Tests
{
    /// <summary>Record and replay through the core: the recording file, a recording relay, and the replay handler.</summary>
    public class RecordingTests
    {
        private static byte[] Utf8(string text) => Encoding.UTF8.GetBytes(text);

        private static TcpRecording OneConnection(RecordedEnd end, params RecordedMessage[] messages)
        {
            var recording = new TcpRecording { Target = "127.0.0.1:1" };
            var connection = new RecordedConnection { Id = 1, End = end };
            connection.Messages.AddRange(messages);
            recording.Connections.Add(connection);
            return recording;
        }

        private static string TempFile() => Path.Combine(Path.GetTempPath(), $"pstcp-recording-{Guid.NewGuid():N}.json");

        [Fact]
        public void TheFileRoundTripsEveryByteValueTextAsTextBinaryAsBase64()
        {
            var all = Enumerable.Range(0, 256).Select(i => (byte)i).ToArray();
            var text = Utf8("GET \"key\" \\ héllo ✓\r\n\t");
            var recording = OneConnection(new RecordedEnd(RecordedSide.Target, RecordedEndKind.Reset, 12.5),
                new RecordedMessage(RecordedSide.Client, 0, text),
                new RecordedMessage(RecordedSide.Target, 3.5, all),
                new RecordedMessage(RecordedSide.Client, 4, Array.Empty<byte>()),
                new RecordedMessage(RecordedSide.Target, 5, new byte[] { 0xC3 }));
            var json = recording.ToJson();
            Assert.Contains("\"text\": \"GET \\\"key\\\" \\\\ héllo ✓\\r\\n\\t\"", json);
            Assert.Contains("\"base64\": \"" + Convert.ToBase64String(all) + "\"", json);
            Assert.Contains("\"base64\": \"ww==\"", json); // a lone UTF-8 lead byte is not text

            var back = TcpRecording.Parse(json);
            var connection = Assert.Single(back.Connections);
            Assert.Equal(new[] { text, all, Array.Empty<byte>(), new byte[] { 0xC3 } }, connection.Messages.Select(m => m.Data));
            Assert.Equal(new[] { RecordedSide.Client, RecordedSide.Target, RecordedSide.Client, RecordedSide.Target }, connection.Messages.Select(m => m.From));
            Assert.Equal(3.5, connection.Messages[1].At);
            Assert.Equal(RecordedSide.Target, connection.End.By);
            Assert.Equal(RecordedEndKind.Reset, connection.End.How);
            Assert.Equal("127.0.0.1:1", back.Target);
            Assert.Equal(json, back.ToJson());
        }

        [Fact]
        public void SaveWritesAWholeFileAndLeavesNoTemporaryFile()
        {
            var file = TempFile();
            try
            {
                var recording = OneConnection(null, new RecordedMessage(RecordedSide.Client, 0, Utf8("a\n")));
                recording.Save(file);
                recording.Connections.Add(new RecordedConnection { Id = 2 });
                recording.Save(file);
                Assert.Equal(2, TcpRecording.Load(file).Connections.Count);
                Assert.Empty(Directory.GetFiles(Path.GetDirectoryName(file), "." + Path.GetFileName(file) + "*"));
            }
            finally
            {
                File.Delete(file);
            }
        }

        [Theory]
        [InlineData("", "line 1, column 1: the file is empty")]
        [InlineData("{ \"connections\": [\n  { \"messages\": [ ] }", "line 2, column 22: the file ends inside an array")]
        [InlineData("{ \"connections\": [ { \"messages\": [\n  { \"from\": \"Server\", \"text\": \"x\" } ] } ] }", "line 2, column 13: connection 1, message 1: \"Server\" is not a side")]
        [InlineData("{ \"connections\": [ { \"messages\": [\n  { \"from\": \"Client\" } ] } ] }", "line 2, column 3: connection 1, message 1: give its bytes as either \"text\" or \"base64\"")]
        [InlineData("{ \"connections\": [ { \"messages\": [ { \"from\": \"Client\", \"text\": \"a\nb\" } ] } ] }", "a string runs past the end of its line")]
        [InlineData("{ \"connections\": [ { \"messages\": [ { \"from\": \"Client\", \"text\": \"\\q\" } ] } ] }", "'\\q' is not a JSON escape")]
        [InlineData("{ \"connections\": [ { \"messages\": [ { \"from\": \"Client\", \"at\": -1, \"text\": \"a\" } ] } ] }", "\"at\" must not be negative")]
        [InlineData("{ \"version\": 2, \"connections\": [] }", "version 2 is not supported")]
        [InlineData("[1, 2]", "the file must be a JSON object")]
        [InlineData("{ \"connections\": [] } x", "unexpected 'x' after the end of the JSON document")]
        [InlineData("{ \"connections\": [ { \"messages\": [], \"end\": { \"by\": \"Client\", \"how\": \"Explode\" } } ] }", "end \"how\" must be Close, HalfClose or Reset")]
        public void AMalformedFileIsRecordingInvalidNamingTheProblemAndWhere(string json, string expected)
        {
            var error = Assert.Throws<TcpException>(() => TcpRecording.Parse(json, "test.json"));
            Assert.Equal(TcpErrorKind.RecordingInvalid, error.Kind);
            Assert.StartsWith("The recording test.json is invalid at line ", error.Message);
            Assert.Contains(expected, error.Message);
        }

        [Fact]
        public void DeeplyNestedJsonIsRefusedNotAStackOverflow()
        {
            var error = Assert.Throws<TcpException>(() => TcpRecording.Parse(new string('[', 100_000)));
            Assert.Contains("nested too deeply", error.Message);
        }

        private static (RelayRecorder Recorder, EchoServer Relay) StartRecordingRelay(int targetPort, string file, RecordMode mode = RecordMode.All)
        {
            var handler = new RelayHandler("127.0.0.1", targetPort, new ConnectionOptions(), TimeSpan.FromSeconds(5), queueMessages: false);
            var recorder = new RelayRecorder(file, mode, $"127.0.0.1:{targetPort}");
            handler.Recorder = recorder;
            var relay = new EchoServer(o =>
            {
                o.AcceptedDirection = MessageDirection.ClientToTarget;
                o.QueueMessages = false;
                o.Framing = Framing.FramingKind.Raw;
            }, handler);
            return (recorder, relay);
        }

        [Fact]
        public async Task ARelayRecordsBothDirectionsAndAHalfCloseByTheClient()
        {
            var file = TempFile();
            var target = new TcpListener(IPAddress.Loopback, 0);
            target.Start();
            try
            {
                var (recorder, relay) = StartRecordingRelay(((IPEndPoint)target.LocalEndpoint).Port, file);
                await using (relay)
                {
                    using var client = await relay.ConnectAsync();
                    using var peer = await Poll.WithTimeout(target.AcceptSocketAsync(), "the relay's target connection");
                    await client.SendAsync("hello\n");
                    client.Socket.Shutdown(SocketShutdown.Send);
                    var got = new byte[6];
                    int n = 0;
                    while (n < 6) n += await peer.ReceiveAsync(got.AsMemory(n), SocketFlags.None);
                    Assert.Equal(0, await peer.ReceiveAsync(new byte[1].AsMemory(), SocketFlags.None)); // the FIN passed on
                    await peer.SendAsync(Bytes.Latin1("bye\n"), SocketFlags.None);
                    peer.Shutdown(SocketShutdown.Send);
                    var (data, end) = await client.ReadToEndAsync();
                    Assert.Equal("bye\n", Encoding.ASCII.GetString(data));
                    Assert.Equal(EndKind.Eof, end);
                    await Poll.UntilAsync(() => recorder.Recorded == 1, "the connection to be written");
                }

                var connection = Assert.Single(TcpRecording.Load(file).Connections);
                Assert.Equal(new[] { "hello\n", "bye\n" }, connection.Messages.Select(m => Encoding.ASCII.GetString(m.Data)));
                Assert.Equal(new[] { RecordedSide.Client, RecordedSide.Target }, connection.Messages.Select(m => m.From));
                Assert.True(connection.Messages[1].At >= connection.Messages[0].At);
                Assert.Equal(RecordedSide.Client, connection.End.By);
                Assert.Equal(RecordedEndKind.HalfClose, connection.End.How);
            }
            finally
            {
                target.Stop();
                File.Delete(file);
            }
        }

        [Fact]
        public async Task ARelayRecordsAResetByTheTarget()
        {
            var file = TempFile();
            var target = new TcpListener(IPAddress.Loopback, 0);
            target.Start();
            try
            {
                var (recorder, relay) = StartRecordingRelay(((IPEndPoint)target.LocalEndpoint).Port, file);
                await using (relay)
                {
                    using var client = await relay.ConnectAsync();
                    using var peer = await Poll.WithTimeout(target.AcceptSocketAsync(), "the relay's target connection");
                    await client.SendAsync("x\n");
                    var got = new byte[2];
                    int n = 0;
                    while (n < 2) n += await peer.ReceiveAsync(got.AsMemory(n), SocketFlags.None);
                    peer.LingerState = new LingerOption(true, 0);
                    peer.Close();
                    await client.ReadToEndAsync();
                    await Poll.UntilAsync(() => recorder.Recorded == 1, "the connection to be written");
                }

                var connection = Assert.Single(TcpRecording.Load(file).Connections);
                Assert.Equal(RecordedSide.Target, connection.End.By);
                Assert.Equal(RecordedEndKind.Reset, connection.End.How);
            }
            finally
            {
                target.Stop();
                File.Delete(file);
            }
        }

        [Fact]
        public async Task AConnectionWhoseTargetCouldNotBeReachedIsNotRecorded()
        {
            var file = TempFile();
            var closed = new TcpListener(IPAddress.Loopback, 0);
            closed.Start();
            int port = ((IPEndPoint)closed.LocalEndpoint).Port;
            closed.Stop();
            try
            {
                var (recorder, relay) = StartRecordingRelay(port, file);
                await using (relay)
                {
                    using var client = await relay.ConnectAsync();
                    await client.SendAsync("hello\n");
                    await client.ReadToEndAsync();
                    await Poll.UntilAsync(() => relay.Server.ConnectionCount == 0, "the client to be closed");
                }

                Assert.Equal(0, recorder.Recorded);
                Assert.False(File.Exists(file));
            }
            finally
            {
                File.Delete(file);
            }
        }

        private static EchoServer StartReplay(TcpRecording recording, bool timing = false) =>
            new EchoServer(o => o.Framing = Framing.FramingKind.Raw, new ReplayHandler(recording, "test.json", timing));

        [Fact]
        public async Task ReplayPairsEachConnectionByItsFirstMessageHoweverItsWritesAreCut()
        {
            var recording = new TcpRecording();
            foreach (var (id, ask, answer) in new[] { (1, "GET a\n", "1\n"), (2, "GET b\n", "2\n") })
            {
                var c = new RecordedConnection { Id = id, End = new RecordedEnd(RecordedSide.Target, RecordedEndKind.Close, 2) };
                c.Messages.Add(new RecordedMessage(RecordedSide.Client, 0, Utf8(ask)));
                c.Messages.Add(new RecordedMessage(RecordedSide.Target, 1, Utf8(answer)));
                recording.Connections.Add(c);
            }

            await using var replay = StartReplay(recording);
            using var b = await replay.ConnectAsync();
            await b.SendAsync("GE");
            Assert.True(await b.StaysQuietAsync(TimeSpan.FromMilliseconds(100)));
            await b.SendAsync("T b\n");
            var (bData, bEnd) = await b.ReadToEndAsync();
            Assert.Equal("2\n", Encoding.ASCII.GetString(bData));
            Assert.Equal(EndKind.Eof, bEnd);

            using var a = await replay.ConnectAsync();
            await a.SendAsync("GET a\n");
            Assert.Equal("1\n", Encoding.ASCII.GetString((await a.ReadToEndAsync()).Data));
            Assert.Equal(0, replay.Server.ErrorCount);

            using var third = await replay.ConnectAsync();
            await third.SendAsync("GET c\n");
            Assert.Empty((await third.ReadToEndAsync()).Data);
            var miss = replay.Server.LastError;
            Assert.Equal(TcpErrorKind.ReplayMiss, miss.Kind);
            Assert.Contains("its first message \"GET c\\n\" pairs with no recorded connection", miss.Message);
            Assert.Contains("the closest, connection 1's first message, agrees for 4 bytes, then expects \"GET a\\n\" where it got \"GET c\\n\"", miss.Message);
            Assert.Contains("begin with \"GET a\\n\" (used), \"GET b\\n\" (used)", miss.Message);
        }

        [Fact]
        public async Task AFirstMessageHeldWholeIsAnsweredAlthoughAnEarlierRecordingCouldStillMatch()
        {
            var recording = new TcpRecording();
            foreach (var (id, ask, answer) in new[] { (1, "GET a\nGET b\n", "1\n2\n"), (2, "GET a\n", "only a\n") })
            {
                var c = new RecordedConnection { Id = id, End = new RecordedEnd(RecordedSide.Target, RecordedEndKind.Close, 2) };
                c.Messages.Add(new RecordedMessage(RecordedSide.Client, 0, Utf8(ask)));
                c.Messages.Add(new RecordedMessage(RecordedSide.Target, 1, Utf8(answer)));
                recording.Connections.Add(c);
            }

            await using var replay = StartReplay(recording);
            using var client = await replay.ConnectAsync();
            await client.SendAsync("GET a\n");
            Assert.Equal("only a\n", Encoding.ASCII.GetString((await client.ReadToEndAsync()).Data));
            using var pipelined = await replay.ConnectAsync();
            await pipelined.SendAsync("GET a\nGET b\n");
            Assert.Equal("1\n2\n", Encoding.ASCII.GetString((await pipelined.ReadToEndAsync()).Data));
        }

        [Fact]
        public async Task AMissIsAReplayMissShowingWhatWasAskedAndExpectedAndTheConnectionCloses()
        {
            var recording = OneConnection(null,
                new RecordedMessage(RecordedSide.Client, 0, Utf8("PING\r\n")),
                new RecordedMessage(RecordedSide.Target, 1, Utf8("PONG\r\n")),
                new RecordedMessage(RecordedSide.Client, 2, Utf8("GET a\r\n")),
                new RecordedMessage(RecordedSide.Target, 3, Utf8("1\r\n")));
            await using var replay = StartReplay(recording);
            using var client = await replay.ConnectAsync();
            await client.SendAsync("PING\r\n");
            Assert.Equal("PONG\r\n", Encoding.ASCII.GetString(await client.ReadExactlyAsync(6)));
            await client.SendAsync("GET b\r\n");
            var (data, _) = await client.ReadToEndAsync();
            Assert.Empty(data);
            var error = replay.Server.LastError;
            Assert.Equal(TcpErrorKind.ReplayMiss, error.Kind);
            Assert.Contains("it sent \"GET b\\r\\n\"", error.Message);
            Assert.Contains("expects \"GET a\\r\\n\"", error.Message);
            Assert.Contains("message 3", error.Message);
            Assert.Contains("the first 4 bytes of it matched", error.Message);
        }

        [Fact]
        public async Task AServiceThatSpeaksFirstIsReplayedOnConnectAndItsRecordedPaceKept()
        {
            var recording = OneConnection(new RecordedEnd(RecordedSide.Target, RecordedEndKind.Close, 400),
                new RecordedMessage(RecordedSide.Target, 0, Utf8("220 ready\r\n")),
                new RecordedMessage(RecordedSide.Client, 10, Utf8("QUIT\r\n")),
                new RecordedMessage(RecordedSide.Target, 310, Utf8("221 bye\r\n")));
            await using var replay = StartReplay(recording, timing: true);
            using var client = await replay.ConnectAsync();
            Assert.Equal("220 ready\r\n", Encoding.ASCII.GetString(await client.ReadExactlyAsync(11)));
            var watch = System.Diagnostics.Stopwatch.StartNew();
            await client.SendAsync("QUIT\r\n");
            var (data, end) = await client.ReadToEndAsync();
            Assert.Equal("221 bye\r\n", Encoding.ASCII.GetString(data));
            Assert.Equal(EndKind.Eof, end);
            // 300 ms before the answer, 90 more before the close.
            Assert.True(watch.ElapsedMilliseconds >= 350, $"replayed in {watch.ElapsedMilliseconds} ms");
        }
    }
}
