using System;
using System.Buffers;
using System.Collections.Generic;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;
using PSTcp.Framing;

namespace PSTcp
{
    /// <summary>
    /// The receive loop: one loop per connection reads into a <see cref="ReceiveBuffer"/>,
    /// frames what it can with the connection's <see cref="Framer"/>, queues the batch, hands it
    /// to the handler (echo, for servers), and only then reads again, so backpressure
    /// (a full Wait-mode queue, a slow handler, a peer that doesn't read its echoes) simply
    /// pauses reading and TCP pushes back on the sender.
    /// </summary>
    /// <remarks>
    /// Scheduling: reads and sends that complete synchronously run inline, which is what makes
    /// a busy connection cheap; but a connection whose data keeps arriving would then keep its
    /// thread forever and starve accepts and other connections (the flood Kestrel's IOQueue
    /// exists for). So after <see cref="InlineBudget"/> bytes handled without a real wait the
    /// loop yields: behind everyone else's completions in the thread pool's global queue, or,
    /// on a Linux poller's thread, behind that poller's next round of events
    /// (<see cref="ReadinessPoller.Yield"/>).
    /// </remarks>
    public sealed partial class TcpConnection
    {
        /// <summary>Bytes a connection may handle inline before it yields its thread.</summary>
        internal const int InlineBudget = 64 * 1024;

        private const int PhaseWaiting = 0;
        private const int PhaseHandling = 1;
        private const int PhaseStopped = 2;

        private readonly Framer _framer;
        private readonly LineHandler _handler;
        private readonly bool _isRaw;
        private readonly bool _queueMessages;
        private readonly bool _handlerNeedsMessages;
        private readonly ReceiveBuffer _buffer = new ReceiveBuffer();
        private List<TcpMessage> _handlerMessages;

        // Where the batch's messages lie, rented while the connection is busy and given back
        // before it waits: a connection that once read a thousand messages at a time must not
        // keep an array for a thousand while it idles.
        private Frame[] _frames = Array.Empty<Frame>();
        private long _sequence;
        private int _phase;
        private volatile bool _stopping;
        private bool _inHandler;
        private bool _awaitingProxyHeader;
        // A relay's side: its bytes are forwarded as read, and framing only observes them.
        private readonly bool _forwardsBytes;
        private Observing _observing;
        private bool _closeRequested;
        private bool _resetRequested;
        private bool _skipHandler;
        private int _closeStarted;

        /// <summary>Bytes of receive buffer this connection holds now (0 while idle).</summary>
        internal int ReceiveBufferSize => _buffer.Capacity;


        private async Task ReceiveLoopAsync()
        {
            var transport = _transport;
            var token = _abort.Token;
            bool likelyMore = false;
            int maxRead = _isRaw ? Math.Min(ReceiveBuffer.ReadSize, Framing.MaxMessageLength) : ReceiveBuffer.ReadSize;
            long inline = 0;
            try
            {
                while (true)
                {
                    // After a read that filled its buffer, more is likely there: read it at once
                    // if it is (one non-blocking recv), else don't wait holding the buffer.
                    ArraySegment<byte> segment = default;
                    int received = -1;
                    if (likelyMore && transport.CanWaitForData)
                    {
                        // A small array that a read just filled is likely too small for what waits.
                        segment = _buffer.GetWriteSegment(maxRead, _buffer.Capacity < ReceiveBuffer.ReadSize ? ReceiveBuffer.ReadSize : 0);
                        received = transport.TryReceive(segment);
                        if (received < 0) likelyMore = false;
                    }

                    if (!likelyMore)
                    {
                        // An idle connection holds no buffer: give it back (or shrink it to the
                        // partial message) and wait with a zero-byte read where the transport can.
                        _buffer.Trim();
                        ReturnFrames();
                        if (transport.CanWaitForData)
                        {
                            var wait = transport.WaitForDataAsync();
                            if (!wait.IsCompleted) inline = 0;
                            await wait.ConfigureAwait(false);
                        }
                    }

                    if (received < 0)
                    {
                        // Holding a small array for a partial message: ask how much is waiting, so a
                        // dribble fills its tail and a burst gets a full read.
                        int waiting = _buffer.Capacity > 0 && _buffer.Capacity < ReceiveBuffer.ReadSize && transport.CanWaitForData ? Available(transport) : 0;
                        segment = _buffer.GetWriteSegment(maxRead, waiting);
                        if (transport.WaitMayBeSpurious)
                        {
                            // Readiness is a hint: nothing there, wait again (without the buffer).
                            received = transport.TryReceive(segment);
                            if (received < 0) continue;
                        }
                        else
                        {
                            var receive = transport.ReceiveAsync(segment);
                            if (!receive.IsCompleted) inline = 0;
                            received = await receive.ConfigureAwait(false);
                        }
                    }

                    if (Interlocked.CompareExchange(ref _phase, PhaseHandling, PhaseWaiting) != PhaseWaiting || _stopping)
                    {
                        // Stopping: what was handled is queued; this read and a partial message are dropped.
                        return;
                    }

                    if (received == 0)
                    {
                        bool handleEnd = EnterBatch();
                        _skipHandler = !handleEnd;
                        try
                        {
                            await EndOfStreamAsync(token).ConfigureAwait(false);
                        }
                        finally
                        {
                            if (handleEnd) LeaveBatch();
                        }

                        return;
                    }

                    // A read that filled what it was offered means more is likely waiting.
                    likelyMore = received == segment.Count;
                    _buffer.Advance(received);
                    Interlocked.Add(ref _bytesReceived, received);
                    Server?.CountBytesReceived(received);
                    Diagnostics.PSTcpMetrics.BytesReceived(this, received);

                    var data = new ReadOnlyMemory<byte>(segment.Array, segment.Offset, received);
                    bool ready = true;
                    if (_awaitingProxyHeader)
                    {
                        if (!TakeProxyHeader(out ready)) return;
                        // Everything after the header is the connection's own data.
                        if (ready) data = new ReadOnlyMemory<byte>(_buffer.Array, _buffer.Start, _buffer.Length);
                    }

                    if (ready)
                    {
                        // A graceful close has begun: what arrives is only queued (no handler,
                        // no echo, no forwarding: the FIN went out or is about to).
                        bool handle = EnterBatch();
                        _skipHandler = !handle;
                        try
                        {
                            // Messages first, then the raw bytes (a relay forwards them): a reply to
                            // what was forwarded can't be queued before the message it answers.
                            // The bytes stay in the array until the next read.
                            if (!await FrameAndDispatchAsync(token).ConfigureAwait(false) || Volatile.Read(ref _resetRequested))
                            {
                                return;
                            }

                            if (handle && _handler != null && _handler.WantsData && !data.IsEmpty)
                            {
                                if (!_handler.RunsInline && ReadinessPoller.OnPollerThread) await Task.Yield();
                                var forwarded = _handler.OnDataAsync(this, data, token);
                                if (!forwarded.IsCompleted)
                                {
                                    // A relay's slow other side pauses this one: not idle meanwhile.
                                    await forwarded.ConfigureAwait(false);
                                    ResumeIdleClock();
                                }
                            }
                        }
                        finally
                        {
                            if (handle) LeaveBatch();
                        }

                        if (CloseRequested)
                        {
                            // The handler closed its own connection: the same graceful close,
                            // now that its batch (and what it sent) is done; reading goes on.
                            StartRequestedClose();
                        }
                    }

                    if (Interlocked.CompareExchange(ref _phase, PhaseWaiting, PhaseHandling) != PhaseHandling || _stopping)
                    {
                        return;
                    }

                    inline += received;
                    if (inline >= InlineBudget)
                    {
                        inline = 0;
                        await ReadinessPoller.Yield();
                    }
                }
            }
            catch (OperationCanceledException) when (token.IsCancellationRequested)
            {
                // Aborted: idle timeout, stop timeout or a forced close.
            }
            catch (TcpException e)
            {
                if (!ClosingByUs) Fail(e);
            }
            catch (Exception e) when (e is SocketException || e is ObjectDisposedException || e is System.IO.IOException)
            {
                // A reset is a normal end of a connection (a health check's, a killed client's):
                // an error only on a client connection, whose consumer must know its source broke,
                // or when it dropped a partial message the peer never finished.
                if (!ClosingByUs && IsReset(e) && (Server == null || _buffer.Length > 0))
                {
                    Fail(new TcpException(TcpErrorKind.ConnectionReset, $"Connection {Id} to {RemoteEndPoint} was reset by the peer.", e));
                }
            }
            finally
            {
                _buffer.Release();
                ReturnFrames();
                // Reset() from inside the handler: the batch was queued, now the RST.
                if (Volatile.Read(ref _resetRequested)) Abort(reset: true);
            }
        }

        /// <summary>Frames every complete message held and dispatches them; false when the connection must close.</summary>
        private async ValueTask<bool> FrameAndDispatchAsync(CancellationToken token)
        {
            while (true)
            {
                if (_observing != Observing.Framing && !SkipUnobserved()) return true;

                // The bytes stay in the buffer's array until the next read, even once consumed.
                var array = _buffer.Array;
                int batchStart = _buffer.Start;
                var status = FrameBatch(out int count, out int batchLength);
                if (count > 0)
                {
                    await DispatchAsync(array, batchStart, batchLength, count, mayKeepArray: true, token).ConfigureAwait(false);
                }

                if (status != FrameStatus.TooLong && status != FrameStatus.Invalid) return true;
                if (_forwardsBytes)
                {
                    // A relay only observes: the bytes are forwarded whatever the framing thinks of them.
                    await ObserveOverLimitAsync(status, final: false, token).ConfigureAwait(false);
                    continue;
                }

                Fail(new TcpException(TcpErrorKind.LineTooLong,
                    $"Connection {Id} from {RemoteEndPoint} sent {MessageFraming.Describe(status, _framer, Framing.MaxMessageLength)}; the connection was closed."));
                return false;
            }
        }

        /// <summary>What the framing of a connection that forwards its bytes (a relay's side) does now.</summary>
        private enum Observing
        {
            /// <summary>Messages are framed and queued.</summary>
            Framing,
            /// <summary>Inside a message over the limit, already observed truncated: its rest is passed over up to its terminator.</summary>
            SkippingRest,
            /// <summary>The framing lost its place (a bad or overlong length): nothing more is observed; the bytes are still forwarded.</summary>
            Stopped,
        }

        /// <summary>
        /// A relay's side met a message over -MaxMessageLength (or bytes its framing can't
        /// read): it never closes for that. A terminated message is observed truncated (its
        /// first MaxMessageLength bytes, <see cref="TcpMessage.Truncated"/>), and framing goes on
        /// after its terminator; any other framing can't find its place again, so observation
        /// stops, which is reported once as an error. The bytes are forwarded whole either way.
        /// </summary>
        private async ValueTask ObserveOverLimitAsync(FrameStatus status, bool final, CancellationToken token)
        {
            int limit = Framing.MaxMessageLength;
            if (status == FrameStatus.TooLong && _framer is TerminatorFramer && _buffer.Length > limit)
            {
                var data = new byte[limit];
                Buffer.BlockCopy(_buffer.Array, _buffer.Start, data, 0, limit);
                // Framing resumes after the message's terminator, searched from its start.
                _framer.Reset();
                _observing = final ? Observing.Stopped : Observing.SkippingRest;
                await QueueTruncatedAsync(data, token).ConfigureAwait(false);
                return;
            }

            _observing = Observing.Stopped;
            _buffer.Consume(_buffer.Length);
            var error = new TcpException(TcpErrorKind.LineTooLong,
                $"Connection {Id} with {RemoteEndPoint} sent {MessageFraming.Describe(status, _framer, limit)}; its messages are no longer observed (the relay still forwards every byte).");
            if (Server != null) Server.RecordError(error, this);
            else ErrorReported?.Invoke(this, new TcpErrorEventArgs(error, this));
        }

        /// <summary>Queues the observed first bytes of a message over the limit, marked truncated.</summary>
        private async ValueTask QueueTruncatedAsync(byte[] data, CancellationToken token)
        {
            Interlocked.Exchange(ref _lastReceiveTimestamp, System.Diagnostics.Stopwatch.GetTimestamp());
            Interlocked.Increment(ref _messagesReceived);
            Server?.CountMessagesReceived(1);
            long sequence = ++_sequence;
            if (!_queueMessages) return;
            var block = new MessageBlock(data, pooled: false, this, DateTime.UtcNow.Ticks, 1) { Truncated = true };
            var frames = new[] { new Frame(0, data.Length, data.Length) };
            try
            {
                await Queue.EnqueueAsync(block, frames, 0, 1, sequence, token).ConfigureAwait(false);
            }
            finally
            {
                // Wait mode: the read after this one is still forwarded only once this is queued.
                ResumeIdleClock();
            }
        }

        /// <summary>Passes over bytes not to be framed; true when framing may go on with what is left.</summary>
        private bool SkipUnobserved()
        {
            if (_observing == Observing.SkippingRest && _framer is TerminatorFramer terminated)
            {
                int skip = terminated.SkipToTerminator(_buffer.Unconsumed, out bool found);
                _buffer.Consume(skip);
                if (!found) return false;
                _framer.Reset();
                _observing = Observing.Framing;
                return true;
            }

            _buffer.Consume(_buffer.Length);
            return false;
        }

        /// <summary>
        /// Frames what the buffer holds in one pass (into <see cref="_frames"/> when the messages
        /// are queued or handed to the handler, else only counted) and consumes it.
        /// </summary>
        private FrameStatus FrameBatch(out int count, out int batchLength)
        {
            bool record = _queueMessages || _handlerNeedsMessages;
            int limit = _isRaw ? 1 : int.MaxValue;
            count = 0;
            batchLength = 0;
            while (true)
            {
                var bytes = _buffer.Unconsumed;
                Span<Frame> room = default;
                if (record)
                {
                    if (count == _frames.Length) GrowFrames(count, bytes.Length);
                    room = new Span<Frame>(_frames, count, _frames.Length - count);
                }

                var status = _framer.ReadFrames(bytes, room, record ? Math.Min(limit - count, room.Length) : limit - count, out int framed, out int consumed);
                if (record && batchLength > 0)
                {
                    // A second pass (the frames array grew): its offsets start where it started.
                    for (int i = count; i < count + framed; i++)
                    {
                        var f = _frames[i];
                        _frames[i] = new Frame(batchLength + f.PayloadOffset, f.PayloadLength, f.FrameLength);
                    }
                }

                count += framed;
                batchLength += consumed;
                _buffer.Consume(consumed);
                if (status != FrameStatus.Frame || count == limit) return status;
            }
        }

        private void GrowFrames(int used, int bytesLeft)
        {
            var pool = ArrayPool<Frame>.Shared;
            // A first guess from what is buffered (messages of 32 bytes), then doubling.
            var frames = pool.Rent(Math.Max(Math.Max(64, bytesLeft / 32), _frames.Length * 2));
            Array.Copy(_frames, frames, used);
            ReturnFrames();
            _frames = frames;
        }

        private void ReturnFrames()
        {
            if (_frames.Length == 0) return;
            ArrayPool<Frame>.Shared.Return(_frames);
            _frames = Array.Empty<Frame>();
        }

        private async ValueTask EndOfStreamAsync(CancellationToken token)
        {
            // The rest of a message observed truncated, or bytes no longer observed: nothing to frame.
            if (_observing != Observing.Framing) _buffer.Consume(_buffer.Length);
            if (_buffer.Length > 0)
            {
                int start = _buffer.Start;
                var status = _framer.TryReadFinal(_buffer.Unconsumed, out var frame);
                if ((status == FrameStatus.TooLong || status == FrameStatus.Invalid) && _forwardsBytes)
                {
                    await ObserveOverLimitAsync(status, final: true, token).ConfigureAwait(false);
                }
                else if (status == FrameStatus.TooLong || status == FrameStatus.Invalid)
                {
                    Fail(new TcpException(TcpErrorKind.LineTooLong,
                        $"Connection {Id} from {RemoteEndPoint} sent {MessageFraming.Describe(status, _framer, Framing.MaxMessageLength)} at its end."));
                    return;
                }

                if (status == FrameStatus.Frame)
                {
                    // The peer closed after an unterminated message: it is a message too.
                    if (_frames.Length == 0) GrowFrames(0, 0);
                    _frames[0] = frame;
                    await DispatchAsync(_buffer.Array, start, frame.FrameLength, 1, mayKeepArray: false, token).ConfigureAwait(false);
                }
            }

            if (_handler != null && !_skipHandler)
            {
                if (!_handler.RunsInline && ReadinessPoller.OnPollerThread) await Task.Yield();
                await _handler.OnReceiveEndedAsync(this).ConfigureAwait(false);
            }
        }

        /// <summary>
        /// Whether the connection is ready to read, so its silence counts as idle: not while it
        /// handles what it read (a busy handler, its own full Wait-mode queue, a relay's slow other side).
        /// </summary>
        internal bool IsReadyToRead => Volatile.Read(ref _phase) == PhaseWaiting;

        /// <summary>The connection reads again after a pause: its idle time counts from now.</summary>
        private void ResumeIdleClock() =>
            Interlocked.Exchange(ref _lastReceiveTimestamp, System.Diagnostics.Stopwatch.GetTimestamp());

        /// <summary>
        /// Hands <paramref name="count"/> framed messages (the bytes <paramref name="array"/>[offset..+length],
        /// <see cref="_frames"/> offset from there) to the queue, then the handler (nothing is sent because of a message before it is queued); with
        /// <paramref name="mayKeepArray"/> the queue may take the receive buffer's array itself
        /// rather than a copy.
        /// </summary>
        private async ValueTask DispatchAsync(byte[] array, int offset, int length, int count, bool mayKeepArray, CancellationToken token)
        {
            // Idle means no complete message: a client dribbling bytes without ever ending one
            // (slowloris) is as idle as a silent one.
            Interlocked.Exchange(ref _lastReceiveTimestamp, System.Diagnostics.Stopwatch.GetTimestamp());
            Interlocked.Add(ref _messagesReceived, count);
            Server?.CountMessagesReceived(count);
            Diagnostics.PSTcpMetrics.MessagesReceived(this, count);
            long firstSequence = _sequence + 1;
            _sequence += count;
            long now = _queueMessages || _handlerNeedsMessages ? DateTime.UtcNow.Ticks : 0;

            bool queued = false;
            bool paused = false;
            byte[] compacted = null;
            // A block that took the receive buffer's array itself, referenced once more while
            // the handler still reads (echoes) those bytes: a consumer can't recycle it meanwhile.
            MessageBlock held = null;
            if (_framer.KeptHeaderLength > 0 && (_queueMessages || _handlerNeedsMessages))
            {
                // Messages keep the bytes before their length field but not the field: made
                // one piece in a copy (the handler's echo and a relay's forwarding use the bytes as read).
                compacted = ArrayPool<byte>.Shared.Rent(length);
                Buffer.BlockCopy(array, offset, compacted, 0, length);
                _framer.CompactBatch(new Span<byte>(compacted, 0, length), _frames, count);
            }

            try
            {
                if (_handlerNeedsMessages && !_skipHandler)
                {
                    // Built (copied) before the queue may take the bytes.
                    var list = _handlerMessages ?? (_handlerMessages = new List<TcpMessage>());
                    for (int i = 0; i < count; i++)
                    {
                        list.Add(compacted != null
                            ? new TcpMessage(compacted, _frames[i].PayloadOffset, _frames[i].PayloadLength, this, firstSequence + i, now)
                            : new TcpMessage(array, offset + _frames[i].PayloadOffset, _frames[i].PayloadLength, this, firstSequence + i, now));
                    }
                }

                // Queued first, then handled: nothing is sent because of a message (its echo, a
                // reply) before it is queued, so a consumer never sees an effect before its
                // cause, and in Wait mode a full queue holds the echo of the line in hand too.
                int handlerOffset = offset;
                if (_queueMessages)
                {
                    queued = true;
                    MessageBlock block;
                    int blockOffset = offset;
                    if (compacted != null)
                    {
                        // The queue owns the compacted copy from here on.
                        block = new MessageBlock(compacted, pooled: true, this, now, count);
                        compacted = null;
                        blockOffset = 0;
                    }
                    else
                    {
                        block = TakeBlock(array, ref blockOffset, length, count, now, mayKeepArray, out held);
                    }

                    var enqueue = Queue.EnqueueAsync(block, _frames, blockOffset, count, firstSequence, token);
                    if (!enqueue.IsCompleted) paused = true;
                    await enqueue.ConfigureAwait(false);
                }

                if (_handler != null && !_skipHandler)
                {
                    // A handler not known to be non-blocking must not hold a poller's thread
                    // (and every other connection on it): it runs on the thread pool. The
                    // receive loop waits for it, so a connection's batches stay in order.
                    if (!_handler.RunsInline && ReadinessPoller.OnPollerThread)
                    {
                        paused = true;
                        await Task.Yield();
                    }

                    Volatile.Write(ref _inHandler, true);
                    // A handler that may close its own connection is told apart from other callers.
                    bool mark = _handler.MayCloseItsConnection;
                    if (mark) s_handling.Value = this;
                    try
                    {
                        var handled = _handler.OnLinesAsync(this, new ReadOnlySequence<byte>(array, handlerOffset, length),
                            (IReadOnlyList<TcpMessage>)_handlerMessages ?? Array.Empty<TcpMessage>(), count, token);
                        if (!handled.IsCompleted) paused = true;
                        await handled.ConfigureAwait(false);
                    }
                    finally
                    {
                        if (mark) s_handling.Value = null;
                        Volatile.Write(ref _inHandler, false);
                        // Pairs with RequestClose: either it sees the handler gone, or the loop
                        // sees the request (a Stop-TcpServer's close can land as the handler ends).
                        Interlocked.MemoryBarrier();
                        _handlerMessages?.Clear();
                    }
                }
            }
            catch when (_queueMessages && !queued)
            {
                // The connection was aborted before the batch reached the queue: what was read
                // but not queued is counted as dropped, so received = queued + dropped holds.
                Queue.CountDropped(this, count);
                throw;
            }
            finally
            {
                if (compacted != null) ArrayPool<byte>.Shared.Return(compacted);
                held?.Release(1);
                _handlerMessages?.Clear();
            }

            // Paused by its own full queue or a busy handler, the connection wasn't idle: its
            // idle clock starts again now that it reads again.
            if (paused) ResumeIdleClock();
        }

        /// <summary>
        /// The batch's bytes as a block for the queue. A batch that fills most of the receive
        /// buffer's array (a flood) gets the array itself, and the buffer moves what is left to
        /// a new one: no copy. Smaller batches are copied into a pooled array of their size, so
        /// a queued message never pins a 64 KiB array.
        /// </summary>
        private MessageBlock TakeBlock(byte[] array, ref int offset, int length, int count, long now, bool mayKeepArray, out MessageBlock held)
        {
            held = null;
            if (mayKeepArray && length >= array.Length / 2 && ReferenceEquals(array, _buffer.Array)
                && (_handler == null || !_handler.WantsData))
            {
                _buffer.Detach();
                if (_handler == null) return new MessageBlock(array, pooled: true, this, now, count);
                // The handler runs after the queueing and reads these bytes: one more reference until it returns.
                held = new MessageBlock(array, pooled: true, this, now, count + 1);
                return held;
            }

            var copy = ArrayPool<byte>.Shared.Rent(length);
            Buffer.BlockCopy(array, offset, copy, 0, length);
            offset = 0;
            return new MessageBlock(copy, pooled: true, this, now, count);
        }

        /// <summary>
        /// Behind a PROXY-protocol proxy: parses the header at the front of what was read. False
        /// when the connection is rejected (no valid header, or a real source the allow list
        /// refuses): counted, and closed quietly. <paramref name="complete"/> is false while
        /// the header is still arriving.
        /// </summary>
        private bool TakeProxyHeader(out bool complete)
        {
            complete = false;
            var status = ProxyProtocol.TryParse(_buffer.Unconsumed, out var header, out int consumed, out _);
            if (status == ProxyParseStatus.Incomplete && _buffer.Length < ProxyProtocol.MaxHeaderLength) return true;
            if (status == ProxyParseStatus.Valid)
            {
                _buffer.Consume(consumed);
                _awaitingProxyHeader = false;
                _proxyDeadline?.Dispose();
                if (!header.IsLocal) RemoteEndPoint = header.Source;
                if (!(RemoteEndPoint is System.Net.IPEndPoint peer) || Server.IsAllowed(peer.Address))
                {
                    complete = true;
                    return true;
                }
            }

            Server.CountRejected();
            return false;
        }

        /// <summary>
        /// TLS behind a PROXY-protocol proxy: the header comes before the handshake, so it is
        /// read straight from the socket, exactly (no byte of the TLS hello may be taken).
        /// </summary>
        private async Task<bool> ReadProxyHeaderBeforeTlsAsync()
        {
            var header = new byte[ProxyProtocol.MaxHeaderLength];
            int length = 0;
            try
            {
                // 12 bytes: v2's signature, and never more than the shortest v1 header (15).
                while (length < 12) length += await ReadSomeAsync(header, length, 12 - length).ConfigureAwait(false);
                if (header[0] == (byte)'P')
                {
                    while (header[length - 1] != (byte)'\n' && length < ProxyProtocol.MaxV1Length)
                    {
                        length += await ReadSomeAsync(header, length, 1).ConfigureAwait(false);
                    }
                }
                else
                {
                    while (length < 16) length += await ReadSomeAsync(header, length, 16 - length).ConfigureAwait(false);
                    int total = 16 + (header[14] << 8 | header[15]);
                    while (length < total && length < header.Length) length += await ReadSomeAsync(header, length, Math.Min(total, header.Length) - length).ConfigureAwait(false);
                }
            }
            catch (Exception e) when (e is SocketException || e is ObjectDisposedException || e is System.IO.EndOfStreamException)
            {
                Server.CountRejected();
                return false;
            }

            _buffer.GetWriteSegment(length);
            Buffer.BlockCopy(header, 0, _buffer.Array, 0, length);
            _buffer.Advance(length);
            if (!TakeProxyHeader(out bool complete)) return false; // counted
            bool whole = complete && _buffer.Length == 0;
            _buffer.Release();
            if (!whole) Server.CountRejected();
            return whole;
        }

        private async Task<int> ReadSomeAsync(byte[] buffer, int offset, int count)
        {
            int n = await _transport.Socket.ReceiveAsync(new ArraySegment<byte>(buffer, offset, count), SocketFlags.None).ConfigureAwait(false);
            if (n == 0) throw new System.IO.EndOfStreamException();
            return n;
        }

        /// <summary>Bytes the socket holds for us (an ioctl); on a failure, as if plenty: the read that follows reports it.</summary>
        private static int Available(Transport transport)
        {
            try
            {
                return transport.Socket.Available;
            }
            catch (Exception e) when (e is SocketException || e is ObjectDisposedException)
            {
                return int.MaxValue;
            }
        }

        private static bool IsReset(Exception e) =>
            e is SocketException se && (se.SocketErrorCode == SocketError.ConnectionReset
                || se.SocketErrorCode == SocketError.ConnectionAborted);
    }
}
