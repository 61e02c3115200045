using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Management.Automation;

namespace PSTcp.Commands
{
    /// <summary>
    /// Runs a receive on the cmdlet's own thread (Receive-TcpMessage without -AsJob,
    /// Invoke-TcpRequest): drives the shared <see cref="MessageConsumer"/> and writes what it
    /// takes; a <see cref="ReceiveGoal"/> says when it is done and, for a stream read on a Raw
    /// connection, cuts the bytes into the one message to write.
    /// </summary>
    internal static class ReceiveLoop
    {
        public static void Receive(TcpCmdlet cmdlet, IMessageSource source, string location, object target,
            ReceiveGoal goal, TimeSpan? timeout, bool verbose)
        {
            var clock = Stopwatch.StartNew();
            var output = new List<TcpMessage>();
            bool settled = false;
            try
            {
                goal.SetDeadline(timeout);
                // What an earlier stream read left comes before anything queued.
                bool met = goal.Begin(target as TcpConnection, output);
                Write(cmdlet, output);
                if (met)
                {
                    settled = true;
                    return;
                }

                var left = timeout.HasValue ? timeout.Value - clock.Elapsed : (TimeSpan?)null;
                if (left.HasValue && left.Value < TimeSpan.FromMilliseconds(1)) left = TimeSpan.FromMilliseconds(1);
                using (var consumer = new MessageConsumer(source, location, target, goal.RemainingCount, left, goal.Until, verbose, cmdlet.Cancellation))
                {
                    while (!met && MoveNext(cmdlet, consumer))
                    {
                        switch (consumer.CurrentKind)
                        {
                            case ConsumedKind.Message:
                                if (goal.IsStream)
                                {
                                    try
                                    {
                                        met = goal.Offer((TcpMessage)consumer.Current, output);
                                    }
                                    finally
                                    {
                                        Write(cmdlet, output);
                                    }
                                }
                                else
                                {
                                    cmdlet.WriteObject(consumer.Current);
                                }

                                break;
                            case ConsumedKind.Error: cmdlet.WriteError((ErrorRecord)consumer.Current); break;
                            case ConsumedKind.Warning: cmdlet.WriteWarning((string)consumer.Current); break;
                            default: cmdlet.WriteVerbose((string)consumer.Current); break;
                        }
                    }

                    if (!met && goal.IsStream)
                    {
                        // Timed out or the source ended: what the stream gave is written, as the consumer would.
                        var shortOf = goal.Describe(source.Name);
                        bool ended = consumer.Queue.IsCompleted && consumer.Queue.Count == 0;
                        met = goal.End(output);
                        Write(cmdlet, output);
                        if (met)
                        {
                            // A match found only by the final full search.
                        }
                        else if (!ended)
                        {
                            cmdlet.WriteError(TcpErrors.From(TcpErrorKind.ReceiveTimeout,
                                $"{shortOf} in {clock.Elapsed.TotalSeconds:0.###} s.", target));
                        }
                        else if (goal.IsByteCount && !consumer.EndedWithError)
                        {
                            // Fewer bytes than asked for are never returned as if complete.
                            cmdlet.WriteError(TcpErrors.From(TcpErrorKind.ConnectionClosed,
                                $"{shortOf}: the stream ended (the peer closed) first.", target));
                        }
                    }
                }

                settled = true;
            }
            catch (System.Text.RegularExpressions.RegexMatchTimeoutException e)
            {
                // -Until on whole messages: a pattern that backtracks without end.
                settled = true;
                cmdlet.WriteError(TcpErrors.From(TcpErrorKind.ReceiveTimeout,
                    $"Matching -Until '{e.Pattern}' took over {e.MatchTimeout.TotalSeconds:0.###} s; the receive gave up. Simplify the pattern (it backtracks).", target));
            }
            catch (TcpException e)
            {
                // A stream read over the message limit: its bytes stay for the next receive.
                settled = true;
                cmdlet.WriteError(TcpErrors.From(e, target));
            }
            finally
            {
                // Ctrl+C: a stream read's bytes stay for the next receive.
                if (!settled) goal.Abandon();
            }
        }

        private static bool MoveNext(TcpCmdlet cmdlet, MessageConsumer consumer)
        {
            try
            {
                // Blocking here, woken by the connection's own thread: no thread-pool hop per message.
                return consumer.MoveNext();
            }
            catch (OperationCanceledException) when (cmdlet.Cancellation.IsCancellationRequested)
            {
                throw new PipelineStoppedException();
            }
        }

        private static void Write(TcpCmdlet cmdlet, List<TcpMessage> output)
        {
            foreach (var message in output) cmdlet.WriteObject(message);
            output.Clear();
        }
    }
}
