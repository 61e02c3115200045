using System;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;

namespace PSTcp.Commands
{
    /// <summary>
    /// Add-TcpFault: puts a fault (latency, bandwidth, slicer, limit-data, timeout, reset, slow
    /// close) on a relay. It acts on open connections at their next read too. With -ScriptBlock it
    /// is on the relay only while the block runs (removed when it ends, even on a throw).
    /// </summary>
    [Cmdlet(VerbsCommon.Add, "TcpFault", SupportsShouldProcess = true, HelpUri = HelpLinks.Base + "Add-TcpFault.md")]
    [OutputType(typeof(TcpFault))]
    public sealed class AddTcpFaultCommand : TcpCmdlet
    {
        [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true)]
        [ServerTransformation]
        [ArgumentCompleter(typeof(ServerCompleter))]
        [ValidateNotNull]
        public TcpServer Relay { get; set; }

        [Parameter(Mandatory = true, Position = 1)]
        public TcpFaultType Type { get; set; }

        [Parameter]
        [FaultDirectionTransformation]
        public TcpFaultDirection Direction { get; set; } = TcpFaultDirection.Both;

        [Parameter]
        [TimeSpanTransformation]
        public TimeSpan Latency { get; set; }

        [Parameter]
        [TimeSpanTransformation]
        public TimeSpan Jitter { get; set; }

        [Parameter]
        [ValidateRange(1, long.MaxValue)]
        public long BytesPerSecond { get; set; }

        [Parameter]
        [ValidateRange(1, int.MaxValue)]
        public int SliceSize { get; set; }

        [Parameter]
        [TimeSpanTransformation]
        public TimeSpan SliceDelay { get; set; } = TimeSpan.FromMilliseconds(10);

        [Parameter]
        [ValidateRange(0, long.MaxValue)]
        public long ByteCount { get; set; } = -1;

        [Parameter]
        [TimeSpanTransformation]
        public TimeSpan Delay { get; set; }

        [Parameter]
        [ValidateRange(0.0, 1.0)]
        public double Probability { get; set; } = 1;

        [Parameter]
        public int Seed { get; set; }

        /// <summary>A wildcard on the message's Text (case-insensitive, like -like).</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        [SupportsWildcards]
        public string Match { get; set; }

        [Parameter]
        [ValidateRange(0, int.MaxValue)]
        public int AfterMessages { get; set; }

        [Parameter]
        [ValidateRange(1, int.MaxValue)]
        public int Count { get; set; }

        [Parameter]
        [ValidateNotNullOrEmpty]
        public string Name { get; set; }

        /// <summary>The fault is on the relay only while this runs; the block gets the fault as its first argument.</summary>
        [Parameter]
        public ScriptBlock ScriptBlock { get; set; }

        /// <summary>With -ScriptBlock: write the fault after the block's output.</summary>
        [Parameter]
        public SwitchParameter PassThru { get; set; }

        protected override void ProcessRecord()
        {
            var faults = Relay.Faults;
            if (faults == null)
            {
                ThrowTerminatingError(TcpErrors.InvalidArgument($"{Relay.Name} (Id {Relay.Id}) is not a relay: faults go on a server made by Start-TcpRelay.", Relay));
                return;
            }

            if (Relay.State == ServerState.Stopped || Relay.State == ServerState.Stopping)
            {
                ThrowTerminatingError(TcpErrors.InvalidArgument($"{Relay.Name} (Id {Relay.Id}) is {Relay.State}: faults go on a running relay.", Relay));
                return;
            }

            var fault = new TcpFault(Type)
            {
                Name = Name,
                Direction = Direction,
                Latency = Latency,
                Jitter = Jitter,
                BytesPerSecond = BytesPerSecond,
                SliceSize = SliceSize,
                SliceDelay = SliceDelay,
                ByteCount = Type == TcpFaultType.LimitData && ByteCount < 0 ? -1 : Math.Max(0, ByteCount),
                Delay = Delay,
                Probability = Probability,
                Seed = MyInvocation.BoundParameters.ContainsKey(nameof(Seed)) ? Seed : (int?)null,
                Match = Match,
                AfterMessages = AfterMessages,
                Count = MyInvocation.BoundParameters.ContainsKey(nameof(Count)) ? Count : (int?)null,
            };
            if (Match != null)
            {
                var pattern = new WildcardPattern(Match, WildcardOptions.IgnoreCase | WildcardOptions.CultureInvariant);
                fault.Matcher = pattern.IsMatch;
            }

            if (Type == TcpFaultType.LimitData && !MyInvocation.BoundParameters.ContainsKey(nameof(ByteCount)))
            {
                ThrowTerminatingError(TcpErrors.InvalidArgument("A LimitData fault needs -ByteCount.", Relay));
                return;
            }

            if (!ShouldProcess($"{Relay.Name} (Id {Relay.Id}) to {Relay.Target}", $"Add {Type} fault"))
            {
                return;
            }

            try
            {
                faults.Add(fault, Relay);
            }
            catch (ArgumentException e)
            {
                ThrowTerminatingError(TcpErrors.InvalidArgument(e.Message, Relay));
                return;
            }

            WriteVerbose($"{Relay.Name}: {fault.Name} ({Type}, {Direction}) added.");
            if (ScriptBlock == null)
            {
                WriteObject(fault);
                return;
            }

            try
            {
                foreach (var output in ScriptBlock.Invoke(fault))
                {
                    WriteObject(output);
                }
            }
            catch (RuntimeException e)
            {
                // A failing block (a Pester assertion) fails the caller as it would have without us.
                faults.Remove(fault);
                ThrowTerminatingError(e.ErrorRecord);
            }
            finally
            {
                faults.Remove(fault);
                WriteVerbose($"{Relay.Name}: {fault.Name} removed (its block ended) after firing {fault.Applied} times.");
            }

            if (PassThru) WriteObject(fault);
        }
    }

    /// <summary>Get-TcpFault: the faults on relays (all relays', or those of -Relay), optionally by -Name.</summary>
    [Cmdlet(VerbsCommon.Get, "TcpFault", HelpUri = HelpLinks.Base + "Get-TcpFault.md")]
    [OutputType(typeof(TcpFault))]
    public sealed class GetTcpFaultCommand : TcpCmdlet
    {
        [Parameter(Position = 0, ValueFromPipeline = true)]
        [ServerTransformation]
        [ArgumentCompleter(typeof(ServerCompleter))]
        [ValidateNotNull]
        public TcpServer[] Relay { get; set; }

        [Parameter]
        [SupportsWildcards]
        [ValidateNotNullOrEmpty]
        public string[] Name { get; set; }

        protected override void ProcessRecord()
        {
            var relays = Relay ?? TcpRegistry.Servers.Where(s => s.Faults != null).ToArray();
            var patterns = Name?.Select(n => new WildcardPattern(n, WildcardOptions.IgnoreCase)).ToArray();
            foreach (var relay in relays)
            {
                if (relay.Faults == null)
                {
                    if (Relay != null) WriteError(TcpErrors.InvalidArgument($"{relay.Name} (Id {relay.Id}) is not a relay: it has no faults.", relay));
                    continue;
                }

                foreach (var fault in relay.Faults.Faults)
                {
                    if (patterns == null || patterns.Any(p => p.IsMatch(fault.Name))) WriteObject(fault);
                }
            }
        }
    }

    /// <summary>Remove-TcpFault: takes faults off their relays (from the pipeline too); open connections are free of them at their next read.</summary>
    [Cmdlet(VerbsCommon.Remove, "TcpFault", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Low, HelpUri = HelpLinks.Base + "Remove-TcpFault.md")]
    [OutputType(typeof(TcpFault))]
    public sealed class RemoveTcpFaultCommand : TcpCmdlet
    {
        [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true)]
        [ValidateNotNull]
        public TcpFault[] Fault { get; set; }

        [Parameter]
        public SwitchParameter PassThru { get; set; }

        protected override void ProcessRecord()
        {
            foreach (var fault in Fault)
            {
                if (!ShouldProcess($"{fault.Name} on {fault.Relay?.Name}", "Remove fault")) continue;
                var faults = fault.Relay?.Faults;
                if (faults == null || !faults.Remove(fault))
                {
                    WriteVerbose($"{fault.Name} is on no relay (removed already).");
                }
                else
                {
                    WriteVerbose($"{fault.Name} removed from {fault.Relay.Name} after firing {fault.Applied} times.");
                }

                if (PassThru) WriteObject(fault);
            }
        }
    }
}
