using System;
using System.Collections.Generic;
using System.Threading;

namespace PSTcp
{
    /// <summary>What a relay fault (Add-TcpFault) does to the traffic it fires on.</summary>
    public enum TcpFaultType
    {
        /// <summary>Each message (each read, on Raw) is delivered -Latency (± -Jitter) after it arrived.</summary>
        Latency,
        /// <summary>At most -BytesPerSecond bytes a second are forwarded.</summary>
        Bandwidth,
        /// <summary>Written in -SliceSize pieces with -SliceDelay between them.</summary>
        Slicer,
        /// <summary>Exactly -ByteCount bytes are forwarded in its direction, then both sides are closed.</summary>
        LimitData,
        /// <summary>Forwarding stops (what arrives is dropped) and the connection is held open; -Delay then closes it.</summary>
        Timeout,
        /// <summary>Both sides are reset (RST).</summary>
        Reset,
        /// <summary>A side's close (FIN) reaches the other side -Delay late.</summary>
        SlowClose,
    }

    /// <summary>Which way of a relayed connection a fault acts on.</summary>
    public enum TcpFaultDirection
    {
        Both,
        ClientToTarget,
        TargetToClient,
    }

    /// <summary>One firing of a fault: when, on which connection, which way, on what.</summary>
    public sealed class TcpFaultFiring
    {
        internal TcpFaultFiring(DateTimeOffset time, int connectionId, int conversationId, MessageDirection direction, string message, string detail)
        {
            Time = time;
            ConnectionId = connectionId;
            ConversationId = conversationId;
            Direction = direction;
            Message = message;
            Detail = detail;
        }

        public DateTimeOffset Time { get; }

        /// <summary>The connection the bytes came from (the client's, or its target connection's).</summary>
        public int ConnectionId { get; }

        /// <summary>The relayed pair's id: the client connection's Id (TcpMessage.ConversationId).</summary>
        public int ConversationId { get; }

        /// <summary>ClientToTarget or TargetToClient.</summary>
        public MessageDirection Direction { get; }

        /// <summary>The message it fired on (its first 100 characters); null when it fired on a read that ends no message, or on a close.</summary>
        public string Message { get; }

        /// <summary>What it did ("delayed 203 ms", "closed after 10 bytes", …).</summary>
        public string Detail { get; }

        public override string ToString() => $"{Time:HH:mm:ss.fff} {Direction} conversation {ConversationId}: {Detail}";
    }

    /// <summary>
    /// A fault on a relay (Add-TcpFault): what it does (<see cref="Type"/>), which way, and when it
    /// fires (every message, or those matching <see cref="Match"/>, after <see cref="AfterMessages"/>,
    /// at most <see cref="Count"/> times, with <see cref="Probability"/>). Each firing is counted in
    /// <see cref="Applied"/> and kept in <see cref="Firings"/> (the last 1000).
    /// </summary>
    public sealed class TcpFault
    {
        private const int MaxFirings = 1000;
        private static int s_nextId;

        private readonly object _lock = new object();
        private readonly List<TcpFaultFiring> _firings = new List<TcpFaultFiring>();
        private readonly CancellationTokenSource _removed = new CancellationTokenSource();
        private Random _random;
        private long _applied;
        private long _seen;
        private DateTimeOffset? _lastFired;

        public TcpFault(TcpFaultType type)
        {
            Type = type;
            Id = Interlocked.Increment(ref s_nextId);
        }

        public int Id { get; }

        /// <summary>Its name (default: the type and the Id, "Latency3").</summary>
        public string Name { get; set; }

        public TcpFaultType Type { get; }

        public TcpFaultDirection Direction { get; set; } = TcpFaultDirection.Both;

        public TimeSpan Latency { get; set; }

        public TimeSpan Jitter { get; set; }

        public long BytesPerSecond { get; set; }

        public int SliceSize { get; set; }

        public TimeSpan SliceDelay { get; set; }

        public long ByteCount { get; set; }

        public TimeSpan Delay { get; set; }

        /// <summary>The chance (0..1) that it fires when it could; 1 by default.</summary>
        public double Probability { get; set; } = 1;

        /// <summary>Seeds the random draws (probability, jitter), so a run can be repeated.</summary>
        public int? Seed { get; set; }

        /// <summary>A wildcard on the message's Text; it fires only on matching messages.</summary>
        public string Match { get; set; }

        /// <summary>It fires from the (N+1)th message (of those matching, with -Match) in its direction, counted over all the relay's connections since it was added.</summary>
        public int AfterMessages { get; set; }

        /// <summary>It fires at most this many times (null: no limit).</summary>
        public int? Count { get; set; }

        /// <summary>The relay it is on (null once created, until added).</summary>
        public TcpServer Relay { get; internal set; }

        /// <summary>When it was added to its relay.</summary>
        public DateTimeOffset? Added { get; private set; }

        /// <summary>Whether it is on its relay now (false before adding and after removal).</summary>
        public bool Active => Added.HasValue && !_removed.IsCancellationRequested;

        /// <summary>How many times it fired.</summary>
        public long Applied => Interlocked.Read(ref _applied);

        public DateTimeOffset? LastFired
        {
            get { lock (_lock) return _lastFired; }
        }

        /// <summary>Its firings, oldest first (the last 1000).</summary>
        public IReadOnlyList<TcpFaultFiring> Firings
        {
            get { lock (_lock) return _firings.ToArray(); }
        }

        /// <summary>Decides -Match (set by the cmdlet layer: PowerShell's wildcards); null: every message matches.</summary>
        internal Func<string, bool> Matcher { get; set; }

        /// <summary>Whether firing depends on the message (-Match or -AfterMessages), so only whole messages can fire it.</summary>
        internal bool HasTrigger => Match != null || Matcher != null || AfterMessages > 0;

        internal CancellationToken RemovedToken => _removed.Token;

        internal bool AppliesTo(MessageDirection direction) =>
            Direction == TcpFaultDirection.Both
            || (Direction == TcpFaultDirection.ClientToTarget && direction == MessageDirection.ClientToTarget)
            || (Direction == TcpFaultDirection.TargetToClient && direction == MessageDirection.TargetToClient);

        /// <summary>Throws an ArgumentException when the settings don't make a fault of its type.</summary>
        public void Validate()
        {
            if (Probability < 0 || Probability > 1 || double.IsNaN(Probability)) throw new ArgumentException("Probability must be between 0 and 1.", nameof(Probability));
            if (AfterMessages < 0) throw new ArgumentException("AfterMessages must be 0 or more.", nameof(AfterMessages));
            if (Count.HasValue && Count.Value < 1) throw new ArgumentException("Count must be 1 or more.", nameof(Count));
            if (Latency < TimeSpan.Zero || Jitter < TimeSpan.Zero || SliceDelay < TimeSpan.Zero || Delay < TimeSpan.Zero)
            {
                throw new ArgumentException("Latency, Jitter, SliceDelay and Delay can't be negative.");
            }

            switch (Type)
            {
                case TcpFaultType.Latency:
                    if (Latency == TimeSpan.Zero && Jitter == TimeSpan.Zero) throw new ArgumentException("A Latency fault needs -Latency (and maybe -Jitter).", nameof(Latency));
                    break;
                case TcpFaultType.Bandwidth:
                    if (BytesPerSecond < 1) throw new ArgumentException("A Bandwidth fault needs -BytesPerSecond (1 or more).", nameof(BytesPerSecond));
                    break;
                case TcpFaultType.Slicer:
                    if (SliceSize < 1) throw new ArgumentException("A Slicer fault needs -SliceSize (1 or more bytes).", nameof(SliceSize));
                    break;
                case TcpFaultType.LimitData:
                    if (ByteCount < 0) throw new ArgumentException("A LimitData fault needs -ByteCount (0 or more).", nameof(ByteCount));
                    break;
                case TcpFaultType.SlowClose:
                    if (Delay <= TimeSpan.Zero) throw new ArgumentException("A SlowClose fault needs -Delay (positive).", nameof(Delay));
                    break;
            }
        }

        internal void Attach(TcpServer relay)
        {
            Relay = relay;
            if (string.IsNullOrEmpty(Name)) Name = Type.ToString() + Id;
            _random = Seed.HasValue ? new Random(Seed.Value) : new Random(Guid.NewGuid().GetHashCode());
            Added = DateTimeOffset.Now;
        }

        /// <summary>Removed: it fires no more, and waits it caused (a latency, a held Timeout) end.</summary>
        internal void Detach()
        {
            try { _removed.Cancel(); } catch (ObjectDisposedException) { }
        }

        /// <summary>
        /// Whether it fires on a message (<paramref name="text"/>; null for bytes that end no
        /// message): the trigger, the count and the probability, in that order. Counts the firing.
        /// </summary>
        internal bool TryFire(string text, bool wholeMessage)
        {
            if (!Active) return false;
            if (HasTrigger && !wholeMessage) return false;
            if (Matcher != null && !Matcher(text ?? string.Empty)) return false;
            lock (_lock)
            {
                if (HasTrigger && ++_seen <= AfterMessages) return false;
                if (Count.HasValue && _applied >= Count.Value) return false;
                if (Probability < 1 && _random.NextDouble() >= Probability) return false;
                Interlocked.Increment(ref _applied);
                return true;
            }
        }

        /// <summary>Whether a message meets the trigger (-Match, -AfterMessages) alone, counting it; no firing.</summary>
        internal bool TryTrigger(string text, bool wholeMessage)
        {
            if (!Active || !wholeMessage) return false;
            if (Matcher != null && !Matcher(text ?? string.Empty)) return false;
            lock (_lock) return ++_seen > AfterMessages;
        }

        /// <summary>Fires on a close (SlowClose): no message, so only the count and the probability.</summary>
        internal bool TryFireOnClose()
        {
            if (!Active) return false;
            lock (_lock)
            {
                if (Count.HasValue && _applied >= Count.Value) return false;
                if (Probability < 1 && _random.NextDouble() >= Probability) return false;
                Interlocked.Increment(ref _applied);
                return true;
            }
        }

        /// <summary>A latency for one message: -Latency plus a uniform draw in ±-Jitter, never negative.</summary>
        internal TimeSpan NextLatency()
        {
            if (Jitter == TimeSpan.Zero) return Latency;
            double offset;
            lock (_lock) offset = (_random.NextDouble() * 2 - 1) * Jitter.TotalMilliseconds;
            var value = Latency + TimeSpan.FromMilliseconds(offset);
            return value < TimeSpan.Zero ? TimeSpan.Zero : value;
        }

        internal void Record(TcpConnection from, int conversationId, MessageDirection direction, string text, string detail)
        {
            if (text != null && text.Length > 100) text = text.Substring(0, 100);
            var firing = new TcpFaultFiring(DateTimeOffset.Now, from?.Id ?? 0, conversationId, direction, text, detail);
            lock (_lock)
            {
                _lastFired = firing.Time;
                if (_firings.Count == MaxFirings) _firings.RemoveAt(0);
                _firings.Add(firing);
            }
        }

        /// <summary>What it does and when, in a few words ("200 ms ± 50 ms; on 'GET*' after 1, at most 1").</summary>
        public string Summary
        {
            get
            {
                string what;
                switch (Type)
                {
                    case TcpFaultType.Latency: what = Jitter > TimeSpan.Zero ? $"{Ms(Latency)} ± {Ms(Jitter)}" : Ms(Latency); break;
                    case TcpFaultType.Bandwidth: what = $"{BytesPerSecond} bytes/s"; break;
                    case TcpFaultType.Slicer: what = $"{SliceSize} bytes every {Ms(SliceDelay)}"; break;
                    case TcpFaultType.LimitData: what = $"close after {ByteCount} bytes"; break;
                    case TcpFaultType.Timeout: what = Delay > TimeSpan.Zero ? $"hold, close after {Ms(Delay)}" : "hold"; break;
                    case TcpFaultType.Reset: what = Delay > TimeSpan.Zero ? $"reset after {Ms(Delay)}" : "reset"; break;
                    default: what = $"close {Ms(Delay)} late"; break;
                }

                var when = new List<string>();
                if (Match != null) when.Add($"on '{Match}'");
                if (AfterMessages > 0) when.Add($"after {AfterMessages}");
                if (Count.HasValue) when.Add($"at most {Count}");
                if (Probability < 1) when.Add($"p {Probability:0.###}" + (Seed.HasValue ? $" seed {Seed}" : string.Empty));
                return when.Count == 0 ? what : what + "; " + string.Join(", ", when);
            }
        }

        private static string Ms(TimeSpan value) => value.TotalSeconds >= 10 ? $"{value.TotalSeconds:0.#} s" : $"{value.TotalMilliseconds:0} ms";

        public override string ToString() => $"{Name} ({Type}, {Direction}, applied {Applied})";
    }
}
