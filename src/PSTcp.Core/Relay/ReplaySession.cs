using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;

namespace PSTcp
{
    /// <summary>
    /// The recorded connections a replay answers from, shared by all its connections. A new
    /// connection is paired with the first unused recorded connection whose first client message
    /// matches its own (or, when the target spoke first in the recording, whose first message is
    /// the target's). Once every matching one is used, a used one answers again, unless misses
    /// fall back to the target (NewEpisodes), where a repeat is a new episode.
    /// </summary>
    internal sealed class ReplayBook
    {
        private readonly object _lock = new object();
        private readonly List<RecordedConnection> _connections;
        private readonly bool[] _used;

        public ReplayBook(TcpRecording recording, string name, bool reuse)
        {
            _connections = recording.Connections.ToList();
            _used = new bool[_connections.Count];
            Name = name;
            Reuse = reuse;
        }

        /// <summary>The file, in error messages.</summary>
        public string Name { get; }

        public bool Reuse { get; }

        /// <summary>Where a miss is reported: the server's LastError and consumers by default; the cmdlets also keep it for the next receive.</summary>
        public Action<TcpConnection, TcpException> Report { get; set; } = (connection, error) => connection.Server?.RecordError(error, connection);

        public bool HasUnused
        {
            get
            {
                lock (_lock) return _used.Any(u => !u);
            }
        }

        /// <summary>Claims the first recorded connection where the target spoke first; null when there is none.</summary>
        public RecordedConnection TakeTargetFirst()
        {
            lock (_lock)
            {
                for (int pass = 0; pass < (Reuse ? 2 : 1); pass++)
                {
                    for (int i = 0; i < _connections.Count; i++)
                    {
                        var c = _connections[i];
                        if ((pass == 1 || !_used[i]) && c.Messages.Count > 0 && c.Messages[0].From == RecordedSide.Target)
                        {
                            _used[i] = true;
                            return c;
                        }
                    }
                }

                return null;
            }
        }

        /// <summary>
        /// Pairs by the client's first bytes: the first candidate (in file order) whose first client
        /// message they hold whole is claimed; null with <paramref name="needMore"/> when none is
        /// held whole yet but some agree with the bytes so far; null without it when nothing matches.
        /// </summary>
        public RecordedConnection TryPair(byte[] data, int count, out bool needMore)
        {
            needMore = false;
            lock (_lock)
            {
                for (int pass = 0; pass < (Reuse ? 2 : 1); pass++)
                {
                    for (int i = 0; i < _connections.Count; i++)
                    {
                        if (pass == 0 && _used[i]) continue;
                        var first = _connections[i].FirstClientMessage;
                        if (first == null || first.Data.Length == 0) continue;
                        int n = Math.Min(count, first.Data.Length);
                        if (!data.AsSpan(0, n).SequenceEqual(first.Data.AsSpan(0, n))) continue;
                        if (count < first.Data.Length)
                        {
                            // It may yet match; a later one that the bytes already hold whole answers now,
                            // so a client waiting for that answer is not kept waiting.
                            needMore = true;
                            continue;
                        }

                        _used[i] = true;
                        needMore = false;
                        return _connections[i];
                    }

                    if (needMore) return null;
                }

                return null;
            }
        }

        /// <summary>
        /// For a miss's error text: the recorded first client message that agrees longest with what
        /// was asked, and where they part, then the recording's distinct first client messages.
        /// </summary>
        public string DescribeFirstMessages(byte[] asked, int askedStart, int askedCount, int max = 5)
        {
            lock (_lock)
            {
                string closest = string.Empty;
                int best = -1;
                for (int i = 0; i < _connections.Count; i++)
                {
                    var first = _connections[i].FirstClientMessage;
                    if (first == null) continue;
                    int n = Math.Min(askedCount, first.Data.Length), same = 0;
                    while (same < n && asked[askedStart + same] == first.Data[same]) same++;
                    if (same <= best) continue;
                    best = same;
                    // From a little before where they part, so the difference is in sight.
                    int from = Math.Max(0, same - 16);
                    closest = $"the closest, connection {_connections[i].Id}'s first message{(first.Line > 0 ? $" (line {first.Line})" : string.Empty)}, agrees for {same} bytes, then expects " +
                        $"{(from > 0 ? "…" : string.Empty)}{JsonText.Show(first.Data, from, first.Data.Length - from, 60)} where it got " +
                        $"{(from > 0 ? "…" : string.Empty)}{JsonText.Show(asked, askedStart + from, askedCount - from, 60)}; ";
                }

                var shown = new List<string>();
                int unusedCount = 0;
                for (int i = 0; i < _connections.Count; i++)
                {
                    if (!_used[i]) unusedCount++;
                    var first = _connections[i].FirstClientMessage;
                    if (first == null) continue;
                    var text = JsonText.Show(first.Data, 0, first.Data.Length, 80) + (_used[i] ? " (used)" : string.Empty);
                    if (!shown.Contains(text)) shown.Add(text);
                }

                if (shown.Count == 0) return $"the recording has no connection the client speaks first in ({_connections.Count} recorded)";
                var list = string.Join(", ", shown.Take(max)) + (shown.Count > max ? $" and {shown.Count - max} more" : string.Empty);
                return closest + $"the recording's connections ({unusedCount} of {_connections.Count} unused) begin with {list}";
            }
        }
    }

    /// <summary>What <see cref="ReplaySession.OnDataAsync"/> did with the bytes.</summary>
    internal enum ReplayResult { Handled, Unpaired }

    /// <summary>
    /// One connection answered from a recording: each client message matching the recording's
    /// next one (compared as a byte stream, so how the client's writes are split does not matter)
    /// is answered with what the target sent, byte for byte, optionally at the recorded pace; the
    /// recorded end (close, half-close, reset by the target) is reproduced. Anything else is a
    /// <see cref="TcpErrorKind.ReplayMiss"/> on the server, and the connection is closed.
    /// </summary>
    internal sealed class ReplaySession
    {
        private static readonly TimeSpan CloseTimeout = TimeSpan.FromSeconds(2);
        private readonly ReplayBook _book;
        private readonly TcpConnection _connection;
        private readonly bool _timing;
        private readonly bool _fallback;
        private readonly SemaphoreSlim _gate = new SemaphoreSlim(1, 1);
        private readonly CancellationTokenSource _closed = new CancellationTokenSource();
        private byte[] _pending = new byte[256];
        private int _pendingStart;
        private int _pendingCount;
        private RecordedConnection _recorded;
        private int _index;
        private int _offset;
        private double _lastAt;
        private bool _halfClosed;
        private bool _finished;
        private bool _failed;

        /// <param name="book">The recorded connections to pair with.</param>
        /// <param name="connection">The client's connection.</param>
        /// <param name="timing">Whether answers keep the recorded pace.</param>
        /// <param name="fallback">Whether a first message that pairs with nothing is returned as <see cref="ReplayResult.Unpaired"/> (for the target to answer) rather than a miss.</param>
        public ReplaySession(ReplayBook book, TcpConnection connection, bool timing, bool fallback)
        {
            _book = book;
            _connection = connection;
            _timing = timing;
            _fallback = fallback;
        }

        public bool Paired => _recorded != null;

        /// <summary>At connect: pairs with a recording where the target spoke first, and starts answering. False when none.</summary>
        public bool TryStartTargetFirst()
        {
            var recorded = _book.TakeTargetFirst();
            if (recorded == null) return false;
            _recorded = recorded;
            _ = RunAsync(() => PumpAsync(_closed.Token));
            return true;
        }

        /// <summary>The bytes received before pairing failed (after <see cref="ReplayResult.Unpaired"/>).</summary>
        public ReadOnlyMemory<byte> TakePending()
        {
            var bytes = new ReadOnlyMemory<byte>(_pending, _pendingStart, _pendingCount);
            _pendingCount = 0;
            return bytes;
        }

        public async ValueTask<ReplayResult> OnDataAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
        {
            await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                if (_failed) return ReplayResult.Handled;
                Append(data.Span);
                if (_recorded == null)
                {
                    Compact();
                    _recorded = _book.TryPair(_pending, _pendingCount, out bool needMore);
                    if (_recorded == null)
                    {
                        if (needMore) return ReplayResult.Handled;
                        if (_fallback) return ReplayResult.Unpaired;
                        Miss($"its first message {Asked()} pairs with no recorded connection: {_book.DescribeFirstMessages(_pending, _pendingStart, _pendingCount)}");
                        return ReplayResult.Handled;
                    }
                }

                await PumpAsync(cancellationToken).ConfigureAwait(false);
                return ReplayResult.Handled;
            }
            finally
            {
                _gate.Release();
            }
        }

        /// <summary>The client sent FIN: what the target sent after it is still sent, then the connection closes.</summary>
        public async ValueTask<ReplayResult> OnClientEndedAsync()
        {
            await _gate.WaitAsync().ConfigureAwait(false);
            try
            {
                if (_failed) return ReplayResult.Handled;
                if (_recorded == null)
                {
                    if (_pendingCount > 0 && _fallback) return ReplayResult.Unpaired;
                    if (_pendingCount > 0) Miss($"it ended after {Asked()}, which pairs with no recorded connection: {_book.DescribeFirstMessages(_pending, _pendingStart, _pendingCount)}");
                    return ReplayResult.Handled;
                }

                // The rest of the target's answer, up to the next thing the client would have sent.
                await PumpAsync(_closed.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException || e is TcpException || e is ObjectDisposedException)
            {
                // The client left meanwhile.
            }
            finally
            {
                _gate.Release();
            }

            return ReplayResult.Handled;
        }

        public void OnClosed()
        {
            try { _closed.Cancel(); } catch (ObjectDisposedException) { }
        }

        private async Task RunAsync(Func<Task> work)
        {
            try
            {
                await _gate.WaitAsync(_closed.Token).ConfigureAwait(false);
                try
                {
                    await work().ConfigureAwait(false);
                }
                finally
                {
                    _gate.Release();
                }
            }
            catch (Exception e) when (e is OperationCanceledException || e is TcpException || e is ObjectDisposedException || e is System.Net.Sockets.SocketException)
            {
                // The client left while we answered.
            }
        }

        /// <summary>Sends the target's messages due now, matches the client's bytes received, and stops where the client must send more.</summary>
        private async Task PumpAsync(CancellationToken cancellationToken)
        {
            var messages = _recorded.Messages;
            var end = _recorded.End;
            while (_index < messages.Count)
            {
                var message = messages[_index];
                if (message.From == RecordedSide.Target)
                {
                    if (end != null && end.By == RecordedSide.Target && end.How == RecordedEndKind.HalfClose && !_halfClosed && message.At > end.At)
                    {
                        await HalfCloseAsync(end.At, cancellationToken).ConfigureAwait(false);
                    }

                    await WaitUntilAsync(message.At, cancellationToken).ConfigureAwait(false);
                    await _connection.SendAsync(message.Data, cancellationToken).ConfigureAwait(false);
                    _connection.CountMessagesSent(1);
                    _index++;
                    continue;
                }

                if (end != null && end.By == RecordedSide.Target && end.How == RecordedEndKind.HalfClose && !_halfClosed && message.At > end.At)
                {
                    await HalfCloseAsync(end.At, cancellationToken).ConfigureAwait(false);
                }

                if (_pendingCount == 0) return;
                int expected = message.Data.Length - _offset;
                int n = Math.Min(expected, _pendingCount);
                for (int i = 0; i < n; i++)
                {
                    if (_pending[_pendingStart + i] != message.Data[_offset + i])
                    {
                        MissAt(message, i);
                        return;
                    }
                }

                _pendingStart += n;
                _pendingCount -= n;
                _offset += n;
                if (_offset < message.Data.Length) return;
                _offset = 0;
                _index++;
                _lastAt = message.At;
            }

            if (_pendingCount > 0)
            {
                Miss($"it sent {Asked()} where the recording (connection {_recorded.Id} of {_book.Name}) expects nothing more from the client" +
                    (end != null ? $" (it ended: {end})" : string.Empty));
                return;
            }

            if (_finished || end == null || end.By != RecordedSide.Target) return;
            _finished = true;
            await WaitUntilAsync(end.At, cancellationToken).ConfigureAwait(false);
            switch (end.How)
            {
                case RecordedEndKind.Reset:
                    _connection.Abort(reset: true);
                    break;
                case RecordedEndKind.HalfClose:
                    if (!_halfClosed) await HalfCloseAsync(end.At, cancellationToken).ConfigureAwait(false);
                    break;
                default:
                    // Not awaited: the close waits for the receive loop, which may be waiting for this.
                    _ = _connection.CloseAsync(CloseTimeout);
                    break;
            }
        }

        private async Task HalfCloseAsync(double at, CancellationToken cancellationToken)
        {
            _halfClosed = true;
            await WaitUntilAsync(at, cancellationToken).ConfigureAwait(false);
            await _connection.HalfCloseAsync().ConfigureAwait(false);
        }

        /// <summary>With -ReplayTiming: waits the recorded time between the previous step and this one.</summary>
        private async Task WaitUntilAsync(double at, CancellationToken cancellationToken)
        {
            double gap = at - _lastAt;
            _lastAt = Math.Max(_lastAt, at);
            if (_timing && gap >= 1)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(gap), cancellationToken).ConfigureAwait(false);
            }
        }

        private void MissAt(RecordedMessage message, int mismatch)
        {
            int position = _index + 1;
            string line = message.Line > 0 ? $", line {message.Line}" : string.Empty;
            string after = _offset + mismatch > 0 ? $" (the first {_offset + mismatch} bytes of it matched)" : string.Empty;
            Miss($"it sent {Asked()} where the recording (connection {_recorded.Id} of {_book.Name}, message {position}{line}) expects " +
                $"{JsonText.Show(message.Data, _offset, message.Data.Length - _offset)}{after}");
        }

        private string Asked() => JsonText.Show(_pending, _pendingStart, _pendingCount);

        private void Miss(string problem)
        {
            _failed = true;
            var connection = _connection;
            var error = new TcpException(TcpErrorKind.ReplayMiss,
                $"Replay miss on connection {connection.Id} from {connection.RemoteEndPoint}: {problem}. The connection is closed.");
            _book.Report(connection, error);
            _ = connection.CloseAsync(CloseTimeout);
        }

        private void Append(ReadOnlySpan<byte> data)
        {
            if (_pendingStart + _pendingCount + data.Length > _pending.Length)
            {
                Compact();
                if (_pendingCount + data.Length > _pending.Length)
                {
                    Array.Resize(ref _pending, Math.Max(_pending.Length * 2, _pendingCount + data.Length));
                }
            }

            data.CopyTo(_pending.AsSpan(_pendingStart + _pendingCount));
            _pendingCount += data.Length;
        }

        private void Compact()
        {
            if (_pendingStart == 0) return;
            Buffer.BlockCopy(_pending, _pendingStart, _pending, 0, _pendingCount);
            _pendingStart = 0;
        }
    }

    /// <summary>
    /// Start-TcpServer -ReplayPath: answers every connection from a recording, without a target.
    /// </summary>
    public sealed class ReplayHandler : LineHandler
    {
        private readonly Dictionary<TcpConnection, ReplaySession> _sessions = new Dictionary<TcpConnection, ReplaySession>();
        private readonly ReplayBook _book;

        /// <param name="recording">The recording (<see cref="TcpRecording.Load"/>).</param>
        /// <param name="name">The file's name, in error messages.</param>
        /// <param name="timing">Whether answers keep the recorded pace.</param>
        public ReplayHandler(TcpRecording recording, string name, bool timing)
        {
            if (recording == null) throw new ArgumentNullException(nameof(recording));
            _book = new ReplayBook(recording, name, reuse: true);
            Timing = timing;
            Recording = recording;
        }

        public TcpRecording Recording { get; }

        public bool Timing { get; }

        /// <summary>Where a <see cref="TcpErrorKind.ReplayMiss"/> is reported (the server's RecordError by default).</summary>
        public Action<TcpConnection, TcpException> ReportMiss
        {
            get => _book.Report;
            set => _book.Report = value ?? throw new ArgumentNullException(nameof(value));
        }

        public override bool WantsData => true;

        public override bool NeedsMessages => false;

        public override ValueTask OnLinesAsync(TcpConnection connection, System.Buffers.ReadOnlySequence<byte> rawLines,
            IReadOnlyList<TcpMessage> messages, int lineCount, CancellationToken cancellationToken) => default;

        public override void OnConnected(TcpConnection connection)
        {
            var session = new ReplaySession(_book, connection, Timing, fallback: false);
            lock (_sessions) _sessions[connection] = session;
            session.TryStartTargetFirst();
        }

        public override async ValueTask OnDataAsync(TcpConnection connection, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
        {
            var session = Find(connection);
            if (session != null) await session.OnDataAsync(data, cancellationToken).ConfigureAwait(false);
        }

        public override async ValueTask OnReceiveEndedAsync(TcpConnection connection)
        {
            var session = Find(connection);
            if (session != null) await session.OnClientEndedAsync().ConfigureAwait(false);
        }

        public override void OnDisconnected(TcpConnection connection)
        {
            ReplaySession session;
            lock (_sessions)
            {
                if (!_sessions.TryGetValue(connection, out session)) return;
                _sessions.Remove(connection);
            }

            session.OnClosed();
        }

        private ReplaySession Find(TcpConnection connection)
        {
            lock (_sessions) return _sessions.TryGetValue(connection, out var session) ? session : null;
        }
    }

    /// <summary>Milliseconds since a start, for recorded timings.</summary>
    internal sealed class RecordingClock
    {
        private readonly Stopwatch _watch = Stopwatch.StartNew();

        public double Now => _watch.Elapsed.TotalMilliseconds;
    }
}
