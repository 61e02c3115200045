using System;
using System.Collections.Generic;
using System.Linq;
using System.Text;
using System.Text.RegularExpressions;
using Xunit;

namespace PSTcp.Tests
{
    public class StreamSplitterTests
    {
        /// <summary>Feeds the stream in chunks; after each, cuts every message it can; returns them and the rest.</summary>
        private static (List<byte[]> Messages, byte[] Left) Cut(StreamSplitter splitter, byte[] stream, IEnumerable<int> chunks)
        {
            var messages = new List<byte[]>();
            int offset = 0;
            foreach (int size in chunks)
            {
                int n = Math.Min(size, stream.Length - offset);
                if (n <= 0) break;
                splitter.Append(stream.AsSpan(offset, n));
                offset += n;
                int end;
                while ((end = splitter.FindEnd()) >= 0 && splitter.Length > 0)
                {
                    messages.Add(splitter.Take(end));
                }
            }

            return (messages, splitter.TakeAll());
        }

        private static IEnumerable<int> RandomChunks(Random random)
        {
            while (true) yield return random.Next(4) == 0 ? random.Next(1, 100) : random.Next(1, 4);
        }

        [Fact]
        public void UntilMatchesAcrossReadsAndKeepsTheRest()
        {
            var stream = Bytes.Latin1("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1 404\r\n\r\n");
            for (int seed = 0; seed < 50; seed++)
            {
                var (messages, rest) = Cut(StreamSplitter.ForPattern(new Regex("\r\n\r\n"), Bytes.Utf8), stream, RandomChunks(new Random(seed)));
                Assert.Equal(new[] { "HTTP/1.1 200 OK\\r\\nContent-Length: 5\\r\\n\\r\\n", "helloHTTP/1.1 404\\r\\n\\r\\n" }, messages.Select(Bytes.Show));
                Assert.Empty(rest);
            }
        }

        [Fact]
        public void ByteCountCutsExactlyAndKeepsTheRestInOrder()
        {
            var random = new Random(3);
            var stream = Enumerable.Range(0, 1000).Select(_ => (byte)random.Next(256)).ToArray();
            for (int seed = 0; seed < 20; seed++)
            {
                var (messages, rest) = Cut(StreamSplitter.ForByteCount(7), stream, RandomChunks(new Random(seed)));
                Assert.All(messages, m => Assert.Equal(7, m.Length));
                Assert.Equal(stream, messages.SelectMany(m => m).Concat(rest).ToArray());
                Assert.Equal(1000 % 7, rest.Length);
            }
        }

        [Fact]
        public void NoMatchYetIsMinusOne()
        {
            var splitter = StreamSplitter.ForPattern(new Regex("login: "), Bytes.Utf8);
            splitter.Append(Bytes.Latin1("Welcome\r\nlogin:"));
            Assert.Equal(-1, splitter.FindEnd());
            splitter.Append(Bytes.Latin1(" more"));
            int end = splitter.FindEnd();
            Assert.Equal("Welcome\\r\\nlogin: ", Bytes.Show(splitter.Take(end)));
            Assert.Equal("more", Encoding.ASCII.GetString(splitter.TakeAll()));
        }

        [Fact]
        public void MatchEndsAreByteOffsetsInMultiByteText()
        {
            var splitter = StreamSplitter.ForPattern(new Regex("ü>"), Bytes.Utf8);
            var data = Bytes.Utf8.GetBytes("ééé ü> rest");
            splitter.Append(data);
            Assert.Equal(Bytes.Utf8.GetByteCount("ééé ü>"), splitter.FindEnd());

            var utf16 = StreamSplitter.ForPattern(new Regex(";"), Encoding.Unicode);
            utf16.Append(Encoding.Unicode.GetBytes("ab;cd"));
            Assert.Equal(6, utf16.FindEnd());
        }

        [Fact]
        public void InvalidBytesBeforeTheMatchDoNotShiftIt()
        {
            // C0 80 and FF decode to U+FFFD, which re-encodes to three bytes each.
            var splitter = StreamSplitter.ForPattern(new Regex(@"\r\n"), Bytes.Utf8);
            var data = Bytes.Concat(new byte[] { 0xC0, 0x80, 0xFF, 0x41 }, Bytes.Latin1("\r\nnext"));
            splitter.Append(data);
            Assert.Equal(6, splitter.FindEnd());
            Assert.Equal("C0-80-FF-41-0D-0A", BitConverter.ToString(splitter.Take(6)));
            Assert.Equal("next", Encoding.ASCII.GetString(splitter.TakeAll()));
        }
    }
}
