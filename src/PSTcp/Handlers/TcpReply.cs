using System;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;

namespace PSTcp
{
    /// <summary>
    /// A reply action made by New-TcpReply: send <see cref="Message"/> (framed unless
    /// <see cref="Raw"/>) after <see cref="Delay"/>, then close gracefully or reset. Usable as a
    /// -Reply value (an array of them answers repeated matches in turn), -DefaultReply, -Greeting
    /// or handler output. The delay holds no handler worker: the connection's own loop waits.
    /// </summary>
    public sealed class TcpReply
    {
        public TcpReply(object[] message, TimeSpan delay, bool close, bool reset, bool noReply, bool raw)
        {
            Message = message ?? Array.Empty<object>();
            Delay = delay;
            Close = close;
            Reset = reset;
            NoReply = noReply;
            Raw = raw;
        }

        /// <summary>What to send: strings (encoded with the connection's encoding) and byte arrays, each one message.</summary>
        public object[] Message { get; }

        public TimeSpan Delay { get; }

        /// <summary>Close gracefully after sending.</summary>
        public bool Close { get; }

        /// <summary>Reset (RST) after sending.</summary>
        public bool Reset { get; }

        /// <summary>Send nothing (a delay, close or reset still apply).</summary>
        public bool NoReply { get; }

        /// <summary>Send the messages as they are, without the connection's framing.</summary>
        public bool Raw { get; }

        /// <summary>Whether the connection ends after this reply.</summary>
        public bool Ends => Close || Reset;

        public override string ToString()
        {
            var parts = new List<string>();
            if (NoReply) parts.Add("no reply");
            else parts.Add(string.Join(", ", Message.Select(Describe)));
            if (Delay > TimeSpan.Zero) parts.Add($"after {Delay.TotalSeconds:0.###} s");
            if (Raw) parts.Add("raw");
            if (Close) parts.Add("then close");
            if (Reset) parts.Add("then reset");
            return string.Join(", ", parts);
        }

        private static string Describe(object item)
        {
            item = item is PSObject pso ? pso.BaseObject : item;
            return item is byte[] bytes ? $"{bytes.Length} byte(s)" : $"'{item}'";
        }
    }
}
