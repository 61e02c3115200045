using System;
using System.Collections.Generic;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Threading;
using System.Threading.Tasks;
using System.Threading.Tasks.Sources;

namespace PSTcp
{
    /// <summary>
    /// Linux only: waits for sockets to become readable on a few threads of its own (one epoll
    /// set each, edge-triggered), and resumes the waiting receive loop on that same thread.
    /// </summary>
    /// <remarks>
    /// Why: with .NET's socket engine a wait for data costs two wake-ups (its epoll thread, then
    /// a thread-pool worker that runs the continuation and spins before it sleeps again); Go's
    /// netpoller costs one. On a small-window echo (128 lines in flight) the scheduler is most of
    /// the server's CPU, so the second wake-up is what separates the two. Here the thread that
    /// learns a socket is readable runs the receive loop itself: it reads, frames, queues and
    /// echoes, and returns to epoll_wait at the loop's next real wait. A connection whose data
    /// keeps coming yields after the loop's budget (<see cref="TcpConnection.InlineBudget"/>)
    /// and goes on after the poller's next round of events, so it can't hold the poller from
    /// the other connections on it; it stays on that thread, since a hop to the thread pool per
    /// 64 KiB cost a flood (bulk, pipelined-64) a fifth of its throughput. Everything that can
    /// wait for long (a full queue, a stuck send, a handler) awaits and gives the thread back.
    /// Elsewhere (Windows, macOS), or with PSTCP_EPOLL=0 in the environment, connections wait
    /// with a one-byte peek through .NET's engine instead.
    /// </remarks>
    internal sealed class ReadinessPoller
    {
        private const int EpollCloexec = 0x80000;
        private const int EpollCtlAdd = 1;
        private const int EpollCtlDel = 2;
        private const uint EpollIn = 0x001;
        private const uint EpollErr = 0x008;
        private const uint EpollHup = 0x010;
        private const uint EpollRdHup = 0x2000;
        private const uint EpollEt = 1u << 31;
        private const int Eintr = 4;
        private const int MaxEvents = 256;

        // struct epoll_event is packed on x86 and x64 (12 bytes) and naturally aligned elsewhere (16).
        private static readonly bool s_packed =
            RuntimeInformation.ProcessArchitecture == Architecture.X64 || RuntimeInformation.ProcessArchitecture == Architecture.X86;
        private static readonly int s_eventSize = s_packed ? 12 : 16;
        private static readonly int s_dataOffset = s_packed ? 4 : 8;

        // The pollers' slots: sized once (see PollerCount), each poller and its thread created
        // when a connection is first given to it. A session that never opens a connection pays
        // nothing; one with a single connection pays one thread.
        private static readonly Lazy<ReadinessPoller[]> s_pollers = new Lazy<ReadinessPoller[]>(CreatePollerSlots);
        private static readonly object s_createGate = new object();
        private static int s_next;

        private readonly int _epoll;
        private readonly object _gate = new object();
        private ReadinessWaiter[] _slots = new ReadinessWaiter[64];
        private readonly Stack<int> _free = new Stack<int>();
        private int _used;

        // Continuations that yielded on this poller's thread, run after the next round of
        // events: only this thread touches it.
        private readonly Queue<KeyValuePair<Action<object>, object>> _yielded = new Queue<KeyValuePair<Action<object>, object>>();

        [ThreadStatic]
        private static ReadinessPoller t_current;

        private ReadinessPoller(int epoll, int index)
        {
            _epoll = epoll;
            var thread = new Thread(Run) { IsBackground = true, Name = $"PSTcp poller {index}" };
            thread.Start();
        }

        /// <summary>Whether the calling thread is a poller's (work that may block must leave it).</summary>
        public static bool OnPollerThread => t_current != null;

        /// <summary>Whether this process waits through pollers (Linux, not turned off).</summary>
        public static bool Enabled => s_pollers.Value != null;

        /// <summary>How many pollers this process has room for (0 where it waits through .NET's engine).</summary>
        public static int Capacity => s_pollers.Value?.Length ?? 0;

        /// <summary>How many pollers have been started so far (each is one thread).</summary>
        public static int Started
        {
            get
            {
                var pollers = s_pollers.IsValueCreated ? s_pollers.Value : null;
                if (pollers == null) return 0;
                int started = 0;
                for (int i = 0; i < pollers.Length; i++)
                {
                    if (Volatile.Read(ref pollers[i]) != null) started++;
                }

                return started;
            }
        }

        /// <summary>Registers the socket with one of the pollers; null where there are none, or when epoll refuses it.</summary>
        public static ReadinessWaiter TryRegister(IntPtr socket)
        {
            var pollers = s_pollers.Value;
            if (pollers == null) return null;
            int index = (int)((uint)(Interlocked.Increment(ref s_next) - 1) % (uint)pollers.Length);
            var poller = Volatile.Read(ref pollers[index]) ?? Start(pollers, index);
            return poller?.Register(socket);
        }

        /// <summary>
        /// The number of pollers: one per core this process may use, as Go runs one scheduler
        /// per usable core. <paramref name="usableCores"/> is <see cref="Environment.ProcessorCount"/>,
        /// which on Linux already honours the process's affinity (sched_getaffinity, taskset)
        /// and a container's CPU limit (cgroup v1 cpu.cfs_quota_us / cpu.cfs_period_us, v2
        /// cpu.max, rounded up) and DOTNET_PROCESSOR_COUNT. PSTCP_POLLERS (a whole number from
        /// 1 to 1024) overrides it; anything else there is ignored.
        /// </summary>
        internal static int PollerCount(int usableCores, string pollersSetting)
        {
            if (!string.IsNullOrWhiteSpace(pollersSetting)
                && int.TryParse(pollersSetting.Trim(), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int wanted)
                && wanted >= 1 && wanted <= 1024)
            {
                return wanted;
            }

            return Math.Max(1, usableCores);
        }

        private static ReadinessPoller[] CreatePollerSlots()
        {
            if (!RuntimeInformation.IsOSPlatform(OSPlatform.Linux)) return null;
            if (Environment.GetEnvironmentVariable("PSTCP_EPOLL") == "0") return null;
            var pollers = new ReadinessPoller[PollerCount(Environment.ProcessorCount, Environment.GetEnvironmentVariable("PSTCP_POLLERS"))];
            // The first poller proves epoll is there; without it, every connection uses .NET's engine.
            return Start(pollers, 0) == null ? null : pollers;
        }

        private static ReadinessPoller Start(ReadinessPoller[] pollers, int index)
        {
            lock (s_createGate)
            {
                var poller = pollers[index];
                if (poller != null) return poller;
                try
                {
                    int epoll = NativeMethods.epoll_create1(EpollCloexec);
                    if (epoll < 0) return null;
                    poller = new ReadinessPoller(epoll, index);
                }
                catch (Exception e) when (e is DllNotFoundException || e is EntryPointNotFoundException)
                {
                    return null;
                }

                Volatile.Write(ref pollers[index], poller);
                return poller;
            }
        }

        private ReadinessWaiter Register(IntPtr socket)
        {
            ReadinessWaiter waiter;
            lock (_gate)
            {
                int slot;
                if (_free.Count > 0)
                {
                    slot = _free.Pop();
                }
                else
                {
                    if (_used == _slots.Length)
                    {
                        var grown = new ReadinessWaiter[_slots.Length * 2];
                        Array.Copy(_slots, grown, _slots.Length);
                        Volatile.Write(ref _slots, grown);
                    }

                    slot = _used++;
                }

                var previous = _slots[slot];
                waiter = new ReadinessWaiter(this, socket, slot, previous == null ? 1u : previous.Generation + 1);
                Volatile.Write(ref _slots[slot], waiter);
            }

            // Edge-triggered: an event for every arrival. Added while data already waits, the
            // socket is reported at once.
            var ev = new byte[16];
            BitConverter.GetBytes(EpollIn | EpollRdHup | EpollEt).CopyTo(ev, 0);
            BitConverter.GetBytes(waiter.Key).CopyTo(ev, s_dataOffset);
            if (NativeMethods.epoll_ctl(_epoll, EpollCtlAdd, (int)socket, ev) != 0)
            {
                Free(waiter);
                return null;
            }

            return waiter;
        }

        /// <summary>Removes the socket from the set; call before the socket is closed, so a reused descriptor can't be hit.</summary>
        internal void Unregister(ReadinessWaiter waiter)
        {
            NativeMethods.epoll_ctl(_epoll, EpollCtlDel, (int)waiter.Socket, new byte[16]);
            Free(waiter);
        }

        private void Free(ReadinessWaiter waiter)
        {
            lock (_gate)
            {
                // The slot keeps the waiter (for its generation) but no longer answers its key.
                waiter.Retired = true;
                _free.Push(waiter.Slot);
            }
        }

        /// <summary>
        /// Gives up the thread between two batches of a busy connection: on a poller's thread the
        /// rest runs after that poller's next round of events (every other connection on it gets
        /// its turn, and the connection stays on a thread that is awake); elsewhere it goes to
        /// the thread pool's queue, as <see cref="Task.Yield"/>.
        /// </summary>
        public static YieldAwaitable Yield() => default;

        internal readonly struct YieldAwaitable : ICriticalNotifyCompletion
        {
            public YieldAwaitable GetAwaiter() => this;

            public bool IsCompleted => false;

            public void GetResult()
            {
            }

            public void OnCompleted(Action continuation) => Schedule(continuation, true);

            public void UnsafeOnCompleted(Action continuation) => Schedule(continuation, false);

            private static void Schedule(Action continuation, bool flowContext)
            {
                var poller = t_current;
                if (poller != null && !flowContext)
                {
                    poller._yielded.Enqueue(new KeyValuePair<Action<object>, object>(s => ((Action)s)(), continuation));
                }
                else if (flowContext)
                {
                    ThreadPool.QueueUserWorkItem(s => ((Action)s)(), continuation);
                }
                else
                {
                    ThreadPool.UnsafeQueueUserWorkItem(s => ((Action)s)(), continuation);
                }
            }
        }

        private void Run()
        {
            t_current = this;
            var events = Marshal.AllocHGlobal(s_eventSize * MaxEvents);
            while (true)
            {
                // Yielded work waiting: look for events without sleeping, then run it.
                int n = NativeMethods.epoll_wait(_epoll, events, MaxEvents, _yielded.Count > 0 ? 0 : -1);
                if (n < 0)
                {
                    if (Marshal.GetLastWin32Error() == Eintr) continue;
                    // Not expected with a valid set; don't spin on it.
                    Thread.Sleep(10);
                    continue;
                }

                var slots = Volatile.Read(ref _slots);
                for (int i = 0; i < n; i++)
                {
                    uint flags = (uint)Marshal.ReadInt32(events, i * s_eventSize);
                    ulong key = (ulong)Marshal.ReadInt64(events, i * s_eventSize + s_dataOffset);
                    int slot = (int)(key & 0xFFFFFFFF);
                    if (slot >= slots.Length) slots = Volatile.Read(ref _slots);
                    if (slot >= slots.Length) continue;
                    var waiter = Volatile.Read(ref slots[slot]);
                    if (waiter == null || waiter.Retired || waiter.Generation != (uint)(key >> 32)) continue;
                    try
                    {
                        waiter.Signal((flags & (EpollRdHup | EpollHup | EpollErr)) != 0);
                    }
                    catch (Exception)
                    {
                        // A continuation is an async method's: it doesn't throw. Whatever does
                        // must not take the poller, and every other connection on it, down.
                    }
                }

                // What yielded before this round; what yields now waits for the next one.
                for (int i = _yielded.Count; i > 0; i--)
                {
                    var item = _yielded.Dequeue();
                    try
                    {
                        item.Key(item.Value);
                    }
                    catch (Exception)
                    {
                        // As above.
                    }
                }
            }
        }

        private static class NativeMethods
        {
            [DllImport("libc", SetLastError = true)]
            public static extern int epoll_create1(int flags);

            [DllImport("libc", SetLastError = true)]
            public static extern int epoll_ctl(int epfd, int op, int fd, byte[] ev);

            [DllImport("libc", SetLastError = true)]
            public static extern int epoll_wait(int epfd, IntPtr events, int maxevents, int timeout);
        }
    }

    /// <summary>
    /// One socket's wait for data through a <see cref="ReadinessPoller"/>: awaitable with no
    /// allocation, and completed on the poller's thread. Readiness is a hint (data that arrived
    /// while the last read ran is reported too), so the awaiting loop reads without waiting and
    /// waits again if nothing is there.
    /// </summary>
    internal sealed class ReadinessWaiter : IValueTaskSource
    {
        private const int Idle = 0;
        private const int Ready = 1;
        private const int Waiting = 2;
        private const int Closed = 3;

        private readonly ReadinessPoller _poller;
        private int _state;
        private Action<object> _continuation;
        private object _continuationState;
        private ExecutionContext _context;

        internal ReadinessWaiter(ReadinessPoller poller, IntPtr socket, int slot, uint generation)
        {
            _poller = poller;
            Socket = socket;
            Slot = slot;
            Generation = generation;
        }

        internal IntPtr Socket { get; }

        internal int Slot { get; }

        internal uint Generation { get; }

        internal ulong Key => ((ulong)Generation << 32) | (uint)Slot;

        internal volatile bool Retired;

        // The peer closed its side, or the socket failed. Edge-triggered, that is reported once,
        // possibly together with data the loop then reads in part: from then on every wait
        // completes at once, so the loop reads on until the end of stream or the error.
        private volatile bool _hungUp;

        /// <summary>Completes at once when the socket was reported since the last wait, or has hung up.</summary>
        public ValueTask WaitAsync()
        {
            if (_hungUp) return default;
            if (Interlocked.CompareExchange(ref _state, Idle, Ready) == Ready) return default;
            return new ValueTask(this, 0);
        }

        /// <summary>Ends any wait (it throws <see cref="ObjectDisposedException"/>) and leaves the poller's set.</summary>
        public void Close()
        {
            int previous = Interlocked.Exchange(ref _state, Closed);
            if (previous == Closed) return;
            _poller.Unregister(this);
            if (previous == Waiting) Schedule();
        }

        /// <summary>On the poller's thread: the socket is readable, or closed, or failed.</summary>
        internal void Signal(bool hungUp)
        {
            if (hungUp) _hungUp = true;
            while (true)
            {
                int state = Volatile.Read(ref _state);
                if (state == Waiting)
                {
                    if (Interlocked.CompareExchange(ref _state, Idle, Waiting) != Waiting) continue;
                    Invoke();
                    return;
                }

                if (state != Idle || Interlocked.CompareExchange(ref _state, Ready, Idle) == Idle) return;
            }
        }

        ValueTaskSourceStatus IValueTaskSource.GetStatus(short token)
        {
            switch (Volatile.Read(ref _state))
            {
                case Closed: return ValueTaskSourceStatus.Faulted;
                case Ready: return ValueTaskSourceStatus.Succeeded;
                default: return ValueTaskSourceStatus.Pending;
            }
        }

        void IValueTaskSource.OnCompleted(Action<object> continuation, object state, short token, ValueTaskSourceOnCompletedFlags flags)
        {
            _continuation = continuation;
            _continuationState = state;
            _context = (flags & ValueTaskSourceOnCompletedFlags.FlowExecutionContext) != 0 ? ExecutionContext.Capture() : null;
            int previous = Interlocked.CompareExchange(ref _state, Waiting, Idle);
            if (previous == Ready)
            {
                // Reported between the check and here: go on, but not on this stack. (A close
                // in between leaves Closed, and GetResult throws.)
                Interlocked.CompareExchange(ref _state, Idle, Ready);
                Schedule();
            }
            else if (previous == Closed)
            {
                Schedule();
            }
        }

        void IValueTaskSource.GetResult(short token)
        {
            if (Volatile.Read(ref _state) == Closed) throw new ObjectDisposedException(nameof(System.Net.Sockets.Socket));
            Interlocked.CompareExchange(ref _state, Idle, Ready);
        }

        private void Schedule() => ThreadPool.QueueUserWorkItem(s => ((ReadinessWaiter)s).Invoke(), this);

        private void Invoke()
        {
            var continuation = _continuation;
            var state = _continuationState;
            var context = _context;
            _continuation = null;
            _continuationState = null;
            _context = null;
            if (continuation == null) return;
            if (context == null) continuation(state);
            else ExecutionContext.Run(context, s => continuation(s), state);
        }
    }
}
