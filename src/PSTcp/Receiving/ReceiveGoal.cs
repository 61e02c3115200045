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
        // -ByteCount, or -1 without it.
        private readonly int _byteCount;
        private readonly System.Diagnostics.Stopwatch _clock = new System.Diagnostics.Stopwatch();
        private TimeSpan? _timeout;
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
                _splitter = byteCount >= 0 ? StreamSplitter.ForByteCount(byteCount) : StreamSplitter.ForPattern(until, stream.Encoding);
            }
        }

        /// <summary>Checks the parameters against the source; an <see cref="ArgumentException"/> names the one at fault.</summary>
        /// <summary>How long one match of an -Until regex may run when the receive has no -Timeout.</summary>
        public static readonly TimeSpan DefaultMatchTimeout = TimeSpan.FromSeconds(5);

        // A regex rebuilt for a shorter match timeout at most this much later than the deadline.
        private static readonly TimeSpan MatchTimeoutSlack = TimeSpan.FromMilliseconds(50);

        public static ReceiveGoal Create(int? count, string until, bool simpleMatch, bool caseSensitive, long? byteCount, TcpConnection connection) =>
            Create(count, until, simpleMatch, caseSensitive, byteCount, connection != null && connection.Framing.Kind == FramingKind.Raw, connection);

        /// <summary>Checks the parameters before a connection exists (it will be Raw or not); the goal is not kept.</summary>
        public static void Check(int? count, string until, bool simpleMatch, bool caseSensitive, long? byteCount, bool raw) =>
            Create(count, until, simpleMatch, caseSensitive, byteCount, raw, null);

        private static ReceiveGoal Create(int? count, string until, bool simpleMatch, bool caseSensitive, long? byteCount, bool raw, TcpConnection connection)
        {
            if (byteCount.HasValue && (byteCount.Value < 0 || byteCount.Value > StreamSplitter.MaxByteCount))
            {
                throw new ArgumentException($"-ByteCount must be 0 to {StreamSplitter.MaxByteCount:N0} (one array's bytes).", "ByteCount");
            }

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
                    regex = new Regex(simpleMatch ? Regex.Escape(until) : until, options, DefaultMatchTimeout);
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

            return new ReceiveGoal(count, regex, stream ? connection : null, byteCount.HasValue ? (int)byteCount.Value : -1);
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
        public bool HasEnd => _count.HasValue || _until != null || _byteCount >= 0;

        /// <summary>A -ByteCount read: meeting the end of the stream first is an error.</summary>
        public bool IsByteCount => _stream != null && _byteCount >= 0;

        /// <summary>
        /// The receive's -Timeout (null: none) bounds each -Until match too: a regex that
        /// backtracks without end is stopped by then (plus a few milliseconds), as a ReceiveTimeout.
        /// </summary>
        public void SetDeadline(TimeSpan? timeout)
        {
            _timeout = timeout;
            _clock.Restart();
            FitMatchTimeout();
        }

        private void FitMatchTimeout()
        {
            if (_splitter?.Pattern == null || !_timeout.HasValue) return;
            var left = _timeout.Value - _clock.Elapsed;
            if (left < TimeSpan.FromMilliseconds(1)) left = TimeSpan.FromMilliseconds(1);
            // Only ever shorter (at most every 50 ms): a long -Timeout keeps the default bound.
            if (_splitter.Pattern.MatchTimeout - left > MatchTimeoutSlack)
            {
                _splitter.Pattern = new Regex(_until.ToString(), _until.Options, left);
            }
        }

        /// <summary>What was waited for, for the ReceiveTimeout message.</summary>
        public string Describe(string sourceName)
        {
            if (_byteCount >= 0) return $"Received {_splitter?.Length ?? 0} of {_byteCount} byte(s) from {sourceName}";
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
            if (_stream != null && _byteCount == 0)
            {
                // -ByteCount 0: an empty message, at once.
                output.Add(new TcpMessage(Array.Empty<byte>(), _stream, 0, DateTime.UtcNow.Ticks));
                IsMet = true;
                return true;
            }

            if (connection == null || !s_remainders.TryGetValue(connection, out var remainder)) return false;
            var left = remainder.Take();
            return left != null && Gather(left, output, fromQueue: false);
        }

        /// <summary>Takes one message; adds what to write now to <paramref name="output"/>; true when the goal is met.</summary>
        public bool Offer(TcpMessage message, List<TcpMessage> output) => Gather(message, output, fromQueue: true);

        private bool Gather(TcpMessage message, List<TcpMessage> output, bool fromQueue)
        {
            if (IsMet) throw new InvalidOperationException("The receive is already complete.");
            if (_stream == null)
            {
                output.Add(message);
                _received++;
                IsMet = (_until != null && _until.IsMatch(message.Text)) || (_count.HasValue && _received >= _count.Value);
                return IsMet;
            }

            if (fromQueue) CheckContinuous(message);
            _splitter.Append(message.Data);
            _lastSequence = message.Sequence;
            _lastTicks = message.Timestamp.UtcTicks;
            int end = Find(full: false);
            if (end < 0 && _byteCount < 0 && _splitter.Length > _stream.Framing.MaxMessageLength)
            {
                // A match that reaches further back than the look-back is found by a full search.
                end = Find(full: true);
            }

            if (end < 0)
            {
                if (_byteCount < 0 && _splitter.Length > _stream.Framing.MaxMessageLength)
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

        /// <summary>
        /// The receive ends unmet (deadline, end of the source): a stream read writes what it
        /// gathered (an -Until read, once more searched in full, up to its match if there is one);
        /// true when that met the goal after all.
        /// </summary>
        public bool End(List<TcpMessage> output)
        {
            if (_stream == null || _splitter.Length == 0) return false;
            int end = _byteCount < 0 ? Find(full: true) : -1;
            if (end >= 0)
            {
                output.Add(NewMessage(_splitter.Take(end)));
                if (_splitter.Length > 0) Keep(NewMessage(_splitter.TakeAll()));
                IsMet = true;
                return true;
            }

            output.Add(NewMessage(_splitter.TakeAll()));
            return false;
        }

        private int Find(bool full)
        {
            FitMatchTimeout();
            try
            {
                return full ? _splitter.FindEndFully() : _splitter.FindEnd();
            }
            catch (RegexMatchTimeoutException e)
            {
                // The bytes stay for the next receive.
                Abandon();
                throw new TcpException(TcpErrorKind.ReceiveTimeout,
                    $"Matching -Until '{_until}' against {_stream.Name}'s stream took over {e.MatchTimeout.TotalSeconds:0.###} s; the receive gave up. Simplify the pattern (it backtracks) or raise -Timeout.", e);
            }
        }

        /// <summary>
        /// A stream read never spans a gap: when the source dropped messages of this stream (its
        /// queue was full), the next one's sequence is not the one after the last read.
        /// </summary>
        private void CheckContinuous(TcpMessage message)
        {
            var state = s_remainders.GetValue(_stream, _ => new Remainder());
            long expected = state.LastSequence + 1;
            state.LastSequence = message.Sequence;
            if (message.Sequence <= expected || _stream.MessagesDropped == 0) return;
            long gathered = _splitter.Length;
            // The bytes before the gap are discarded with the error; what follows it stays for the next read.
            _splitter.TakeAll();
            Keep(message);
            throw new TcpException(TcpErrorKind.BytesDropped,
                $"{_stream.Name} dropped {message.Sequence - expected:N0} read(s) of its stream (its queue was full, mode {_stream.Queue.FullMode}), so the stream has a gap; " +
                $"this read discarded the {gathered:N0} byte(s) before it. Connect with -QueueFullMode Wait (the default for -Framing Raw) for a lossless stream.");
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

            /// <summary>The sequence of the last queued message a stream read took (0: none yet).</summary>
            public long LastSequence;

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
