using System;
using System.Buffers;
using System.Collections.Generic;
using System.Management.Automation;
using System.Text;
using System.Threading;
using System.Threading.Tasks;

namespace PSTcp.Commands
{
    /// <summary>
    /// What a handler server does with one message: send fixed lines (a -Reply string value), or
    /// call one of its scriptblocks (by index into the workers' scripts).
    /// </summary>
    internal sealed class HandlerAction
    {
        public static readonly HandlerAction Nothing = new HandlerAction(Array.Empty<string>(), -1);

        // Which of Replies each connection is at: repeated matches answer in turn, the last repeats.
        private readonly System.Runtime.CompilerServices.ConditionalWeakTable<TcpConnection, StrongBox> _turns =
            new System.Runtime.CompilerServices.ConditionalWeakTable<TcpConnection, StrongBox>();

        private HandlerAction(string[] lines, int script, TcpReply[] replies = null)
        {
            Lines = lines;
            Script = script;
            Replies = replies;
        }

        public static HandlerAction Reply(string[] lines) => new HandlerAction(lines, -1);

        /// <summary>New-TcpReply actions: one per match on a connection, in turn; the last repeats.</summary>
        public static HandlerAction Sequence(TcpReply[] replies) => new HandlerAction(Array.Empty<string>(), -1, replies);

        /// <summary>The reply actions, or null when the action is fixed lines or a script.</summary>
        public TcpReply[] Replies { get; }

        /// <summary>This connection's next reply of <see cref="Replies"/>.</summary>
        public TcpReply NextReply(TcpConnection connection)
        {
            var turn = _turns.GetValue(connection, _ => new StrongBox());
            int index = Interlocked.Increment(ref turn.Value) - 1;
            return Replies[Math.Min(index, Replies.Length - 1)];
        }

        private sealed class StrongBox
        {
            public int Value;
        }

        /// <summary>Writes a fixed action (lines or this connection's next reply) into the output.</summary>
        public void WriteTo(HandlerOutput output, TcpConnection connection)
        {
            if (Replies != null)
            {
                output.AddReply(NextReply(connection));
                return;
            }

            foreach (var line in Lines) output.WriteText(line);
        }

        public static HandlerAction Call(int script) => new HandlerAction(null, script);

        /// <summary>The lines to send, or null when a scriptblock answers.</summary>
        public string[] Lines { get; }

        public int Script { get; }

        public bool IsScript => Lines == null;
    }

    /// <summary>
    /// One read batch of one connection on its way through a handler: the messages, what to do
    /// with each, and the framed output, sent by the connection's own loop in one write when the
    /// batch is done (so a worker never blocks on a slow reader).
    /// </summary>
    internal sealed class HandlerBatch
    {
        // Completed on the worker, which then runs the connection's loop on until it waits
        // again (sends the output, frames the next read, posts the next batch): no second
        // thread hop per batch. That loop never blocks, so the worker is back at once.
        private readonly TaskCompletionSource<bool> _done = new TaskCompletionSource<bool>();
        private readonly HandlerAction[] _actions;
        private readonly HandlerAction _action;
        private volatile bool _cancelled;

        public HandlerBatch(TcpConnection connection, TcpMessage[] messages, HandlerAction[] actions, HandlerAction action, HandlerOutput output)
        {
            Connection = connection;
            Messages = messages;
            _actions = actions;
            _action = action;
            Output = output;
        }

        public TcpConnection Connection { get; }

        public TcpMessage[] Messages { get; }

        public HandlerOutput Output { get; }

        /// <summary>Completes when every message was handled (or the batch was abandoned).</summary>
        public Task Done => _done.Task;

        public bool IsCancelled => _cancelled;

        public HandlerAction ActionFor(int index) => _actions?[index] ?? _action;

        public void Complete() => _done.TrySetResult(true);

        /// <summary>The connection was aborted: the worker stops after the current message, nothing is sent.</summary>
        public void Cancel()
        {
            _cancelled = true;
            _done.TrySetCanceled();
        }

        public void Fail(Exception error) => _done.TrySetException(error);

        /// <summary>
        /// Whether the handler asked to close its connection (Disconnect-TcpEndpoint from inside
        /// it): the messages after that one are not handled, and what was written is sent first.
        /// </summary>
        public static bool CloseRequested(TcpConnection connection) =>
            connection.CloseRequested || connection.State != ConnectionState.Open;
    }

    /// <summary>
    /// Frames a handler's output with the connection's framing (Line: plus -NewLine) into one
    /// pooled buffer, sent in one write per batch. Bytes are bytes: a byte[] is one message, and
    /// consecutive [byte] outputs (an array the pipeline unrolled) are gathered into one. A
    /// <see cref="TcpReply"/> is a step of its own (a delay, then its messages, then a close or
    /// reset), taken by <see cref="SendAsync"/> in order with the rest.
    /// </summary>
    internal sealed class HandlerOutput : IBufferWriter<byte>, IDisposable
    {
        private readonly byte[] _newLine;
        private readonly Encoding _encoding;
        private readonly PSTcp.Framing.MessageFraming _framing;
        private readonly TcpConnection _connection;
        private byte[] _buffer = ArrayPool<byte>.Shared.Rent(512);
        private byte[] _scratch;
        private int _length;
        private List<byte> _bytes;
        private List<Step> _steps;

        public HandlerOutput(TcpConnection connection, byte[] newLine)
        {
            _connection = connection;
            _encoding = connection.Encoding;
            _framing = connection.Framing;
            _newLine = newLine;
        }

        /// <summary>Messages framed so far (not counting replies' own).</summary>
        public int Count { get; private set; }

        /// <summary>Whether a reply that closes or resets was written: later output is dropped.</summary>
        public bool Ended { get; private set; }

        public ReadOnlyMemory<byte> Written => new ReadOnlyMemory<byte>(_buffer, 0, _length);

        /// <summary>Whether anything waits to be sent (framed bytes or reply steps).</summary>
        public bool IsEmpty => _length == 0 && (_steps == null || _steps.Count == 0) && (_bytes == null || _bytes.Count == 0);

        /// <summary>One output object: bytes as they are, a reply as its step, anything else as its string, each one message.</summary>
        public void Write(object item)
        {
            var original = item;
            if (item is PSObject pso) item = pso.BaseObject;
            if (item is byte b)
            {
                if (Ended) return;
                (_bytes ?? (_bytes = new List<byte>())).Add(b);
                return;
            }

            FlushBytes();
            if (Ended) return;
            switch (item)
            {
                case byte[] raw:
                    WriteFrame(raw);
                    return;
                case TcpReply reply:
                    AddReply(reply);
                    return;
                case string text:
                    WriteText(text);
                    return;
                default:
                    WriteText(original.ToString());
                    return;
            }
        }

        /// <summary>Ends a run of [byte] outputs: they become one message. Call at the end of each handler call.</summary>
        public void FlushBytes()
        {
            if (_bytes == null || _bytes.Count == 0) return;
            var bytes = _bytes.ToArray();
            _bytes.Clear();
            WriteFrame(bytes);
        }

        /// <summary>A reply action: its messages are framed now, and sent after its delay.</summary>
        public void AddReply(TcpReply reply)
        {
            if (Ended) return;
            byte[] framed = Array.Empty<byte>();
            int count = 0;
            if (!reply.NoReply && reply.Message.Length > 0)
            {
                using (var inner = new HandlerOutput(_connection, _newLine))
                {
                    foreach (var message in reply.Message)
                    {
                        if (reply.Raw)
                        {
                            var bytes = message as byte[] ?? _encoding.GetBytes(message.ToString());
                            inner.WriteUnframed(bytes);
                        }
                        else
                        {
                            inner.Write(message);
                        }
                    }

                    framed = inner.Written.ToArray();
                    count = reply.Message.Length;
                }
            }

            (_steps ?? (_steps = new List<Step>())).Add(new Step(_length, reply, framed, count));
            Ended = reply.Ends;
        }

        private void WriteUnframed(byte[] bytes)
        {
            var span = GetSpan(bytes.Length);
            bytes.CopyTo(span);
            Advance(bytes.Length);
            Count++;
        }

        public void WriteText(string text)
        {
            if (Ended) return;
            int max = _encoding.GetMaxByteCount(text.Length);
            if (_scratch == null || _scratch.Length < max)
            {
                if (_scratch != null) ArrayPool<byte>.Shared.Return(_scratch);
                _scratch = ArrayPool<byte>.Shared.Rent(Math.Max(max, 256));
            }

            int length = _encoding.GetBytes(text, 0, text.Length, _scratch, 0);
            WriteFrame(new ReadOnlySpan<byte>(_scratch, 0, length));
        }

        /// <exception cref="ArgumentException">The payload can't be framed (FixedLength of another length …).</exception>
        public void WriteFrame(ReadOnlySpan<byte> payload)
        {
            if (Ended) return;
            int before = _length;
            try
            {
                _framing.WriteFrame(payload, this, _newLine);
            }
            catch
            {
                _length = before;
                throw;
            }

            Count++;
        }

        /// <summary>
        /// Sends what was written, in order: framed output, and each reply step (its delay on
        /// this task, holding no worker; its messages; its close or reset, after which the rest
        /// is dropped).
        /// </summary>
        public async ValueTask SendAsync(CancellationToken cancellationToken)
        {
            FlushBytes();
            var connection = _connection;
            if (_steps == null)
            {
                if (_length == 0) return;
                await connection.SendAsync(Written, cancellationToken).ConfigureAwait(false);
                connection.CountMessagesSent(Count);
                return;
            }

            int sent = 0;
            foreach (var step in _steps)
            {
                if (step.Position > sent)
                {
                    await connection.SendAsync(new ReadOnlyMemory<byte>(_buffer, sent, step.Position - sent), cancellationToken).ConfigureAwait(false);
                    sent = step.Position;
                }

                var reply = step.Reply;
                if (reply.Delay > TimeSpan.Zero)
                {
                    await Task.Delay(reply.Delay, cancellationToken).ConfigureAwait(false);
                }

                if (step.Framed.Length > 0)
                {
                    await connection.SendAsync(step.Framed, cancellationToken).ConfigureAwait(false);
                    connection.CountMessagesSent(step.Count);
                }

                if (reply.Ends) ConversationLineHandler.NotifyClosing(connection);
                if (reply.Reset)
                {
                    connection.Reset();
                    return;
                }

                if (reply.Close)
                {
                    await connection.CloseAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
                    return;
                }
            }

            if (_length > sent)
            {
                await connection.SendAsync(new ReadOnlyMemory<byte>(_buffer, sent, _length - sent), cancellationToken).ConfigureAwait(false);
            }

            connection.CountMessagesSent(Count);
        }

        public void Advance(int count) => _length += count;

        public Memory<byte> GetMemory(int sizeHint = 0)
        {
            Ensure(sizeHint);
            return new Memory<byte>(_buffer, _length, _buffer.Length - _length);
        }

        public Span<byte> GetSpan(int sizeHint = 0)
        {
            Ensure(sizeHint);
            return new Span<byte>(_buffer, _length, _buffer.Length - _length);
        }

        private void Ensure(int sizeHint)
        {
            int need = _length + Math.Max(sizeHint, 1);
            if (need <= _buffer.Length) return;
            var bigger = ArrayPool<byte>.Shared.Rent(Math.Max(need, _buffer.Length * 2));
            Buffer.BlockCopy(_buffer, 0, bigger, 0, _length);
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = bigger;
        }

        /// <summary>Forgets what was written (the buffer is kept): for output sent as it is written.</summary>
        public void Clear()
        {
            _length = 0;
            Count = 0;
            _steps?.Clear();
        }

        public void Dispose()
        {
            var buffer = Interlocked.Exchange(ref _buffer, null);
            if (buffer != null) ArrayPool<byte>.Shared.Return(buffer);
            if (_scratch != null) ArrayPool<byte>.Shared.Return(_scratch);
            _scratch = null;
        }

        private readonly struct Step
        {
            public Step(int position, TcpReply reply, byte[] framed, int count)
            {
                Position = position;
                Reply = reply;
                Framed = framed;
                Count = count;
            }

            /// <summary>Where in the framed output the step comes: what precedes it is sent first.</summary>
            public int Position { get; }

            public TcpReply Reply { get; }

            public byte[] Framed { get; }

            public int Count { get; }
        }
    }
}
