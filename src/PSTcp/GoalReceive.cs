using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Diagnostics;
using System.Management.Automation;
using System.Threading;

namespace PSTcp.Commands
{
    /// <summary>
    /// Takes messages from a source on the cmdlet's thread until a <see cref="ReceiveGoal"/> is
    /// met, the deadline passes (what arrived is written, then ReceiveTimeout), the source ends,
    /// or Ctrl+C.
    /// </summary>
    internal static class GoalReceive
    {
        public static void Receive(TcpCmdlet cmdlet, MessageSource source, ReceiveGoal goal, TimeSpan? timeout)
        {
            // Errors arrive on socket threads; only the cmdlet's thread may write them.
            var errors = new ConcurrentQueue<TcpErrorEventArgs>();
            EventHandler<TcpErrorEventArgs> onError = (_, e) => errors.Enqueue(e);
            source.Queue.ErrorReported += onError;
            var clock = Stopwatch.StartNew();
            var output = new List<TcpMessage>();
            bool finished = false;
            try
            {
                var reader = source.Queue.Reader;
                using (var deadline = CancellationTokenSource.CreateLinkedTokenSource(cmdlet.Cancellation))
                {
                    if (timeout.HasValue) deadline.CancelAfter(timeout.Value);
                    bool met = goal.Begin(source.Target as TcpConnection, output);
                    Write(cmdlet, output);
                    while (!met)
                    {
                        while (!met && reader.TryRead(out var message))
                        {
                            try
                            {
                                met = goal.Offer(message, output);
                            }
                            finally
                            {
                                Write(cmdlet, output);
                            }
                        }

                        WriteErrors(cmdlet, errors);
                        if (met || !WaitForMessages(cmdlet, reader, deadline.Token)) break;
                    }

                    if (!met)
                    {
                        goal.End(output);
                        Write(cmdlet, output);
                    }

                    finished = true;
                    WriteErrors(cmdlet, errors);
                    if (met) return;
                }

                if (reader.Completion.IsCompleted)
                {
                    var error = MessageSource.CompletionError(reader.Completion);
                    if (error != null) cmdlet.WriteError(TcpErrors.From(error, source.Target));
                    return;
                }

                if (goal.HasEnd)
                {
                    cmdlet.WriteError(TcpErrors.From(TcpErrorKind.ReceiveTimeout,
                        $"{goal.Describe(source.Name)} in {clock.Elapsed.TotalSeconds:0.###} s.", source.Target));
                }
            }
            catch (TcpException e)
            {
                // A stream read over the message limit: its bytes stay for the next receive.
                finished = true;
                cmdlet.WriteError(TcpErrors.From(e, source.Target));
            }
            finally
            {
                source.Queue.ErrorReported -= onError;
                if (!finished) goal.Abandon();
            }
        }

        private static void Write(TcpCmdlet cmdlet, List<TcpMessage> output)
        {
            foreach (var message in output) cmdlet.WriteObject(message);
            output.Clear();
        }

        private static bool WaitForMessages(TcpCmdlet cmdlet, System.Threading.Channels.ChannelReader<TcpMessage> reader, CancellationToken deadline)
        {
            try
            {
                return reader.WaitToReadAsync(deadline).AsTask().GetAwaiter().GetResult();
            }
            catch (OperationCanceledException)
            {
                if (cmdlet.Cancellation.IsCancellationRequested) throw new PipelineStoppedException();
                return false;
            }
            catch (Exception)
            {
                // The queue ended with an error: reported by the caller once drained.
                return false;
            }
        }

        private static void WriteErrors(TcpCmdlet cmdlet, ConcurrentQueue<TcpErrorEventArgs> errors)
        {
            while (errors.TryDequeue(out var e))
            {
                cmdlet.WriteError(TcpErrors.From(e.Error, (object)e.Connection ?? e.Error));
            }
        }
    }
}
