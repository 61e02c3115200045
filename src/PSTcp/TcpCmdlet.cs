using System;
using System.Threading;
using System.Threading.Tasks;
using System.Management.Automation;

namespace PSTcp.Commands
{
    /// <summary>What every PSTcp cmdlet shares: Ctrl+C cancels its waits.</summary>
    public abstract class TcpCmdlet : PSCmdlet
    {
        private readonly CancellationTokenSource _stopping = new CancellationTokenSource();

        /// <summary>Cancelled by Ctrl+C (StopProcessing).</summary>
        protected CancellationToken Cancellation => _stopping.Token;

        internal CancellationToken StoppingToken => _stopping.Token;

        internal T WaitFor<T>(Task<T> task) => Wait(task);

        internal void WaitFor(Task task) => Wait(task);

        protected override void StopProcessing() => _stopping.Cancel();

        /// <summary>Waits on the pipeline thread for a core task; Ctrl+C ends the wait.</summary>
        protected T Wait<T>(Task<T> task)
        {
            Wait((Task)task);
            return task.Result;
        }

        protected void Wait(Task task)
        {
            try
            {
                task.Wait(Cancellation);
            }
            catch (OperationCanceledException) when (Cancellation.IsCancellationRequested)
            {
                throw new PipelineStoppedException();
            }
            catch (AggregateException e) when (e.InnerExceptions.Count == 1)
            {
                var inner = e.InnerException;
                if (inner is OperationCanceledException && Cancellation.IsCancellationRequested)
                {
                    throw new PipelineStoppedException();
                }

                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(inner).Throw();
            }
        }

        protected void WriteTcpError(Exception error, object target) => WriteError(TcpErrors.From(error, target));

        protected void ThrowTcpError(Exception error, object target) => ThrowTerminatingError(TcpErrors.From(error, target));
    }
}
