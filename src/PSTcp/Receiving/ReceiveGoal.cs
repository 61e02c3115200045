using System;
using System.Collections.Generic;
using System.Runtime.CompilerServices;
using System.Text.RegularExpressions;
using System.Threading;
using PSTcp.Framing;

namespace PSTcp.Commands
{
    /// <summary>
    /// What one Receive-TcpMessage (or Invoke-TcpRequest) waits for, and when it is done:
    /// -Count messages, the first message whose Text matches -Until, or, on a Raw connection,
    /// a stream read (-Until across reads, -ByteCount) that frames the bytes itself and keeps
    /// what follows the message for the next receive on that connection.
    /// </summary>
    internal sealed class ReceiveGoal
    {
        // Bytes a stream read took but did not return, per connection, until the next receive.
        private static readonly ConditionalWeakTable<TcpConnection, Remainder> s_remainders = new ConditionalWeakTable<TcpConnection, Remainder>();

        private readonly int? _count;
        private readonly Regex _until;
        private readonly TcpConnection _stream;
        private readonly StreamSplitter _splitter;
        private readonly int _byteCount;
        private int _received;
        private long _lastSequence;
        private long _lastTicks;

        private ReceiveGoal(int? count, Regex until, TcpConnection stream, int byteCount)
        {
            _count = count;
            _until = until;
            _stream = stream;
            _byteCount = byteCount;
            if (stream != null)
            {
                // Checking only (Check) has no connection yet, and no splitter.
                _splitter = byteCount > 0 ? StreamSplitter.ForByteCount(byteCount) : StreamSplitter.ForPattern(until, stream.Encoding);
            }
        }

        /// <summary>Checks the parameters against the source; an <see cref="ArgumentException"/> names the one at fault.</summary>
        public static ReceiveGoal Create(int? count, string until, bool simpleMatch, bool caseSensitive, int? byteCount, TcpConnection connection) =>
            Create(count, until, simpleMatch, caseSensitive, byteCount, connection != null && connection.Framing.Kind == FramingKind.Raw, connection);

        /// <summary>Checks the parameters before a connection exists (it will be Raw or not); the goal is not kept.</summary>
        public static void Check(int? count, string until, bool simpleMatch, bool caseSensitive, int? byteCount, bool raw) =>
            Create(count, until, simpleMatch, caseSensitive, byteCount, raw, null);

        private static ReceiveGoal Create(int? count, string until, bool simpleMatch, bool caseSensitive, int? byteCount, bool raw, TcpConnection connection)
        {
            if (byteCount.HasValue && !raw)
            {
                throw new ArgumentException("-ByteCount reads the byte stream of a connection opened with -Framing Raw.", "ByteCount");
            }

            if (byteCount.HasValue && until != null)
            {
                throw new ArgumentException("Use -Until or -ByteCount, not both.", "ByteCount");
            }

            if (simpleMatch && until == null)
            {
                throw new ArgumentException("-SimpleMatch goes with -Until.", "SimpleMatch");
            }

            Regex regex = null;
            if (until != null)
            {
                var options = RegexOptions.CultureInvariant | (caseSensitive ? RegexOptions.None : RegexOptions.IgnoreCase);
                try
                {
                    regex = new Regex(simpleMatch ? Regex.Escape(until) : until, options);
                }
                catch (ArgumentException e)
                {
                    throw new ArgumentException($"-Until is not a valid regular expression: {e.Message}", "Until", e);
                }
            }

            bool stream = raw && (regex != null || byteCount.HasValue);
            if (stream && count.HasValue)
            {
                throw new ArgumentException("A stream read (-Until or -ByteCount on a Raw connection) returns one message; -Count doesn't apply.", "Count");
            }

            return new ReceiveGoal(count, regex, stream ? connection : null, byteCount ?? 0);
        }

        /// <summary>A stream read: the goal frames the bytes itself (see <see cref="Offer"/>).</summary>
        public bool IsStream => _stream != null;

        /// <summary>Messages still wanted after <see cref="Begin"/>, for the consumer; null without -Count, or on a stream read.</summary>
        public int? RemainingCount => _stream == null && _count.HasValue ? _count.Value - _received : (int?)null;

        /// <summary>-Until on whole messages, for the consumer; null without it, or on a stream read.</summary>
        public Predicate<TcpMessage> Until => _stream == null && _until != null ? (Predicate<TcpMessage>)(m => _until.IsMatch(m.Text)) : null;

        /// <summary>Whether the receive has what it waited for.</summary>
        public bool IsMet { get; private set; }

        /// <summary>Whether -Count, -Until or -ByteCount set an end (not meeting it by the deadline is a ReceiveTimeout).</summary>
        public bool HasEnd => _count.HasValue || _until != null || _byteCount > 0;

        /// <summary>What was waited for, for the ReceiveTimeout message.</summary>
        public string Describe(string sourceName)
        {
            if (_byteCount > 0) return $"Received {_splitter?.Length ?? 0} of {_byteCount} byte(s) from {sourceName}";
            if (_stream != null) return $"Received {_splitter.Length} byte(s) from {sourceName} without a match of -Until '{_until}'";
            if (_until != null) return $"Received {_received} message(s) from {sourceName}, none matching -Until '{_until}'";
            return $"Received {_received} of {_count} message(s) from {sourceName}";
        }

        /// <summary>
        /// Starts the receive with what an earlier stream read on this connection left, which comes
        /// before anything queued; true when that alone meets the goal.
        /// </summary>
        public bool Begin(TcpConnection connection, List<TcpMessage> output)
        {
            if (connection == null || !s_remainders.TryGetValue(connection, out var remainder)) return false;
            var left = remainder.Take();
            return left != null && Offer(left, output);
        }

        /// <summary>Takes one message; adds what to write now to <paramref name="output"/>; true when the goal is met.</summary>
        public bool Offer(TcpMessage message, List<TcpMessage> output)
        {
            if (IsMet) throw new InvalidOperationException("The receive is already complete.");
            if (_stream == null)
            {
                output.Add(message);
                _received++;
                IsMet = (_until != null && _until.IsMatch(message.Text)) || (_count.HasValue && _received >= _count.Value);
                return IsMet;
            }

            _splitter.Append(message.Data);
            _lastSequence = message.Sequence;
            _lastTicks = message.Timestamp.UtcTicks;
            int end = _splitter.FindEnd();
            if (end < 0)
            {
                if (_byteCount == 0 && _splitter.Length > _stream.Framing.MaxMessageLength)
                {
                    // -Until can't gather without bound: the bytes stay for the next receive.
                    Abandon();
                    throw new TcpException(TcpErrorKind.LineTooLong,
                        $"{_stream.Name} sent over {_stream.Framing.MaxMessageLength} bytes without a match of -Until '{_until}'; raise -MaxMessageLength of the connection to read further.");
                }

                return false;
            }

            output.Add(NewMessage(_splitter.Take(end)));
            if (_splitter.Length > 0)
            {
                Keep(NewMessage(_splitter.TakeAll()));
            }

            IsMet = true;
            return true;
        }

        /// <summary>The receive ends unmet (deadline, end of the source): a stream read writes what it gathered.</summary>
        public void End(List<TcpMessage> output)
        {
            if (_stream != null && _splitter.Length > 0)
            {
                output.Add(NewMessage(_splitter.TakeAll()));
            }
        }

        /// <summary>The receive was stopped (Ctrl+C): what a stream read gathered stays for the next receive.</summary>
        public void Abandon()
        {
            if (_stream != null && _splitter.Length > 0)
            {
                Keep(NewMessage(_splitter.TakeAll()));
            }
        }

        private void Keep(TcpMessage rest)
        {
            var remainder = s_remainders.GetValue(_stream, _ => new Remainder());
            remainder.PutFirst(rest);
        }

        // A message cut from the stream carries the sequence and time of the read that completed it.
        private TcpMessage NewMessage(byte[] data) => new TcpMessage(data, _stream, _lastSequence, _lastTicks);

        /// <summary>One connection's unreturned bytes; several receives may race for them.</summary>
        private sealed class Remainder
        {
            private TcpMessage _message;

            public TcpMessage Take() => Interlocked.Exchange(ref _message, null);

            public void PutFirst(TcpMessage message)
            {
                // Whatever was kept earlier was consumed by the receive that now keeps its own rest,
                // so at most one remainder exists; keep the bytes in order if two receives raced.
                var earlier = Interlocked.Exchange(ref _message, message);
                if (earlier != null)
                {
                    var joined = new byte[message.Length + earlier.Length];
                    Buffer.BlockCopy(message.Data, 0, joined, 0, message.Length);
                    Buffer.BlockCopy(earlier.Data, 0, joined, message.Length, earlier.Length);
                    Interlocked.Exchange(ref _message, new TcpMessage(joined, message.Origin, message.Sequence, message.Timestamp.UtcTicks));
                }
            }
        }
    }
}
