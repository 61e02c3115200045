using System;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Threading;
using System.Threading.Tasks;

namespace PSTcp
{
    /// <summary>
    /// A reusable, awaitable socket operation: no allocation per receive or send, which
    /// netstandard2.0's Task-returning socket methods can't offer.
    /// Usage: <c>if (!socket.ReceiveAsync(args)) args.Complete(); int n = await args;</c>
    /// The shape is Kestrel's (its socket transport's SocketAwaitableEventArgs): the args object is
    /// its own awaiter, with a sentinel continuation marking a completed operation.
    /// </summary>
    internal sealed class SocketAwaitableEventArgs : SocketAsyncEventArgs, ICriticalNotifyCompletion
    {
        private static readonly Action s_completedSentinel = () => { };
        private Action _continuation;

        public SocketAwaitableEventArgs GetAwaiter() => this;

        public bool IsCompleted => ReferenceEquals(_continuation, s_completedSentinel);

        public int GetResult()
        {
            _continuation = null;
            if (SocketError != SocketError.Success)
            {
                throw new SocketException((int)SocketError);
            }

            return BytesTransferred;
        }

        /// <summary>Marks an operation that finished synchronously as complete.</summary>
        public void Complete() => OnCompleted(this);

        public void OnCompleted(Action continuation)
        {
            if (ReferenceEquals(_continuation, s_completedSentinel)
                || ReferenceEquals(Interlocked.CompareExchange(ref _continuation, continuation, null), s_completedSentinel))
            {
                // Finished between the IsCompleted check and here: don't run the rest inline.
                Task.Run(continuation);
            }
        }

        public void UnsafeOnCompleted(Action continuation) => OnCompleted(continuation);

        protected override void OnCompleted(SocketAsyncEventArgs e)
        {
            var continuation = Interlocked.Exchange(ref _continuation, s_completedSentinel);
            continuation?.Invoke();
        }
    }
}
