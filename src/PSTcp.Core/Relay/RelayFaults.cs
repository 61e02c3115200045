using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Threading;
using System.Threading.Tasks;
using PSTcp.Framing;

namespace PSTcp
{
    /// <summary>
    /// The faults on one relay (Add-TcpFault). Every relayed pair looks at this list for each
    /// read it forwards, so faults added or removed while the relay runs act on open connections
    /// at their next read.
    /// </summary>
    public sealed class RelayFaults
    {
        private readonly object _lock = new object();
        private TcpFault[] _faults = Array.Empty<TcpFault>();

        /// <summary>The faults on the relay now, in the order they were added.</summary>
        public IReadOnlyList<TcpFault> Faults => Volatile.Read(ref _faults);

        /// <summary>Whether any fault is on the relay (the forwarding path's only cost without faults).</summary>
        internal bool Any => Volatile.Read(ref _faults).Length > 0;

        internal TcpFault[] Current => Volatile.Read(ref _faults);

        /// <summary>Puts <paramref name="fault"/> on the relay; it acts from the next read of every connection.</summary>
        public void Add(TcpFault fault, TcpServer relay)
        {
            if (fault == null) throw new ArgumentNullException(nameof(fault));
            fault.Validate();
            lock (_lock)
            {
                if (fault.Added.HasValue) throw new ArgumentException($"Fault {fault.Name} was added already.", nameof(fault));
                foreach (var other in _faults)
                {
                    if (fault.Name != null && string.Equals(other.Name, fault.Name, StringComparison.OrdinalIgnoreCase))
                    {
                        throw new ArgumentException($"The relay has a fault named '{fault.Name}' already.", nameof(fault));
                    }
                }

                fault.Attach(relay);
                var list = new TcpFault[_faults.Length + 1];
                Array.Copy(_faults, list, _faults.Length);
                list[_faults.Length] = fault;
                Volatile.Write(ref _faults, list);
            }
        }

        /// <summary>Takes <paramref name="fault"/> off the relay: it fires no more; what it holds (a delay, a Timeout's hold) ends.</summary>
        public bool Remove(TcpFault fault)
        {
            lock (_lock)
            {
                int index = Array.IndexOf(_faults, fault);
                fault?.Detach();
                if (index < 0) return false;
                var list = new TcpFault[_faults.Length - 1];
                Array.Copy(_faults, 0, list, 0, index);
                Array.Copy(_faults, index + 1, list, index, _faults.Length - index - 1);
                Volatile.Write(ref _faults, list);
                return true;
            }
        }

        /// <summary>Removes every fault (the relay stopped).</summary>
        internal void Clear()
        {
            foreach (var fault in Current) Remove(fault);
        }
    }

    /// <summary>
    /// The faults' side of one relayed pair: each direction's reads are cut at message boundaries
    /// (the relay's framing, run again on the forwarded bytes) so a fault can fire on a message,
    /// then written as the faults say. The bytes are never held back for framing: a read is
    /// forwarded (or delayed, sliced, cut) as it came.
    /// </summary>
    internal sealed class RelayPairFaults
    {
        private readonly RelayFaults _faults;
        private readonly RelayPair _pair;
        private readonly FaultPipe _toTarget;
        private readonly FaultPipe _toClient;
        private readonly Dictionary<TcpFault, FaultState> _states = new Dictionary<TcpFault, FaultState>();
        private volatile bool _cut;

        public RelayPairFaults(RelayFaults faults, RelayPair pair)
        {
            _faults = faults;
            _pair = pair;
            _toTarget = new FaultPipe(this, MessageDirection.ClientToTarget);
            _toClient = new FaultPipe(this, MessageDirection.TargetToClient);
        }

        public bool Any => _faults.Any;

        /// <summary>The target connection (set when it opens: its data may come before the connect task completes).</summary>
        public TcpConnection Target { get; set; }

        private int ConversationId => _pair.Client.Id;

        /// <summary>Forwards one read of the client to the target, through the faults.</summary>
        public ValueTask ToTargetAsync(TcpConnection target, ReadOnlyMemory<byte> data, CancellationToken cancellationToken) =>
            _toTarget.ForwardAsync(_pair.Client, target, data, cancellationToken);

        /// <summary>Forwards one read of the target to the client, through the faults.</summary>
        public ValueTask ToClientAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken) =>
            _toClient.ForwardAsync(Target, _pair.Client, data, cancellationToken);

        /// <summary>
        /// A side ended (FIN) and its close is about to be passed on in <paramref name="direction"/>:
        /// a SlowClose fault delays it.
        /// </summary>
        public async ValueTask SlowCloseAsync(MessageDirection direction)
        {
            if (!_faults.Any) return;
            foreach (var fault in _faults.Current)
            {
                if (fault.Type != TcpFaultType.SlowClose || !fault.AppliesTo(direction)) continue;
                // With -Match or -AfterMessages, only a pair on which the trigger fired is slowed.
                if (fault.HasTrigger && !StateOf(fault).Armed) continue;
                if (!fault.TryFireOnClose()) continue;
                var from = direction == MessageDirection.ClientToTarget ? _pair.Client : Target;
                fault.Record(from, ConversationId, direction, null, $"close delayed {Ms(fault.Delay)}");
                await DelayAsync(fault.Delay, fault, CancellationToken.None).ConfigureAwait(false);
            }
        }

        /// <summary>
        /// A side closed abruptly (a reset, a cut) and the other side is to be closed in
        /// <paramref name="direction"/>: after a SlowClose fault's delay, if one fires.
        /// </summary>
        public void CloseAfterSlowClose(MessageDirection direction, Func<Task> close)
        {
            if (!_faults.Any)
            {
                _ = close();
                return;
            }

            _ = CloseLaterAsync();

            async Task CloseLaterAsync()
            {
                await SlowCloseAsync(direction).ConfigureAwait(false);
                await close().ConfigureAwait(false);
            }
        }

        private FaultState StateOf(TcpFault fault)
        {
            lock (_states)
            {
                if (!_states.TryGetValue(fault, out var state))
                {
                    state = new FaultState();
                    _states[fault] = state;
                }

                return state;
            }
        }

        /// <summary>Closes both sides gracefully (LimitData reached, a Timeout's -Delay over); nothing more is forwarded.</summary>
        private void CloseBoth()
        {
            _cut = true;
            var target = Target;
            if (target != null && target.State < ConnectionState.Closing) _ = target.CloseAsync(TimeSpan.FromSeconds(1));
            if (_pair.Client.State < ConnectionState.Closing) _ = _pair.Client.CloseAsync(TimeSpan.FromSeconds(1));
        }

        /// <summary>Resets both sides (RST).</summary>
        private void ResetBoth()
        {
            _cut = true;
            // The client first: the target's end would otherwise close the client gracefully (FIN) first.
            _pair.Client.Abort(reset: true);
            Target?.Abort(reset: true);
        }

        private static async ValueTask<bool> DelayAsync(TimeSpan delay, TcpFault fault, CancellationToken cancellationToken)
        {
            if (delay <= TimeSpan.Zero) return true;
            using (var linked = CancellationTokenSource.CreateLinkedTokenSource(fault.RemovedToken, cancellationToken))
            {
                try
                {
                    await Task.Delay(delay, linked.Token).ConfigureAwait(false);
                    return true;
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    // The fault was removed while it waited: go on as if it never fired.
                    return false;
                }
            }
        }

        private static string Ms(TimeSpan value) => $"{value.TotalMilliseconds:0} ms";

        /// <summary>A fault's state on this pair.</summary>
        private sealed class FaultState
        {
            /// <summary>A one-shot fault fired here (LimitData counting, SlowClose triggered, Timeout holding).</summary>
            public bool Armed;
            public long Left;
            public bool Holding;
            public MessageDirection ArmedDirection;
        }

        /// <summary>A piece of a read: the bytes of one message that end in it, or the tail of a message still arriving.</summary>
        private struct Segment
        {
            public int Offset;
            public int Length;
            public bool Whole;
            public string Text;
        }

        /// <summary>One direction of the pair.</summary>
        private sealed class FaultPipe
        {
            private readonly RelayPairFaults _owner;
            private readonly MessageDirection _direction;
            private Framer _framer;
            private bool _unframed;
            private byte[] _pending = Array.Empty<byte>();
            private int _pendingLength;
            private readonly List<Segment> _segments = new List<Segment>();
            // Bandwidth: when the next byte may go, per fault.
            private readonly Dictionary<TcpFault, long> _nextFree = new Dictionary<TcpFault, long>();

            public FaultPipe(RelayPairFaults owner, MessageDirection direction)
            {
                _owner = owner;
                _direction = direction;
            }

            public async ValueTask ForwardAsync(TcpConnection from, TcpConnection to, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
            {
                if (_owner._cut) return;
                long arrival = Stopwatch.GetTimestamp();
                var faults = _owner._faults.Current;
                Split(from, data);
                var segments = _segments.ToArray();
                _data = data;
                _runStart = _runEnd = 0;
                foreach (var segment in segments)
                {
                    if (_owner._cut) return;
                    if (!await ForwardSegmentAsync(faults, from, to, data.Slice(segment.Offset, segment.Length), segment, arrival, cancellationToken).ConfigureAwait(false))
                    {
                        return;
                    }
                }

                await FlushAsync(to, cancellationToken).ConfigureAwait(false);
            }

            // The run of segments that no fault touched, not written yet: one write for them, as the read came.
            private ReadOnlyMemory<byte> _data;
            private int _runStart;
            private int _runEnd;

            private async ValueTask FlushAsync(TcpConnection to, CancellationToken cancellationToken)
            {
                if (_runEnd == _runStart) return;
                var run = _data.Slice(_runStart, _runEnd - _runStart);
                _runStart = _runEnd;
                if (!_owner._cut && to != null) await to.SendAsync(run, cancellationToken).ConfigureAwait(false);
            }

            /// <summary>Writes one segment as the faults say; false when nothing more of the read goes (cut, reset, held).</summary>
            private async ValueTask<bool> ForwardSegmentAsync(TcpFault[] faults, TcpConnection from, TcpConnection to, ReadOnlyMemory<byte> bytes,
                Segment segment, long arrival, CancellationToken cancellationToken)
            {
                int conversation = _owner.ConversationId;
                bool cutAfter = false;
                TcpFault bandwidth = null, slicer = null;
                foreach (var fault in faults)
                {
                    if (!fault.AppliesTo(_direction) || !fault.Active) continue;
                    switch (fault.Type)
                    {
                        case TcpFaultType.Latency:
                            if (fault.TryFire(segment.Text, segment.Whole))
                            {
                                var latency = fault.NextLatency();
                                var due = TimeSpan.FromSeconds((double)(arrival - Stopwatch.GetTimestamp()) / Stopwatch.Frequency) + latency;
                                fault.Record(from, conversation, _direction, segment.Text, $"delayed {Ms(latency)}");
                                await FlushAsync(to, cancellationToken).ConfigureAwait(false);
                                await DelayAsync(due, fault, cancellationToken).ConfigureAwait(false);
                            }

                            break;
                        case TcpFaultType.Bandwidth:
                            if (fault.TryFire(segment.Text, segment.Whole))
                            {
                                fault.Record(from, conversation, _direction, segment.Text, $"{bytes.Length} bytes at {fault.BytesPerSecond} bytes/s");
                                bandwidth = fault;
                            }

                            break;
                        case TcpFaultType.Slicer:
                            if (fault.TryFire(segment.Text, segment.Whole))
                            {
                                int pieces = (bytes.Length + fault.SliceSize - 1) / fault.SliceSize;
                                fault.Record(from, conversation, _direction, segment.Text, $"{bytes.Length} bytes in {pieces} slices");
                                slicer = fault;
                            }

                            break;
                        case TcpFaultType.LimitData:
                        {
                            var state = _owner.StateOf(fault);
                            bool armedHere;
                            lock (state)
                            {
                                armedHere = state.Armed && state.ArmedDirection == _direction;
                            }

                            if (!armedHere && !state.Armed && fault.TryFire(segment.Text, segment.Whole))
                            {
                                lock (state)
                                {
                                    state.Armed = true;
                                    state.ArmedDirection = _direction;
                                    state.Left = fault.ByteCount;
                                }

                                armedHere = true;
                                fault.Record(from, conversation, _direction, segment.Text, $"closes after {fault.ByteCount} bytes");
                            }

                            if (armedHere)
                            {
                                lock (state)
                                {
                                    if (bytes.Length >= state.Left)
                                    {
                                        bytes = bytes.Slice(0, (int)state.Left);
                                        state.Left = 0;
                                        cutAfter = true;
                                    }
                                    else
                                    {
                                        state.Left -= bytes.Length;
                                    }
                                }
                            }

                            break;
                        }
                        case TcpFaultType.Timeout:
                        {
                            var state = _owner.StateOf(fault);
                            bool holding;
                            lock (state) holding = state.Holding;
                            if (!holding && fault.TryFire(segment.Text, segment.Whole))
                            {
                                lock (state) state.Holding = true;
                                holding = true;
                                fault.Record(from, conversation, _direction, segment.Text,
                                    fault.Delay > TimeSpan.Zero ? $"forwarding stopped; closes in {Ms(fault.Delay)}" : "forwarding stopped");
                                if (fault.Delay > TimeSpan.Zero) _ = CloseLaterAsync(fault);
                            }

                            // Held: what arrives is dropped while the fault is on the relay.
                            if (holding)
                            {
                                await FlushAsync(to, cancellationToken).ConfigureAwait(false);
                                return false;
                            }

                            break;
                        }
                        case TcpFaultType.Reset:
                            if (fault.TryFire(segment.Text, segment.Whole))
                            {
                                fault.Record(from, conversation, _direction, segment.Text,
                                    fault.Delay > TimeSpan.Zero ? $"reset after {Ms(fault.Delay)}" : "reset");
                                // Removed while it waited: the read goes on as if it never fired.
                                await FlushAsync(to, cancellationToken).ConfigureAwait(false);
                                if (await DelayAsync(fault.Delay, fault, cancellationToken).ConfigureAwait(false))
                                {
                                    _owner.ResetBoth();
                                    return false;
                                }
                            }

                            break;
                        case TcpFaultType.SlowClose:
                            if (fault.HasTrigger)
                            {
                                // Triggered SlowClose: the message arms the pair; the close is the firing.
                                var state = _owner.StateOf(fault);
                                lock (state)
                                {
                                    if (!state.Armed && fault.TryTrigger(segment.Text, segment.Whole)) state.Armed = true;
                                }
                            }

                            break;
                    }
                }

                if (bandwidth == null && slicer == null && !cutAfter && bytes.Length == segment.Length)
                {
                    // Untouched: joins the run (written with its neighbours, in one write).
                    if (_runEnd != segment.Offset) await FlushAsync(to, cancellationToken).ConfigureAwait(false);
                    if (_runEnd == _runStart) _runStart = segment.Offset;
                    _runEnd = segment.Offset + segment.Length;
                    return true;
                }

                await FlushAsync(to, cancellationToken).ConfigureAwait(false);
                if (!bytes.IsEmpty && !_owner._cut)
                {
                    await WriteAsync(to, bytes, bandwidth, slicer, cancellationToken).ConfigureAwait(false);
                }

                if (cutAfter)
                {
                    _owner.CloseBoth();
                    return false;
                }

                return true;
            }

            private async Task CloseLaterAsync(TcpFault fault)
            {
                if (await DelayAsync(fault.Delay, fault, CancellationToken.None).ConfigureAwait(false) && fault.Active)
                {
                    _owner.CloseBoth();
                }
            }

            private async ValueTask WriteAsync(TcpConnection to, ReadOnlyMemory<byte> bytes, TcpFault bandwidth, TcpFault slicer, CancellationToken cancellationToken)
            {
                if (to == null) return;
                if (bandwidth == null && slicer == null)
                {
                    await to.SendAsync(bytes, cancellationToken).ConfigureAwait(false);
                    return;
                }

                // Pieces: the slicer's size, else a tenth of a second's worth at the bandwidth.
                int piece = slicer != null ? slicer.SliceSize : (int)Math.Max(1, Math.Min(64 * 1024, bandwidth.BytesPerSecond / 10));
                while (!bytes.IsEmpty)
                {
                    var chunk = bytes.Slice(0, Math.Min(piece, bytes.Length));
                    bytes = bytes.Slice(chunk.Length);
                    if (bandwidth != null && bandwidth.Active)
                    {
                        // Token bucket without burst: each piece may go once the previous ones' time is over.
                        long now = Stopwatch.GetTimestamp();
                        long free;
                        lock (_nextFree)
                        {
                            _nextFree.TryGetValue(bandwidth, out free);
                            if (free < now) free = now;
                            _nextFree[bandwidth] = free + (long)((double)chunk.Length / bandwidth.BytesPerSecond * Stopwatch.Frequency);
                        }

                        if (free > now)
                        {
                            await DelayAsync(TimeSpan.FromSeconds((double)(free - now) / Stopwatch.Frequency), bandwidth, cancellationToken).ConfigureAwait(false);
                        }
                    }

                    if (_owner._cut) return;
                    await to.SendAsync(chunk, cancellationToken).ConfigureAwait(false);
                    if (slicer != null && !bytes.IsEmpty && slicer.Active)
                    {
                        await DelayAsync(slicer.SliceDelay, slicer, cancellationToken).ConfigureAwait(false);
                    }
                }

                if (bandwidth != null && !bandwidth.Active)
                {
                    lock (_nextFree) _nextFree.Remove(bandwidth);
                }
            }

            /// <summary>
            /// Cuts a read into segments at the message boundaries of the relay's framing. The
            /// framer sees the bytes of the message still arriving plus this read; a stream it
            /// can't frame (a message over the limit, bytes that aren't its framing) is taken
            /// read by read from then on, as on Raw.
            /// </summary>
            private void Split(TcpConnection from, ReadOnlyMemory<byte> data)
            {
                _segments.Clear();
                if (_framer == null && !_unframed)
                {
                    if (from == null || from.Framing.Kind == FramingKind.Raw) _unframed = true;
                    else _framer = from.Framing.CreateFramer();
                }

                var encoding = from?.Encoding ?? System.Text.Encoding.UTF8;
                if (_unframed)
                {
                    _segments.Add(new Segment { Offset = 0, Length = data.Length, Whole = true, Text = encoding.GetString(data.ToArray()) });
                    return;
                }

                int previous = _pendingLength;
                EnsureRoom(previous + data.Length);
                data.Span.CopyTo(new Span<byte>(_pending, previous, data.Length));
                _pendingLength = previous + data.Length;
                int position = 0;
                int chunkDone = 0;
                while (position < _pendingLength)
                {
                    var status = _framer.TryReadFrame(new ReadOnlySpan<byte>(_pending, position, _pendingLength - position), out var frame);
                    if (status == FrameStatus.Frame)
                    {
                        int end = position + frame.FrameLength - previous;
                        if (end > chunkDone)
                        {
                            _segments.Add(new Segment
                            {
                                Offset = chunkDone,
                                Length = end - chunkDone,
                                Whole = true,
                                Text = encoding.GetString(_pending, position + frame.PayloadOffset, frame.PayloadLength),
                            });
                            chunkDone = end;
                        }

                        position += frame.FrameLength;
                        continue;
                    }

                    if (status != FrameStatus.NeedMoreData)
                    {
                        // Not this framing after all: whole reads from now on.
                        _unframed = true;
                        _pendingLength = 0;
                        _pending = Array.Empty<byte>();
                        if (chunkDone < data.Length)
                        {
                            _segments.Add(new Segment { Offset = chunkDone, Length = data.Length - chunkDone, Whole = true, Text = encoding.GetString(data.Slice(chunkDone).ToArray()) });
                        }

                        return;
                    }

                    break;
                }

                if (chunkDone < data.Length)
                {
                    _segments.Add(new Segment { Offset = chunkDone, Length = data.Length - chunkDone, Whole = false, Text = null });
                }

                // Keep the message still arriving, at the front.
                int left = _pendingLength - position;
                if (left > 0 && position > 0) Buffer.BlockCopy(_pending, position, _pending, 0, left);
                _pendingLength = left;
                if (left == 0 && _pending.Length > 64 * 1024) _pending = Array.Empty<byte>();
            }

            private void EnsureRoom(int size)
            {
                if (_pending.Length >= size) return;
                var bigger = new byte[Math.Max(size, Math.Max(1024, _pending.Length * 2))];
                Buffer.BlockCopy(_pending, 0, bigger, 0, _pendingLength);
                _pending = bigger;
            }
        }
    }
}
