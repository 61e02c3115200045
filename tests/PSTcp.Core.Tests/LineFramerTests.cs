using System;
using PSTcp.Framing;
using System.Collections.Generic;
using System.Linq;
using Xunit;

namespace PSTcp.Tests
{
    public class LineFramerTests
    {
        /// <summary>Frames every complete line; returns them, the status that stopped it, and what is left.</summary>
        private static (List<string> Lines, FrameStatus Last, string Left) FrameAll(int max, byte[] data)
        {
            var framer = new LineFramer(max);
            var lines = new List<string>();
            int start = 0;
            FrameStatus result;
            while ((result = framer.TryReadFrame(data.AsSpan(start), out var frame)) == FrameStatus.Frame)
            {
                lines.Add(Latin1(data.AsSpan(start + frame.PayloadOffset, frame.PayloadLength).ToArray()));
                start += frame.FrameLength;
            }

            return (lines, result, Latin1(data.AsSpan(start).ToArray()));
        }

        private static (List<string> Lines, FrameStatus Last, string Left) FrameAll(int max, string data) =>
            FrameAll(max, Bytes.Latin1(data));

        /// <summary>Frames chunk by chunk, as a connection does: the unconsumed bytes grow by each read.</summary>
        private static (List<string> Lines, FrameStatus Last, string Left) FrameChunks(int max, params string[] chunks)
        {
            var data = Bytes.Latin1(string.Concat(chunks));
            return FrameIncrementally(max, data, chunks.Select(c => c.Length));
        }

        private static string Latin1(byte[] bytes) => new string(bytes.Select(b => (char)b).ToArray());

        [Theory]
        [InlineData("one\n", new[] { "one" })]
        [InlineData("one\r\n", new[] { "one" })]
        [InlineData("one\r\ntwo\nthree\r\n", new[] { "one", "two", "three" })]
        [InlineData("a\r\nb\nc\r\r\n", new[] { "a", "b", "c\r" })]
        [InlineData("a\rb\n", new[] { "a\rb" })]
        [InlineData("\r\r\n", new[] { "\r" })]
        [InlineData("\n", new[] { "" })]
        [InlineData("\r\n", new[] { "" })]
        [InlineData("\n\n\r\n\n", new[] { "", "", "", "" })]
        [InlineData("x\n\ny\n", new[] { "x", "", "y" })]
        public void SplitsAtLfAndStripsOneCr(string data, string[] expected)
        {
            var (lines, last, rest) = FrameAll(100, data);
            Assert.Equal(expected, lines);
            Assert.Equal(FrameStatus.NeedMoreData, last);
            Assert.Equal("", rest);
        }

        [Theory]
        [InlineData("abc", "abc")]
        [InlineData("abc\r", "abc\r")]
        [InlineData("\r", "\r")]
        [InlineData("done\nrest\r", "rest\r")]
        public void BareCrIsNotATerminator(string data, string expectedRest)
        {
            var (_, last, rest) = FrameAll(100, data);
            Assert.Equal(FrameStatus.NeedMoreData, last);
            Assert.Equal(expectedRest, rest);
        }

        [Fact]
        public void EmptyBufferNeedsMoreData()
        {
            Assert.Equal(FrameStatus.NeedMoreData, new LineFramer(10).TryReadFrame(ReadOnlySpan<byte>.Empty, out _));
        }

        [Fact]
        public void NulAndControlBytesAreKept()
        {
            var payload = new byte[] { 0, 1, 0x1b, (byte)'a', 0, 0x7f, 0xff, (byte)'\t', (byte)'\v', (byte)'\f', 0 };
            var data = Bytes.Concat(payload, new[] { (byte)'\n' }, new byte[] { 0, 0 }, new[] { (byte)'\r', (byte)'\n' });
            var framer = new LineFramer(100);

            Assert.Equal(FrameStatus.Frame, framer.TryReadFrame(data, out var first));
            Assert.Equal(payload, data.AsSpan(first.PayloadOffset, first.PayloadLength).ToArray());
            Assert.Equal(payload.Length + 1, first.FrameLength);
            var rest = data.AsSpan(first.FrameLength);
            Assert.Equal(FrameStatus.Frame, framer.TryReadFrame(rest, out var second));
            Assert.Equal(new byte[] { 0, 0 }, rest.Slice(second.PayloadOffset, second.PayloadLength).ToArray());
            Assert.Equal(rest.Length, second.FrameLength);
        }

        [Theory]
        [InlineData("")]
        [InlineData("\r")]
        public void ExactlyMaxLineLengthIsAccepted(string cr)
        {
            const int max = 16;
            var line = new string('x', max);
            var (lines, last, _) = FrameAll(max, line + cr + "\nnext\n");
            Assert.Equal(new[] { line, "next" }, lines);
            Assert.Equal(FrameStatus.NeedMoreData, last);
        }

        [Theory]
        [InlineData("")]
        [InlineData("\r")]
        public void MaxLineLengthPlusOneIsRejected(string cr)
        {
            const int max = 16;
            var (lines, last, rest) = FrameAll(max, "ok\n" + new string('x', max + 1) + cr + "\nnext\n");
            Assert.Equal(new[] { "ok" }, lines);
            Assert.Equal(FrameStatus.TooLong, last);
            // The buffer is left at the offending line: the caller decides what to do with it.
            Assert.StartsWith("xxx", rest);
        }

        [Fact]
        public void WithoutLfTheLimitAllowsOneByteOfSlackForACr()
        {
            const int max = 8;
            // max bytes, then max + CR: the LF may still come.
            Assert.Equal(FrameStatus.NeedMoreData, FrameAll(max, new string('x', max)).Last);
            Assert.Equal(FrameStatus.NeedMoreData, FrameAll(max, new string('x', max) + "\r").Last);
            // Two bytes over can never become a valid line.
            Assert.Equal(FrameStatus.TooLong, FrameAll(max, new string('x', max + 2)).Last);
            Assert.Equal(FrameStatus.TooLong, FrameAll(max, new string('x', max + 1) + "\r").Last);
        }

        [Fact]
        public void LimitOfOne()
        {
            Assert.Equal(new[] { "a", "", "b" }, FrameAll(1, "a\n\r\nb\r\n").Lines);
            Assert.Equal(FrameStatus.TooLong, FrameAll(1, "ab\n").Last);
        }

        [Fact]
        public void FinalFragmentIsAMessageUpToTheLimit()
        {
            var framer = new LineFramer(4);
            Assert.Equal(FrameStatus.Frame, framer.TryReadFinal(new byte[4], out var frame));
            Assert.Equal(4, frame.PayloadLength);
            Assert.Equal(FrameStatus.TooLong, framer.TryReadFinal(new byte[5], out _));
        }

        public static IEnumerable<object[]> SegmentedCases() => new[]
        {
            // CR | LF split across segments
            new object[] { new[] { "abc\r", "\nxyz\n" }, new[] { "abc", "xyz" } },
            new object[] { new[] { "abc", "\r", "\n" }, new[] { "abc" } },
            new object[] { new[] { "\r", "\n" }, new[] { "" } },
            new object[] { new[] { "a\r", "\r\n" }, new[] { "a\r" } },
            new object[] { new[] { "a", "\r\r", "\n" }, new[] { "a\r" } },
            // A line spread over many segments, CR at the end of its own segment
            new object[] { new[] { "h", "e", "l", "l", "o", "\r", "\n", "w", "\n" }, new[] { "hello", "w" } },
            // LF at the very end of a segment, next line in the next segment
            new object[] { new[] { "one\n", "two\r\n", "three\n" }, new[] { "one", "two", "three" } },
            new object[] { new[] { "a\r\nb", "\nc\r", "\r", "\n" }, new[] { "a", "b", "c\r" } },
            // Empty segments in between
            new object[] { new[] { "ab", "", "\r", "", "\n", "", "cd\n" }, new[] { "ab", "cd" } },
        };

        [Theory]
        [MemberData(nameof(SegmentedCases))]
        public void ChunkedInput(string[] segments, string[] expected)
        {
            var (lines, last, rest) = FrameChunks(100, segments);
            Assert.Equal(expected, lines);
            Assert.Equal(FrameStatus.NeedMoreData, last);
            Assert.Equal("", rest);
        }

        [Fact]
        public void ChunkedLimit()
        {
            const int max = 6;
            // Exactly the limit, split over segments, CR in its own segment.
            Assert.Equal(new[] { "abcdef" }, FrameChunks(max, "abc", "def", "\r", "\n").Lines);
            // One over.
            Assert.Equal(FrameStatus.TooLong, FrameChunks(max, "abc", "defg", "\n").Last);
            Assert.Equal(FrameStatus.TooLong, FrameChunks(max, "abc", "defg", "\r", "\n").Last);
            // No LF yet, too long already.
            Assert.Equal(FrameStatus.TooLong, FrameChunks(max, "abcd", "efgh").Last);
        }

        /// <summary>
        /// The obvious model: split on LF, strip one CR, apply the limit. Lines up to the first
        /// failure, whether it failed, and the unterminated rest.
        /// </summary>
        private static (List<string> Lines, FrameStatus Last, string Left) Model(int max, byte[] data)
        {
            var lines = new List<string>();
            int pos = 0;
            while (true)
            {
                int lf = Array.IndexOf(data, (byte)'\n', pos);
                if (lf < 0)
                {
                    var rest = data.AsSpan(pos).ToArray();
                    return rest.Length > max + 1
                        ? (lines, FrameStatus.TooLong, null)
                        : (lines, FrameStatus.NeedMoreData, Latin1(rest));
                }

                int end = lf > pos && data[lf - 1] == '\r' ? lf - 1 : lf;
                if (end - pos > max) return (lines, FrameStatus.TooLong, null);
                lines.Add(new string(data.AsSpan(pos, end - pos).ToArray().Select(b => (char)b).ToArray()));
                pos = lf + 1;
            }
        }

        /// <summary>
        /// Feeds chunks as a connection does: append to what is unconsumed, frame from the same
        /// start until a frame comes (so the framer's resumed search is exercised), keep the rest.
        /// </summary>
        private static (List<string> Lines, FrameStatus Last, string Left) FrameIncrementally(int max, byte[] data, IEnumerable<int> chunkSizes)
        {
            var framer = new LineFramer(max);
            var lines = new List<string>();
            var unconsumed = new List<byte>();
            int offset = 0;
            foreach (var size in chunkSizes)
            {
                unconsumed.AddRange(data.AsSpan(offset, size).ToArray());
                offset += size;

                FrameStatus result;
                while (true)
                {
                    var buffer = unconsumed.ToArray();
                    result = framer.TryReadFrame(buffer, out var frame);
                    if (result != FrameStatus.Frame) break;
                    lines.Add(Latin1(buffer.AsSpan(frame.PayloadOffset, frame.PayloadLength).ToArray()));
                    unconsumed.RemoveRange(0, frame.FrameLength);
                }

                if (result == FrameStatus.TooLong)
                {
                    return (lines, result, null);
                }
            }

            Assert.Equal(data.Length, offset);
            return (lines, FrameStatus.NeedMoreData, Latin1(unconsumed.ToArray()));
        }

        [Fact]
        public void FuzzIncrementalFramingMatchesWholeBufferAndModel()
        {
            var random = new Random(20240611);
            byte[] alphabet = { (byte)'\n', (byte)'\n', (byte)'\n', (byte)'\r', (byte)'\r', 0, (byte)'a', (byte)'b', 0xff, 0xc0 };
            int tooLong = 0, clean = 0;
            for (int iteration = 0; iteration < 400; iteration++)
            {
                int max = random.Next(1, 24);
                var data = new byte[random.Next(0, 300)];
                for (int i = 0; i < data.Length; i++)
                {
                    // Biased towards terminators, with long runs of ordinary bytes now and then.
                    data[i] = random.Next(4) == 0 ? (byte)random.Next(256) : alphabet[random.Next(alphabet.Length)];
                    if (random.Next(40) == 0)
                    {
                        int run = Math.Min(random.Next(1, max + 4), data.Length - i - 1);
                        for (int r = 0; r < run; r++) data[++i] = (byte)'x';
                    }
                }

                var sizes = new List<int>();
                for (int left = data.Length; left > 0;)
                {
                    int size = Math.Min(left, random.Next(3) == 0 ? 1 : random.Next(1, 40));
                    sizes.Add(size);
                    left -= size;
                }

                var model = Model(max, data);
                var whole = FrameAll(max, data);
                var incremental = FrameIncrementally(max, data, sizes);
                var context = $"iteration {iteration}, max {max}, data '{Bytes.Show(data)}', chunks [{string.Join(",", sizes)}]";

                Assert.True(model.Lines.SequenceEqual(whole.Lines), "whole buffer vs model: " + context);
                Assert.True(model.Last == whole.Last, $"whole buffer result {whole.Last} vs model {model.Last}: " + context);
                Assert.True(model.Lines.SequenceEqual(incremental.Lines), "incremental vs model: " + context);
                Assert.True(model.Last == incremental.Last, $"incremental result {incremental.Last} vs model {model.Last}: " + context);
                if (model.Last == FrameStatus.NeedMoreData)
                {
                    Assert.Equal(model.Left, whole.Left);
                    Assert.Equal(model.Left, incremental.Left);
                    clean++;
                }
                else
                {
                    tooLong++;
                }
            }

            // The generator exercises both outcomes.
            Assert.True(tooLong > 20 && clean > 20, $"too long {tooLong}, clean {clean}");
        }
    }
}
