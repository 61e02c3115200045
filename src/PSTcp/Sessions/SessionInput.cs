using System;
using System.Collections.Generic;
using System.Management.Automation.Host;
using System.Text;
using System.Threading;
using System.Threading.Channels;
using System.Threading.Tasks;

namespace PSTcp.Commands
{
    /// <summary>Where Enter-TcpSession's lines come from: the pipeline, redirected standard input, or a terminal.</summary>
    internal abstract class SessionInput
    {
        /// <summary>True once no more lines will come (end of input).</summary>
        public abstract bool Ended { get; }

        /// <summary>Moves the lines available now into <paramref name="lines"/>, up to about <paramref name="maxChars"/> characters.</summary>
        public abstract void TakeLines(List<string> lines, int maxChars);

        /// <summary>Completes when lines may be available; null when the input has to be looked at (a terminal).</summary>
        public abstract Task WaitForLines(CancellationToken token);

        /// <summary>Called on the pipeline thread before and after the session prints a message, so typing and output don't mix.</summary>
        public virtual void BeginOutput() { }

        public virtual void EndOutput() { }

        /// <summary>Lines that were handed over already (pipeline input): nothing more will come.</summary>
        public sealed class None : SessionInput
        {
            public static readonly None Instance = new None();

            public override bool Ended => true;

            public override void TakeLines(List<string> lines, int maxChars) { }

            public override Task WaitForLines(CancellationToken token) => null;
        }
    }

    /// <summary>
    /// Redirected standard input, read line by line as it arrives. One reader thread per process
    /// feeds a bounded channel: a line read after one session ended is the next session's, never
    /// lost, and a blocked read never holds the pipeline thread (Ctrl+C stays prompt).
    /// </summary>
    internal sealed class RedirectedInput : SessionInput
    {
        private const int Capacity = 1024;
        private static readonly object s_startLock = new object();
        private static Channel<string> s_lines;

        private readonly ChannelReader<string> _reader;
        private Task<bool> _wait;

        public RedirectedInput()
        {
            lock (s_startLock)
            {
                if (s_lines == null)
                {
                    s_lines = Channel.CreateBounded<string>(new BoundedChannelOptions(Capacity) { SingleReader = false, SingleWriter = true });
                    var thread = new Thread(ReadStandardInput) { IsBackground = true, Name = "PSTcp standard input" };
                    thread.Start(s_lines.Writer);
                }
            }

            _reader = s_lines.Reader;
        }

        public override bool Ended => _reader.Completion.IsCompleted;

        private static void ReadStandardInput(object state)
        {
            var writer = (ChannelWriter<string>)state;
            try
            {
                string line;
                while ((line = Console.In.ReadLine()) != null)
                {
                    // Bounded: a peer that reads slowly makes this thread wait instead of buffering all of stdin.
                    var write = writer.WriteAsync(line);
                    if (!write.IsCompleted) write.AsTask().GetAwaiter().GetResult();
                }
            }
            catch (Exception e) when (e is System.IO.IOException || e is ObjectDisposedException || e is InvalidOperationException)
            {
                // A broken standard input is its end.
            }
            finally
            {
                writer.TryComplete();
            }
        }

        public override void TakeLines(List<string> lines, int maxChars)
        {
            int chars = 0;
            while (chars < maxChars && _reader.TryRead(out var line))
            {
                lines.Add(line);
                chars += line.Length + 1;
            }
        }

        public override Task WaitForLines(CancellationToken token)
        {
            if (_wait == null || _wait.IsCompleted)
            {
                _wait = _reader.WaitToReadAsync(token).AsTask();
            }

            return _wait;
        }
    }

    /// <summary>
    /// A terminal: keys are read on the pipeline thread only when one is available, so no read
    /// is left pending when the session ends (it would swallow the next line typed at the
    /// prompt) and Ctrl+C is never blocked. Enter sends the line, Backspace edits it, Ctrl+D
    /// (or Ctrl+Z) on an empty line is the end of input.
    /// </summary>
    internal sealed class TerminalInput : SessionInput
    {
        private readonly PSHostUserInterface _ui;
        private readonly StringBuilder _line = new StringBuilder();
        private readonly Queue<string> _ready = new Queue<string>();
        private bool _ended;

        public TerminalInput(PSHostUserInterface ui)
        {
            _ui = ui;
        }

        public override bool Ended => _ended && _ready.Count == 0;

        public override Task WaitForLines(CancellationToken token) => null;

        public override void TakeLines(List<string> lines, int maxChars)
        {
            ReadKeys();
            int chars = 0;
            while (chars < maxChars && _ready.Count > 0)
            {
                var line = _ready.Dequeue();
                lines.Add(line);
                chars += line.Length + 1;
            }
        }

        private void ReadKeys()
        {
            try
            {
                while (!_ended && Console.KeyAvailable)
                {
                    OnKey(Console.ReadKey(intercept: true));
                }
            }
            catch (InvalidOperationException)
            {
                // No console to read from after all: nothing will be typed.
                _ended = true;
            }
        }

        private void OnKey(ConsoleKeyInfo key)
        {
            char c = key.KeyChar;
            if (key.Key == ConsoleKey.Enter || c == '\r' || c == '\n')
            {
                _ready.Enqueue(_line.ToString());
                _line.Clear();
                _ui.WriteLine();
            }
            else if (key.Key == ConsoleKey.Backspace || c == '\b' || c == '\x7f')
            {
                if (_line.Length > 0)
                {
                    _line.Length--;
                    _ui.Write("\b \b");
                }
            }
            else if ((c == '\x04' || c == '\x1a') && _line.Length == 0)
            {
                _ended = true;
                _ui.WriteLine();
            }
            else if (c == '\t' || (c != '\0' && !char.IsControl(c)))
            {
                _line.Append(c);
                _ui.Write(c.ToString());
            }
        }

        public override void BeginOutput()
        {
            // Takes the half-typed line off the screen; EndOutput puts it back below the message.
            if (_line.Length > 0) _ui.Write("\r" + new string(' ', _line.Length) + "\r");
        }

        public override void EndOutput()
        {
            if (_line.Length > 0) _ui.Write(_line.ToString());
        }
    }
}
