using System;
using System.Runtime.CompilerServices;
using System.Threading;

namespace PSTcp.Tests
{
    /// <summary>
    /// Gives back the thread-pool workers the test host itself keeps blocked. The test platform
    /// runs its message loop (a Socket.Poll loop) and the xunit adapter's wait for the assembly
    /// run on pool workers for the whole run; on two cores those are both of the pool's minimum,
    /// so every pool item PSTcp queues (with PSTCP_EPOLL=0 that is every connection's loop) waited
    /// for the runtime to inject a thread, one per ~500 ms: the torture test's seeds 20000..20001
    /// with the pollers off overran a Stop's timeout + 250 ms in 3 of 20 fresh processes (820-1030
    /// ms for a 500 ms timeout), never with the minimum raised. PowerShell runs pipelines and jobs
    /// on threads of their own, so the tests now see the pool a PSTcp user's process has.
    /// </summary>
    internal static class TestHostThreads
    {
        [ModuleInitializer]
#pragma warning disable CA2255 // a module initializer in a test assembly is what it is for here
        internal static void GiveBackTheHostsThreads()
#pragma warning restore CA2255
        {
            ThreadPool.GetMinThreads(out int workers, out int io);
            int wanted = Environment.ProcessorCount + 4;
            if (workers < wanted) ThreadPool.SetMinThreads(wanted, io);
        }
    }
}
