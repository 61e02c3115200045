using System;
using System.Buffers;
using System.Collections.Generic;
using System.Linq;
using System.Text;
using PSTcp.Framing;
using Xunit;

namespace PSTcp.Tests
{
    /// <summary>The framers behind the Framer contract, fed the way a connection feeds them.</summary>
    public class FramerTests
    {
        private const int Max = 300;

        /// <summary>What framing a stream gave: each frame's payload and whole frame, then how it stopped.</summary>
        private sealed class Framed
        {
            public List<byte[]> Payloads { get; } = new List<byte[]>();
            public List<byte[]> Frames { get; } = new List<byte[]>();
            public bool TooLong { get; set; }
            public int TooLongAt { get; set; } = -1;
            public byte[] Left { get; set; } = Array.Empty<byte>();
        }

        /// <summary>Appends <paramref name="stream"/> to <paramref name="pending"/> chunk by chunk (the rest at the end); yields how much is in after each.</summary>
        private static IEnumerable<int> Feed(byte[] stream, IEnumerable<int> chunks, List<byte> pending)
        {
            int offset = 0;
            foreach (int size in chunks.Concat(new[] { int.MaxValue }))
            {
                int n = Math.Min(size, stream.Length - offset);
                if (n <= 0) yield break;
                pending.AddRange(new ArraySegment<byte>(stream, offset, n));
                offset += n;
                yield return offset;
            }
        }

        /// <summary>
        /// Feeds <paramref name="stream"/> in chunks as the connection will: the unconsumed bytes
        /// grow by each chunk, TryReadFrame is called until NeedMoreData, each frame's FrameLength
        /// is consumed; at the end the rest goes to TryReadFinal.
        /// </summary>
        private static Framed Run(Framer framer, byte[] stream, IEnumerable<int> chunks, bool final = true)
        {
            var result = new Framed();
            var pending = new List<byte>();
            foreach (int offset in Feed(stream, chunks, pending))
            {
                while (true)
                {
                    var buffer = pending.ToArray();
                    var status = framer.TryReadFrame(buffer, out var frame);
                    if (status == FrameStatus.NeedMoreData) break;
                    Assert.NotEqual(FrameStatus.Invalid, status);
                    if (status == FrameStatus.TooLong)
                    {
                        result.TooLong = true;
                        result.TooLongAt = offset;
                        result.Left = buffer;
                        return result;
                    }

                    Assert.InRange(frame.FrameLength, 1, buffer.Length);
                    Assert.InRange(frame.PayloadOffset + frame.PayloadLength, 0, frame.FrameLength);
                    result.Payloads.Add(PayloadOf(framer, buffer, 0, frame));
                    result.Frames.Add(buffer.AsSpan(0, frame.FrameLength).ToArray());
                    pending.RemoveRange(0, frame.FrameLength);
                }
            }

            if (final && pending.Count > 0)
            {
                var rest = pending.ToArray();
                if (framer.TryReadFinal(rest, out var last) == FrameStatus.Frame)
                {
                    result.Payloads.Add(rest.AsSpan(last.PayloadOffset, last.PayloadLength).ToArray());
                    result.Frames.Add(rest.AsSpan(0, last.FrameLength).ToArray());
                    pending.RemoveRange(0, last.FrameLength);
                }
            }

            result.Left = pending.ToArray();
            return result;
        }

        /// <summary>
        /// As <see cref="Run"/>, but framing each read's bytes in batches with ReadFrames, as the
        /// connection does: at most <paramref name="room"/> frames per call; 0 counts frames
        /// without recording them (Payloads then holds one null per frame).
        /// </summary>
        private static Framed RunBatched(Framer framer, byte[] stream, IEnumerable<int> chunks, int room)
        {
            var result = new Framed();
            var pending = new List<byte>();
            var frames = new Frame[room];
            foreach (int offset in Feed(stream, chunks, pending))
            {
                while (true)
                {
                    var buffer = pending.ToArray();
                    var status = framer.ReadFrames(buffer, frames, room == 0 ? int.MaxValue : room, out int count, out int consumed);
                    Assert.InRange(consumed, 0, buffer.Length);
                    int at = 0;
                    for (int i = 0; i < count; i++)
                    {
                        if (room == 0)
                        {
                            result.Payloads.Add(null);
                            continue;
                        }

                        var f = frames[i];
                        // Frames follow each other: each starts where the last ended.
                        int frameStart = at;
                        result.Payloads.Add(PayloadOf(framer, buffer, frameStart, new Frame(f.PayloadOffset - frameStart, f.PayloadLength, f.FrameLength)));
                        Assert.InRange(f.PayloadOffset, frameStart, frameStart + f.FrameLength);
                        result.Frames.Add(buffer.AsSpan(frameStart, f.FrameLength).ToArray());
                        at += f.FrameLength;
                    }

                    if (room != 0) Assert.Equal(at, consumed);
                    pending.RemoveRange(0, consumed);
                    if (status == FrameStatus.TooLong)
                    {
                        result.TooLong = true;
                        result.TooLongAt = offset;
                        result.Left = pending.ToArray();
                        return result;
                    }

                    if (status == FrameStatus.NeedMoreData) break;
                    Assert.Equal(room, count);
                }
            }

            result.Left = pending.ToArray();
            return result;
        }

        /// <summary>The payload of the frame at <paramref name="frameStart"/> (offsets from there), made one piece as the connection does.</summary>
        private static byte[] PayloadOf(Framer framer, byte[] buffer, int frameStart, Frame frame)
        {
            var bytes = buffer.AsSpan(frameStart, frame.FrameLength).ToArray();
            framer.Compact(bytes, frame);
            return bytes.AsSpan(frame.PayloadOffset, frame.PayloadLength).ToArray();
        }

        private static IEnumerable<int> RandomChunks(Random random, int total)
        {
            for (int sent = 0; sent < total;)
            {
                // Mostly small pieces (prefixes and terminators split), sometimes big ones.
                int n = random.Next(4) == 0 ? random.Next(1, 200) : random.Next(1, 4);
                sent += n;
                yield return n;
            }
        }

        private static MessageFraming Framing(FramingKind kind, Action<ConnectionOptions> configure = null)
        {
            var options = new ConnectionOptions { Framing = kind, MaxLineLength = Max };
            configure?.Invoke(options);
            return MessageFraming.FromOptions(options);
        }

        public static IEnumerable<object[]> Framings() => new[]
        {
            new object[] { "Line", FramingKind.Line, null },
            new object[] { "Line UTF-16", FramingKind.Line, (Action<ConnectionOptions>)(o => o.Encoding = Encoding.Unicode) },
            new object[] { "Line UTF-32BE", FramingKind.Line, (Action<ConnectionOptions>)(o => o.Encoding = new UTF32Encoding(true, false)) },
            new object[] { "Delimiter CRLF", FramingKind.Delimiter, (Action<ConnectionOptions>)(o => o.DelimiterText = "\r\n") },
            new object[] { "Delimiter NUL", FramingKind.Delimiter, (Action<ConnectionOptions>)(o => o.Delimiter = new byte[] { 0 }) },
            new object[] { "Delimiter abab", FramingKind.Delimiter, (Action<ConnectionOptions>)(o => o.Delimiter = Bytes.Latin1("abab")) },
            new object[] { "Delimiter UTF-16 ;;", FramingKind.Delimiter, (Action<ConnectionOptions>)(o => { o.Encoding = Encoding.Unicode; o.DelimiterText = ";;"; }) },
            new object[] { "LengthPrefix 1", FramingKind.LengthPrefix, (Action<ConnectionOptions>)(o => o.PrefixSize = 1) },
            new object[] { "LengthPrefix 2 LE", FramingKind.LengthPrefix, (Action<ConnectionOptions>)(o => { o.PrefixSize = 2; o.ByteOrder = ByteOrder.LittleEndian; }) },
            new object[] { "LengthPrefix 4", FramingKind.LengthPrefix, null },
            new object[] { "LengthPrefix 8 LE", FramingKind.LengthPrefix, (Action<ConnectionOptions>)(o => { o.PrefixSize = 8; o.ByteOrder = ByteOrder.LittleEndian; }) },
            new object[] { "FixedLength 7", FramingKind.FixedLength, (Action<ConnectionOptions>)(o => o.MessageLength = 7) },
            new object[] { "FixedLength 1", FramingKind.FixedLength, (Action<ConnectionOptions>)(o => o.MessageLength = 1) },
            new object[] { "LengthPrefix 3 LE", FramingKind.LengthPrefix, (Action<ConnectionOptions>)(o => { o.PrefixSize = 3; o.ByteOrder = ByteOrder.LittleEndian; }) },
            new object[] { "PostgreSQL", FramingKind.LengthPrefix, (Action<ConnectionOptions>)(o => { o.PrefixOffset = 1; o.PrefixSize = 4; o.LengthAdjustment = -4; }) },
            new object[] { "MQTT", FramingKind.LengthPrefix, (Action<ConnectionOptions>)(o => { o.PrefixOffset = 1; o.PrefixEncoding = PrefixEncoding.Varint; }) },
            new object[] { "Varint", FramingKind.LengthPrefix, (Action<ConnectionOptions>)(o => o.PrefixEncoding = PrefixEncoding.Varint) },
            new object[] { "MySQL", FramingKind.LengthPrefix, (Action<ConnectionOptions>)(o => { o.PrefixSize = 3; o.ByteOrder = ByteOrder.LittleEndian; o.LengthAdjustment = 1; }) },
            new object[] { "TLS records", FramingKind.LengthPrefix, (Action<ConnectionOptions>)(o => { o.PrefixOffset = 3; o.PrefixSize = 2; }) },
            new object[] { "OctetCount", FramingKind.OctetCount, null },
            new object[] { "Netstring", FramingKind.Netstring, null },
            new object[] { "Headers", FramingKind.Headers, null },
            new object[] { "Headers X-Len", FramingKind.Headers, (Action<ConnectionOptions>)(o => o.LengthHeader = "X-Len") },
            new object[] { "Marker MLLP", FramingKind.Marker, (Action<ConnectionOptions>)(o => { o.StartMarker = new byte[] { 0x0B }; o.EndMarker = new byte[] { 0x1C, 0x0D }; }) },
            new object[] { "Marker end only", FramingKind.Marker, (Action<ConnectionOptions>)(o => o.EndMarker = Bytes.Latin1("]]>")) },
        };

        /// <summary>Random payloads (CR, LF, NUL and 0xFF likely) that the framing can carry and give back unchanged.</summary>
        private static List<byte[]> Payloads(Random random, MessageFraming framing, int count)
        {
            byte[] alphabet = { 0x0D, 0x0A, 0x00, 0xFF, (byte)'a', (byte)'b', (byte)';', 0x80 };
            var list = new List<byte[]>();
            while (list.Count < count)
            {
                if (framing.Kind == FramingKind.Headers)
                {
                    list.Add(HeaderMessage(random, framing.LengthHeader));
                    continue;
                }

                int length = framing.Kind == FramingKind.FixedLength ? framing.MessageLength : random.Next(0, 40);
                if (framing.Kind != FramingKind.FixedLength && random.Next(10) == 0) length = random.Next(0, Max + 1);
                var payload = new byte[length];
                for (int i = 0; i < length; i++) payload[i] = random.Next(3) == 0 ? (byte)random.Next(256) : alphabet[random.Next(alphabet.Length)];
                if (Carries(framing, payload)) list.Add(payload);
            }

            return list;
        }

        /// <summary>A random header + body message: a start line, headers (the length one or not), CRLF or LF line ends, a body of any bytes.</summary>
        private static byte[] HeaderMessage(Random random, string lengthHeader)
        {
            string eol = random.Next(4) == 0 ? "\n" : "\r\n";
            int bodyLength = random.Next(3) == 0 ? 0 : random.Next(0, random.Next(8) == 0 ? 200 : 30);
            var head = new StringBuilder("INVITE sip:bob@example.com SIP/2.0" + eol);
            for (int i = random.Next(4); i > 0; i--) head.Append("X-H").Append(i).Append(": ").Append(new string('v', random.Next(20))).Append(eol);
            if (bodyLength > 0 || random.Next(2) == 0)
            {
                string name = random.Next(2) == 0 ? lengthHeader : lengthHeader.ToLowerInvariant();
                head.Append(name).Append(random.Next(2) == 0 ? ": " : ":\t ").Append(bodyLength).Append(random.Next(2) == 0 ? " " : "").Append(eol);
            }

            head.Append(eol);
            var body = new byte[bodyLength];
            for (int i = 0; i < bodyLength; i++) body[i] = (byte)random.Next(256);
            return Bytes.Concat(Bytes.Latin1(head.ToString()), body);
        }

        private static bool Carries(MessageFraming framing, byte[] payload)
        {
            if (payload.Length > Max) return false;
            if (framing.Kind == FramingKind.LengthPrefix && payload.Length < framing.PrefixOffset + Math.Max(0, framing.LengthAdjustment)) return false;
            if (framing.Kind == FramingKind.Marker)
            {
                // The end marker must first occur right after the payload.
                var whole = payload.Concat(framing.EndMarker.ToArray()).ToArray();
                return whole.AsSpan().IndexOf(framing.EndMarker.Span) == payload.Length;
            }

            if (framing.Kind == FramingKind.LengthPrefix && framing.PrefixSize == 1 && payload.Length > 255) return false;
            var terminator = framing.Terminator.ToArray();
            if (framing.Kind == FramingKind.Delimiter || framing.Kind == FramingKind.Line)
            {
                // Line aligns on LF's code unit; a text delimiter on the encoding's (the byte delimiters here are in UTF-8).
                int unit = framing.Kind == FramingKind.Line ? terminator.Length : framing.Encoding.GetByteCount("\n");
                if (payload.Length % unit != 0) return false;
                // The terminator must first occur, aligned, right after the payload.
                var whole = payload.Concat(terminator).ToArray();
                for (int at = 0; at < payload.Length; at += unit)
                {
                    if (whole.AsSpan(at).StartsWith(terminator)) return false;
                }

                if (framing.Kind == FramingKind.Line)
                {
                    // A CR (as encoded) at the end would be taken for CRLF.
                    var cr = framing.Encoding.GetBytes("\r");
                    if (payload.AsSpan().EndsWith(cr) && payload.Length >= cr.Length && (payload.Length - cr.Length) % unit == 0) return false;
                }
            }

            return true;
        }

        private static byte[] WriteAll(MessageFraming framing, IEnumerable<byte[]> payloads)
        {
            var writer = new ArrayBufferWriter<byte>(16);
            foreach (var p in payloads) framing.WriteFrame(p, writer);
            return writer.WrittenSpan.ToArray();
        }

        [Theory]
        [MemberData(nameof(Framings))]
        public void RandomChunkingEqualsWholeBufferFraming(string name, FramingKind kind, Action<ConnectionOptions> configure)
        {
            var framing = Framing(kind, configure);
            for (int seed = 0; seed < 40; seed++)
            {
                var random = new Random(seed);
                var payloads = Payloads(random, framing, 30);
                var stream = WriteAll(framing, payloads);
                var whole = Run(framing.CreateFramer(), stream, new[] { stream.Length });
                var chunked = Run(framing.CreateFramer(), stream, RandomChunks(random, stream.Length));
                var byteByByte = Run(framing.CreateFramer(), stream, Enumerable.Repeat(1, stream.Length));

                // WriteFrame round trips: the framer gives back exactly the payloads written.
                Assert.False(whole.TooLong, name);
                Assert.Equal(payloads.Select(Bytes.Show), whole.Payloads.Select(Bytes.Show));
                Assert.Equal(stream, whole.Frames.SelectMany(f => f).ToArray());
                Assert.Equal(whole.Payloads.Select(Bytes.Show), chunked.Payloads.Select(Bytes.Show));
                Assert.Equal(whole.Frames.Select(Bytes.Show), chunked.Frames.Select(Bytes.Show));
                Assert.Equal(whole.Payloads.Select(Bytes.Show), byteByByte.Payloads.Select(Bytes.Show));
                Assert.Empty(chunked.Left);
            }
        }

        [Theory]
        [MemberData(nameof(Framings))]
        public void BatchedFramingEqualsFrameByFrame(string name, FramingKind kind, Action<ConnectionOptions> configure)
        {
            var framing = Framing(kind, configure);
            for (int seed = 0; seed < 40; seed++)
            {
                var random = new Random(seed);
                var payloads = Payloads(random, framing, 30);
                var stream = WriteAll(framing, payloads);
                var chunks = RandomChunks(random, stream.Length).ToList();
                var single = Run(framing.CreateFramer(), stream, chunks, final: false);
                foreach (int room in new[] { 1, 3, 64 })
                {
                    var batched = RunBatched(framing.CreateFramer(), stream, chunks, room);
                    Assert.Equal(single.Payloads.Select(Bytes.Show), batched.Payloads.Select(Bytes.Show));
                    Assert.Equal(single.Frames.Select(Bytes.Show), batched.Frames.Select(Bytes.Show));
                    Assert.Equal(Bytes.Show(single.Left), Bytes.Show(batched.Left));
                }

                var counted = RunBatched(framing.CreateFramer(), stream, chunks, room: 0);
                Assert.True(single.Payloads.Count == counted.Payloads.Count, $"{name}, seed {seed}: {single.Payloads.Count} frames one by one, {counted.Payloads.Count} counted in a batch");
                Assert.Equal(Bytes.Show(single.Left), Bytes.Show(counted.Left));
            }
        }

        [Fact]
        public void RawGivesEachReadAsOneMessageAndLosesNothing()
        {
            var random = new Random(7);
            var stream = Enumerable.Range(0, 5000).Select(_ => (byte)random.Next(256)).ToArray();
            var framer = Framing(FramingKind.Raw).CreateFramer();
            var chunks = RandomChunks(random, stream.Length).ToList();
            var framed = Run(framer, stream, chunks);
            Assert.Equal(stream, framed.Payloads.SelectMany(p => p).ToArray());
            // A read longer than the limit is cut at the limit, never refused.
            var big = Run(Framing(FramingKind.Raw).CreateFramer(), stream, new[] { stream.Length });
            Assert.All(big.Payloads, p => Assert.InRange(p.Length, 1, Max));
            Assert.Equal(stream, big.Payloads.SelectMany(p => p).ToArray());
        }

        [Theory]
        [InlineData(1)]
        [InlineData(2)]
        [InlineData(4)]
        [InlineData(8)]
        public void LengthPrefixAcceptsTheLimitAndRefusesLimitPlusOneOnThePrefixAlone(int prefixSize)
        {
            foreach (var order in new[] { ByteOrder.BigEndian, ByteOrder.LittleEndian })
            {
                int max = prefixSize == 1 ? 200 : Max;
                var framing = MessageFraming.FromOptions(new ConnectionOptions { Framing = FramingKind.LengthPrefix, PrefixSize = prefixSize, ByteOrder = order, MaxLineLength = max });
                var exact = WriteAll(framing, new[] { new byte[max] });
                var ok = Run(framing.CreateFramer(), exact, Enumerable.Repeat(1, exact.Length));
                Assert.False(ok.TooLong);
                Assert.Equal(max, Assert.Single(ok.Payloads).Length);

                // limit+1 declared: refused as soon as the prefix is in, before any payload byte.
                var over = WriteAll(framing, new[] { new byte[max + 1] });
                var refused = Run(framing.CreateFramer(), over, Enumerable.Repeat(1, over.Length));
                Assert.True(refused.TooLong);
                Assert.Equal(prefixSize, refused.TooLongAt);
            }
        }

        [Fact]
        public void LengthPrefixRefusesDeclaredLengthsBeyondIntRange()
        {
            var framer = new LengthPrefixFramer(8, ByteOrder.BigEndian, int.MaxValue);
            var prefix = new byte[] { 0x80, 0, 0, 0, 0, 0, 0, 0 };
            Assert.Equal(FrameStatus.TooLong, framer.TryReadFrame(prefix, out _));
        }

        [Theory]
        [InlineData("Line", "\n", false)]
        [InlineData("Line CRLF", "\r\n", false)]
        [InlineData("Delimiter", "<>", true)]
        public void TerminatedFramesAcceptTheLimitAndRefuseLimitPlusOne(string name, string terminator, bool delimiter)
        {
            var framing = delimiter
                ? Framing(FramingKind.Delimiter, o => o.DelimiterText = terminator)
                : Framing(FramingKind.Line);
            var exact = Bytes.Latin1(new string('x', Max) + terminator);
            var ok = Run(framing.CreateFramer(), exact, Enumerable.Repeat(1, exact.Length));
            Assert.False(ok.TooLong, name);
            Assert.Equal(Max, Assert.Single(ok.Payloads).Length);
            foreach (int room in new[] { 0, 4 })
            {
                // Batched framing (the connection's) draws the same lines.
                var batchedOk = RunBatched(framing.CreateFramer(), exact, Enumerable.Repeat(1, exact.Length), room);
                Assert.False(batchedOk.TooLong, name);
                Assert.Single(batchedOk.Payloads);
                var two = Bytes.Latin1("ab" + terminator + new string('x', Max + 1) + terminator);
                var batchedOver = RunBatched(framing.CreateFramer(), two, new[] { two.Length }, room);
                Assert.True(batchedOver.TooLong, name);
                Assert.Single(batchedOver.Payloads);
                var batchedDribble = RunBatched(framing.CreateFramer(), Bytes.Latin1(new string('x', Max + 10)), Enumerable.Repeat(1, Max + 10), room);
                Assert.True(batchedDribble.TooLong, name);
                Assert.InRange(batchedDribble.TooLongAt, Max + 1, Max + terminator.Length + 1);
            }

            var over = Bytes.Latin1(new string('x', Max + 1) + terminator);
            Assert.True(Run(framing.CreateFramer(), over, new[] { over.Length }).TooLong, name);
            // Dribbled without its terminator, limit+1 bytes is refused by the time a little more than the limit is in.
            var endless = Bytes.Latin1(new string('x', Max + 10));
            var dribbled = Run(framing.CreateFramer(), endless, Enumerable.Repeat(1, endless.Length), final: false);
            Assert.True(dribbled.TooLong, name);
            Assert.InRange(dribbled.TooLongAt, Max + 1, Max + terminator.Length + 1);
            // A final fragment of exactly the limit is a message; one byte more is not.
            Assert.Equal(FrameStatus.Frame, framing.CreateFramer().TryReadFinal(new byte[Max], out _));
            Assert.Equal(FrameStatus.TooLong, framing.CreateFramer().TryReadFinal(new byte[Max + 1], out _));
        }

        [Theory]
        [InlineData("unicode")]
        [InlineData("utf-16BE")]
        [InlineData("utf-32")]
        [InlineData("utf-32BE")]
        public void MultiByteLinesSplitOnlyAtAlignedLineFeeds(string encodingName)
        {
            var encoding = Encoding.GetEncoding(encodingName);
            var framing = Framing(FramingKind.Line, o => o.Encoding = encoding);
            // Characters whose code units hold the byte 0x0A, and LF/CR bytes straddling code units.
            string[] lines = { "\u0A0A\u0D0A", "AB", "\u0A41\u0100", "\u4100\u0A00x", "", "\u0A0D\r", "CD" };
            var stream = encoding.GetBytes(string.Join("\n", lines.Take(lines.Length - 1)) + "\r\n" + lines[^1] + "\n");
            var framed = Run(framing.CreateFramer(), stream, Enumerable.Repeat(1, stream.Length));
            Assert.Equal(lines, framed.Payloads.Select(p => encoding.GetString(p)).ToArray());
        }

        [Fact]
        public void TextDelimiterInUtf16MatchesOnlyOnCodeUnitBoundaries()
        {
            var framing = Framing(FramingKind.Delimiter, o => { o.Encoding = Encoding.Unicode; o.DelimiterText = "\r\n"; });
            // U+0D41 U+0A00 U+4100 are the bytes 41 0D 00 0A 00 41: CR LF as encoded, but unaligned.
            var stream = Encoding.Unicode.GetBytes("\u0D41\u0A00\u4100\r\nnext\r\n");
            var framed = Run(framing.CreateFramer(), stream, Enumerable.Repeat(1, stream.Length));
            Assert.Equal(new[] { "\u0D41\u0A00\u4100", "next" }, framed.Payloads.Select(p => Encoding.Unicode.GetString(p)).ToArray());
        }

        [Fact]
        public void FixedLengthWriteFrameRefusesOtherLengths()
        {
            var framing = Framing(FramingKind.FixedLength, o => o.MessageLength = 3);
            Assert.Throws<ArgumentException>(() => framing.WriteFrame(new byte[2], new ArrayBufferWriter<byte>()));
            var small = Framing(FramingKind.LengthPrefix, o => o.PrefixSize = 1);
            Assert.Throws<ArgumentException>(() => small.WriteFrame(new byte[256], new ArrayBufferWriter<byte>()));
        }
    

        private static byte[] Hex(string hex) => hex.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(h => Convert.ToByte(h, 16)).ToArray();

        [Theory]
        // PostgreSQL ReadyForQuery: 'Z', a length of 5 that counts itself, 'I'.
        [InlineData("PostgreSQL", "5A 00 00 00 05 49", "5A 49")]
        // MQTT CONNACK: header 0x20, remaining length 2 (varint), then 2 bytes.
        [InlineData("MQTT", "20 02 00 00", "20 00 00")]
        // MQTT with a two-byte varint: 200 = C8 01.
        [InlineData("MQTT200", "30 C8 01 {200}", "30 {200}")]
        // MySQL: 3-byte little-endian length 2, sequence 1, then 2 bytes (the sequence byte stays).
        [InlineData("MySQL", "02 00 00 01 AA BB", "01 AA BB")]
        // A TLS alert record: type 0x15, version 03 03, length 2, level and description.
        [InlineData("TLS records", "15 03 03 00 02 02 28", "15 03 03 02 28")]
        public void LengthFieldsAsProtocolsLayThemOut(string name, string wire, string data)
        {
            var configs = Framings().ToDictionary(f => name == "MQTT200" ? (string)f[0] + "200" : (string)f[0], f => (Action<ConnectionOptions>)f[2]);
            var framing = Framing(FramingKind.LengthPrefix, configs[name]);
            byte[] Expand(string text) => Bytes.Concat(text.Split(' ').Select(p => p == "{200}" ? Enumerable.Repeat((byte)0x61, 200).ToArray() : Hex(p)).ToArray());
            var stream = Expand(wire);
            var expected = Expand(data);
            var framed = Run(framing.CreateFramer(), Bytes.Concat(stream, stream), Enumerable.Repeat(1, stream.Length * 2));
            Assert.Equal(new[] { Bytes.Show(expected), Bytes.Show(expected) }, framed.Payloads.Select(Bytes.Show));
            Assert.Empty(framed.Left);
            // Sending is the inverse: the header, the length field, the rest.
            Assert.Equal(Bytes.Show(stream), Bytes.Show(WriteAll(framing, new[] { expected })));
        }

        [Theory]
        [InlineData("OctetCount", "5 hello3 abc", "hello#abc")]
        [InlineData("Netstring", "5:hello,0:,3:a,c,", "hello##a,c")]
        [InlineData("Marker MLLP", "\u000bMSH|1\u001c\r\u000b\u001c\r", "MSH|1#")]
        [InlineData("Headers", "\r\nSIP/2.0 200 OK\r\nContent-Length: 3\r\n\r\nabcNOTIFY x SIP/2.0\n\n", "SIP/2.0 200 OK\r\nContent-Length: 3\r\n\r\nabc#NOTIFY x SIP/2.0\n\n")]
        public void TextFramingsCutTheStreamAsTheirProtocolsDo(string name, string wire, string payloads)
        {
            var config = (Action<ConnectionOptions>)Framings().Single(f => (string)f[0] == name)[2];
            var kind = (FramingKind)Framings().Single(f => (string)f[0] == name)[1];
            var framing = Framing(kind, config);
            var stream = Bytes.Latin1(wire);
            foreach (var chunks in new[] { new[] { stream.Length }, Enumerable.Repeat(1, stream.Length).ToArray() })
            {
                var framed = Run(framing.CreateFramer(), stream, chunks);
                Assert.Equal(payloads.Split('#'), framed.Payloads.Select(p => Encoding.Latin1.GetString(p)).ToArray());
                Assert.Empty(framed.Left);
            }
        }

        [Theory]
        [InlineData("OctetCount", "301 ", 3)]
        [InlineData("Netstring", "301:", 3)]
        [InlineData("MQTT", "30 AE 02", 3)]
        [InlineData("PostgreSQL", "44 00 00 01 31", 5)]
        [InlineData("MySQL", "2C 01 00", 3)]
        [InlineData("Headers", "HTTP/1.1 200 OK\r\nContent-Length: 300\r\n\r\n", 0)]
        [InlineData("Marker MLLP", "", 0)]
        public void DeclaredLengthsOverTheLimitAreRefusedBeforeThePayload(string name, string header, int refusedAt)
        {
            // Max is 300: 301 declared (or a header of 300 plus a body of 300) is refused as soon as the length is read.
            var entry = Framings().Single(f => (string)f[0] == name);
            var framing = Framing((FramingKind)entry[1], (Action<ConnectionOptions>)entry[2]);
            byte[] stream;
            if (name == "Marker MLLP")
            {
                stream = Bytes.Concat(new byte[] { 0x0B }, new byte[Max + 5]);
                refusedAt = Max + 3;
            }
            else
            {
                stream = name == "Headers" ? Bytes.Latin1(header) : name == "OctetCount" || name == "Netstring" ? Bytes.Latin1(header) : Hex(header);
                if (refusedAt == 0) refusedAt = stream.Length;
                stream = Bytes.Concat(stream, new byte[Max + 10]);
            }

            var framed = Run(framing.CreateFramer(), stream, Enumerable.Repeat(1, stream.Length), final: false);
            Assert.True(framed.TooLong, name);
            Assert.InRange(framed.TooLongAt, 1, refusedAt);
            Assert.Empty(framed.Payloads);
        }

        [Theory]
        [InlineData("OctetCount", "x5 hello")]
        [InlineData("OctetCount", "5:hello")]
        [InlineData("Netstring", "5:hello;")]
        [InlineData("Netstring", ":")]
        [InlineData("Headers", "GET / HTTP/1.1\r\nContent-Length: ten\r\n\r\n")]
        [InlineData("Marker MLLP", "MSH\u001c\r")]
        public void MalformedFramesAreInvalidWithAReason(string name, string wire)
        {
            var entry = Framings().Single(f => (string)f[0] == name);
            var framer = Framing((FramingKind)entry[1], (Action<ConnectionOptions>)entry[2]).CreateFramer();
            Assert.Equal(FrameStatus.Invalid, framer.ReadFrames(Bytes.Latin1(wire), new Frame[4], 4, out int count, out _));
            Assert.Equal(0, count);
            Assert.False(string.IsNullOrEmpty(framer.InvalidReason));
        }

        [Fact]
        public void ALengthThatAdjustsBelowZeroIsInvalid()
        {
            // PostgreSQL's length counts itself: 3 can't be.
            var framer = Framing(FramingKind.LengthPrefix, o => { o.PrefixOffset = 1; o.LengthAdjustment = -4; }).CreateFramer();
            Assert.Equal(FrameStatus.Invalid, framer.TryReadFrame(Hex("51 00 00 00 03"), out _));
            Assert.Contains("-1", framer.InvalidReason);
        }

        [Fact]
        public void SendingRefusesWhatTheFramingCantCarry()
        {
            var pg = Framing(FramingKind.LengthPrefix, o => { o.PrefixOffset = 1; o.LengthAdjustment = -4; });
            Assert.Throws<ArgumentException>(() => pg.WriteFrame(Array.Empty<byte>(), new ArrayBufferWriter<byte>()));
            var mysql = Framing(FramingKind.LengthPrefix, o => { o.PrefixSize = 3; o.LengthAdjustment = 1; });
            Assert.Throws<ArgumentException>(() => mysql.WriteFrame(Array.Empty<byte>(), new ArrayBufferWriter<byte>()));
            var headers = Framing(FramingKind.Headers);
            var e = Assert.Throws<ArgumentException>(() => headers.WriteFrame(Bytes.Latin1("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab"), new ArrayBufferWriter<byte>()));
            Assert.Contains("shorter", e.Message);
            Assert.Throws<ArgumentException>(() => headers.WriteFrame(Bytes.Latin1("POST / HTTP/1.1\r\nContent-Length: 1\r\n\r\nab"), new ArrayBufferWriter<byte>()));
            Assert.Throws<ArgumentException>(() => headers.WriteFrame(Bytes.Latin1("POST / HTTP/1.1\r\n"), new ArrayBufferWriter<byte>()));
            var ok = new ArrayBufferWriter<byte>();
            headers.WriteFrame(Bytes.Latin1("POST / HTTP/1.1\r\ncontent-length:2\r\n\r\nab"), ok);
            Assert.Equal(39, ok.WrittenCount);
        }

        [Fact]
        public void FramingSettingsAreCheckedWithTheParameterNamed()
        {
            Assert.Equal("PrefixSize", Assert.Throws<ArgumentException>(() => Framing(FramingKind.LengthPrefix, o => o.PrefixSize = 5)).ParamName);
            Assert.Equal("EndMarker", Assert.Throws<ArgumentException>(() => Framing(FramingKind.Marker)).ParamName);
            Assert.Equal("LengthHeader", Assert.Throws<ArgumentException>(() => Framing(FramingKind.Headers, o => o.LengthHeader = "Content Length")).ParamName);
            Assert.Equal("PrefixOffset", Assert.Throws<ArgumentException>(() => Framing(FramingKind.LengthPrefix, o => o.PrefixOffset = Max + 1)).ParamName);
        }
    }
}
