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

        private HandlerAction(string[] lines, int script)
        {
            Lines = lines;
            Script = script;
        }

        public static HandlerAction Reply(string[] lines) => new HandlerAction(lines, -1);

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
    /// pooled buffer, sent in one write per batch.
    /// </summary>
    internal sealed class HandlerOutput : IBufferWriter<byte>, IDisposable
    {
        private readonly byte[] _newLine;
        private readonly Encoding _encoding;
        private readonly PSTcp.Framing.MessageFraming _framing;
        private byte[] _buffer = ArrayPool<byte>.Shared.Rent(512);
        private byte[] _scratch;
        private int _length;

        public HandlerOutput(TcpConnection connection, byte[] newLine)
        {
            _encoding = connection.Encoding;
            _framing = connection.Framing;
            _newLine = newLine;
        }

        /// <summary>Messages framed so far.</summary>
        public int Count { get; private set; }

        public ReadOnlyMemory<byte> Written => new ReadOnlyMemory<byte>(_buffer, 0, _length);

        /// <summary>One output object: bytes as they are, anything else as its string, each one message.</summary>
        public void Write(object item)
        {
            if (item is PSObject pso)
            {
                if (pso.BaseObject is byte[] bytes)
                {
                    WriteFrame(bytes);
                    return;
                }

                item = pso.BaseObject is string s ? s : pso.ToString();
            }

            if (item is byte[] raw)
            {
                WriteFrame(raw);
                return;
            }

            WriteText(item as string ?? item.ToString());
        }

        public void WriteText(string text)
        {
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

        public void Dispose()
        {
            var buffer = Interlocked.Exchange(ref _buffer, null);
            if (buffer != null) ArrayPool<byte>.Shared.Return(buffer);
            if (_scratch != null) ArrayPool<byte>.Shared.Return(_scratch);
            _scratch = null;
        }
    }
}
