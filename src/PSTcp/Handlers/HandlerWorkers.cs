using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Collections.ObjectModel;
using System.Management.Automation;
using System.Management.Automation.Runspaces;
using System.Threading;

namespace PSTcp.Commands
{
    /// <summary>
    /// The runspaces that run a handler server's scriptblocks: up to -ThrottleLimit long-lived
    /// workers, each a thread with its own runspace (PSTcp imported, $using: values defined)
    /// running one pipeline for its whole life, which takes batches from a shared queue and
    /// calls the scriptblock per message with ScriptBlock.InvokeWithContext: a couple of
    /// microseconds a call, against a pipeline per batch on a runspace pool (~1 ms).
    /// </summary>
    /// <remarks>
    /// A whole read batch is one work item, so a pipelined client costs one hand-off per read,
    /// not per message. Any idle worker takes the next batch: a slow handler holds only its own
    /// worker, and so delays only its own connection while other workers are free. Workers start
    /// on demand (one at once), so a server that never gets busy costs one runspace.
    /// </remarks>
    internal sealed class HandlerWorkers : IDisposable
    {
        // Like PowerShell's own pipeline threads: deep recursion in a handler must not overflow.
        private const int WorkerStackSize = 10 * 1024 * 1024;

        private readonly BlockingCollection<HandlerBatch> _queue = new BlockingCollection<HandlerBatch>(new ConcurrentQueue<HandlerBatch>());
        private readonly CancellationTokenSource _stopping = new CancellationTokenSource();
        private readonly InitialSessionState _state;
        private readonly object _lock = new object();
        private readonly List<Worker> _workers = new List<Worker>();
        private readonly int _maxWorkers;
        private int _idle;
        private int _waiting;
        private volatile TcpException _broken;

        /// <param name="scripts">The handlers' texts ($using: already rewritten to the variables in <paramref name="variables"/>).</param>
        /// <param name="arguments">-ArgumentList: passed after the message and the connection.</param>
        public HandlerWorkers(IReadOnlyList<string> scripts, object[] arguments, IDictionary<string, object> variables,
            int maxWorkers, string modulePath, IReadOnlyList<HandlerOrigin> origins = null)
        {
            Scripts = scripts;
            Origins = origins;
            Arguments = arguments ?? Array.Empty<object>();
            _maxWorkers = maxWorkers;
            _state = InitialSessionState.CreateDefault2();
            if (modulePath != null)
            {
                // Handlers can use PSTcp themselves (Disconnect-TcpEndpoint, Send-TcpLine elsewhere …).
                _state.ImportPSModule(new[] { modulePath });
            }

            foreach (var pair in variables)
            {
                _state.Variables.Add(new SessionStateVariableEntry(pair.Key, pair.Value, "A $using: value captured when the server started."));
            }

            lock (_lock) StartWorker();
        }

        public IReadOnlyList<string> Scripts { get; }

        /// <summary>Where each script came from (for failures' positions); may be null.</summary>
        public IReadOnlyList<HandlerOrigin> Origins { get; }

        public object[] Arguments { get; }

        /// <summary>Workers started so far (at most -ThrottleLimit).</summary>
        public int WorkerCount
        {
            get { lock (_lock) return _workers.Count; }
        }

        /// <summary>Queues a batch for the next idle worker, starting one if none is idle.</summary>
        public void Post(HandlerBatch batch)
        {
            var broken = _broken;
            if (broken != null)
            {
                batch.Fail(broken);
                return;
            }

            try
            {
                _queue.Add(batch);
            }
            catch (InvalidOperationException)
            {
                batch.Fail(new TcpException(TcpErrorKind.ConnectionClosed, "The server's handlers have stopped."));
                return;
            }

            lock (_lock)
            {
                _waiting++;
                if (_waiting > _idle && _workers.Count < _maxWorkers)
                {
                    StartWorker();
                }
            }
        }

        private void StartWorker()
        {
            var worker = new Worker(this, _workers.Count + 1);
            _workers.Add(worker);
            worker.Start();
        }

        /// <summary>The batches a worker handles, until the server stops.</summary>
        private IEnumerable<HandlerBatch> TakeBatches()
        {
            while (true)
            {
                lock (_lock) _idle++;
                HandlerBatch batch;
                try
                {
                    if (!_queue.TryTake(out batch, Timeout.Infinite, _stopping.Token)) yield break;
                }
                catch (OperationCanceledException)
                {
                    yield break;
                }
                catch (ObjectDisposedException)
                {
                    yield break;
                }
                finally
                {
                    lock (_lock) _idle--;
                }

                lock (_lock) _waiting--;
                yield return batch;
            }
        }

        /// <summary>
        /// Stops the workers: idle ones at once, busy ones by stopping their pipeline (a handler
        /// in Start-Sleep or a cmdlet honours it); batches still queued are failed.
        /// </summary>
        public void Dispose()
        {
            if (_stopping.IsCancellationRequested) return;
            _stopping.Cancel();
            _queue.CompleteAdding();
            while (_queue.TryTake(out var left))
            {
                left.Fail(new TcpException(TcpErrorKind.ConnectionClosed, "The server stopped before the handler ran."));
            }

            lock (_lock)
            {
                foreach (var worker in _workers) worker.Stop();
            }
        }

        /// <summary>One runspace and the thread that runs its single, lifelong pipeline.</summary>
        private sealed class Worker
        {
            private readonly HandlerWorkers _owner;
            private readonly Thread _thread;
            private PowerShell _powerShell;
            private volatile bool _stopped;

            public Worker(HandlerWorkers owner, int number)
            {
                _owner = owner;
                _thread = new Thread(Run, WorkerStackSize) { IsBackground = true, Name = "PSTcp handler " + number };
            }

            public void Start()
            {
                // A worker serves every connection: it must not keep the async context of the
                // batch that happened to start it (which connection's handler is running, among
                // others), or that one connection would look like "its own" forever.
                using (ExecutionContext.SuppressFlow())
                {
                    _thread.Start();
                }
            }

            public void Stop()
            {
                _stopped = true;
                // Interrupts a handler that is still running; the thread then disposes its runspace.
                try { Volatile.Read(ref _powerShell)?.BeginStop(null, null); }
                catch (ObjectDisposedException) { }
                catch (InvalidOperationException) { }
            }

            private void Run()
            {
                try
                {
                    using (var runspace = RunspaceFactory.CreateRunspace(_owner._state))
                    {
                        // The pipeline runs on this thread: no second hand-off per batch.
                        runspace.ThreadOptions = PSThreadOptions.UseCurrentThread;
                        runspace.Open();
                        using (var ps = PowerShell.Create())
                        {
                            ps.Runspace = runspace;
                            // InvokeWithContext needs a running pipeline on this thread (its
                            // engine context, and the error stream that Write-Error writes to).
                            ps.AddScript("param([Action] $__PSTcpHandlerLoop) $__PSTcpHandlerLoop.Invoke()")
                              .AddArgument((Action)(() => Loop(ps)));
                            Volatile.Write(ref _powerShell, ps);
                            if (_stopped) return;
                            ps.Invoke();
                        }
                    }
                }
                catch (Exception) when (_stopped)
                {
                    // Stopped with the server: a pipeline stopped mid-handler ends here.
                }
                catch (Exception e)
                {
                    // The runspace could not open, or the loop itself broke: what waits is failed.
                    FailQueued(e);
                }
            }

            private void FailQueued(Exception e)
            {
                var error = new TcpException(TcpErrorKind.HandlerFailed, "A handler runspace failed: " + e.Message, e);
                // Later batches fail at once instead of waiting for a worker that can't start.
                _owner._broken = error;
                while (!_owner._stopping.IsCancellationRequested && _owner._queue.TryTake(out var batch))
                {
                    // The connection fails with it: recorded once, by the core.
                    batch.Fail(error);
                }
            }

            private void Loop(PowerShell ps)
            {
                var scripts = new ScriptBlock[_owner.Scripts.Count];
                for (int i = 0; i < scripts.Length; i++)
                {
                    // Created here, so it runs in this runspace's session state.
                    scripts[i] = ScriptBlock.Create(_owner.Scripts[i]);
                }

                var invoker = new HandlerInvoker(scripts, _owner.Arguments, ps.Streams.Error, _owner.Origins);
                foreach (var batch in _owner.TakeBatches())
                {
                    try
                    {
                        invoker.Run(batch);
                        batch.Complete();
                    }
                    catch (PipelineStoppedException)
                    {
                        batch.Cancel();
                        throw;
                    }
                    catch (Exception e)
                    {
                        batch.Fail(e);
                    }
                    finally
                    {
                        ClearStreams(ps.Streams);
                    }
                }
            }

            // Nobody reads a worker's own streams: keep them from growing.
            private static void ClearStreams(PSDataStreams streams)
            {
                if (streams.Error.Count > 0) streams.Error.Clear();
                if (streams.Warning.Count > 0) streams.Warning.Clear();
                if (streams.Verbose.Count > 0) streams.Verbose.Clear();
                if (streams.Debug.Count > 0) streams.Debug.Clear();
                if (streams.Progress.Count > 0) streams.Progress.Clear();
                if (streams.Information.Count > 0) streams.Information.Clear();
            }
        }
    }

    /// <summary>Calls the handler for each message of a batch, on a worker's pipeline thread.</summary>
    internal sealed class HandlerInvoker
    {
        // The connection whose handler runs on this thread (a worker's pipeline thread, where
        // the handler's own cmdlets run too), so Disconnect-TcpEndpoint can tell a handler
        // closing its own connection, which the core closes after the handler, after its output.
        [ThreadStatic]
        private static TcpConnection t_handling;

        /// <summary>Whether this thread is running <paramref name="connection"/>'s handler right now.</summary>
        public static bool IsHandling(TcpConnection connection) => connection != null && ReferenceEquals(t_handling, connection);

        /// <summary>The connection whose handler runs on this thread; null outside handlers.</summary>
        public static TcpConnection Current => t_handling;

        private readonly ScriptBlock[] _scripts;
        private readonly object[] _arguments;
        private readonly PSDataCollection<ErrorRecord> _errors;
        private readonly IReadOnlyList<HandlerOrigin> _origins;

        public HandlerInvoker(ScriptBlock[] scripts, object[] arguments, PSDataCollection<ErrorRecord> errors, IReadOnlyList<HandlerOrigin> origins = null)
        {
            _origins = origins;
            _scripts = scripts;
            _arguments = arguments;
            _errors = errors;
        }

        public void Run(HandlerBatch batch)
        {
            var connection = batch.Connection;
            var messages = batch.Messages;
            for (int i = 0; i < messages.Length; i++)
            {
                if (batch.IsCancelled || HandlerBatch.CloseRequested(connection) || batch.Output.Ended) return;
                var action = batch.ActionFor(i);
                if (action.IsScript)
                {
                    Invoke(_scripts[action.Script], batch, messages[i], _origins != null && action.Script < _origins.Count ? _origins[action.Script] : HandlerOrigin.Unknown);
                }
                else
                {
                    action.WriteTo(batch.Output, connection);
                }
            }
        }

        private void Invoke(ScriptBlock script, HandlerBatch batch, TcpMessage message, HandlerOrigin origin)
        {
            var connection = batch.Connection;
            var args = new object[2 + _arguments.Length];
            args[0] = message;
            args[1] = connection;
            Array.Copy(_arguments, 0, args, 2, _arguments.Length);
            // $_ is the message too, so { "got $($_.Text)" } works without a param block.
            var variables = new List<PSVariable>(1) { new PSVariable("_", message) };
            int errorsBefore = _errors.Count;
            Collection<PSObject> results = null;
            try
            {
                t_handling = connection;
                results = script.InvokeWithContext(null, variables, args);
            }
            catch (PipelineStoppedException)
            {
                throw;
            }
            catch (Exception e)
            {
                // throw, exit, a terminating error, break outside a loop: nothing is sent for this message.
                Report(connection, message, Describe(e), e, origin.Where((e as IContainsErrorRecord)?.ErrorRecord));
            }
            finally
            {
                t_handling = null;
            }

            for (int i = errorsBefore; i < _errors.Count; i++)
            {
                var record = _errors[i];
                Report(connection, message, $"wrote an error: {record}", record.Exception, origin.Where(record));
            }

            if (results == null) return;
            foreach (var result in results)
            {
                if (result == null) continue;
                try
                {
                    batch.Output.Write(result);
                }
                catch (ArgumentException e)
                {
                    Report(connection, message, $"wrote output that can't be sent: {e.Message}", e);
                }
            }

            try
            {
                // Bytes the pipeline unrolled from one call's byte[]: one message.
                batch.Output.FlushBytes();
            }
            catch (ArgumentException e)
            {
                Report(connection, message, $"wrote output that can't be sent: {e.Message}", e);
            }
        }

        private static string Describe(Exception e)
        {
            if (e.GetType().Name == "ExitException")
            {
                var code = (e as ExitException)?.Argument;
                return $"called exit{(code != null ? " " + code : string.Empty)}";
            }

            var record = (e as IContainsErrorRecord)?.ErrorRecord;
            return "failed: " + (record?.ToString() ?? e.Message);
        }

        private static void Report(TcpConnection connection, TcpMessage message, string what, Exception inner, string where = ".") =>
            HandlerFailures.Record(connection, new TcpException(TcpErrorKind.HandlerFailed,
                $"The handler {what} (message {message.Sequence} of connection {connection.Id} from {connection.RemoteEndPoint}){where}", inner));
    }
}
