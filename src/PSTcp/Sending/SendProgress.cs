using System.Diagnostics;
using System.Management.Automation;

namespace PSTcp.Commands
{
    /// <summary>
    /// Write-Progress for Send-TcpLine, shown only once sending has taken over a second. When
    /// the total is known (a file's length, or the number of lines given at once) it shows the
    /// percentage done and the time left at the rate so far.
    /// </summary>
    internal sealed class SendProgress
    {
        private const int ActivityId = 0x7C9;
        private static readonly long ShowAfter = Stopwatch.Frequency;
        private static readonly long Interval = Stopwatch.Frequency / 4;

        private readonly Cmdlet _cmdlet;
        private readonly Stopwatch _clock = Stopwatch.StartNew();
        private long _lastShown = -Interval;
        private long _sent;
        private long _total;
        private long _itemBase;
        private long _itemStart;
        private string _file;
        private bool _shown;

        public SendProgress(Cmdlet cmdlet)
        {
            _cmdlet = cmdlet;
        }

        public void BeginItems(long count)
        {
            _file = null;
            _total = count > 1 ? count : 0;
            _itemBase = _sent;
            _itemStart = _clock.ElapsedTicks;
        }

        public void BeginFile(string file, long length)
        {
            _file = file;
            _total = length;
            _itemStart = _clock.ElapsedTicks;
        }

        /// <summary>Counts lines; <paramref name="position"/> is the byte offset when sending a file.</summary>
        public void Advance(int lines, long position)
        {
            _sent += lines;
            // Cheap enough per line: only every 1024th line looks at the clock.
            if ((_sent & 1023) != 0) return;
            long now = _clock.ElapsedTicks;
            if (now < ShowAfter || now - _lastShown < Interval) return;
            _lastShown = now;
            _shown = true;
            var record = new ProgressRecord(ActivityId, "Send-TcpLine", Status(position));
            long done = _file != null ? position : _sent - _itemBase;
            if (_total > 0 && done > 0)
            {
                record.PercentComplete = (int)System.Math.Min(100, 100 * done / _total);
                // The rate since this file (or batch of lines) began predicts the rest.
                double elapsed = (double)(now - _itemStart) / Stopwatch.Frequency;
                record.SecondsRemaining = (int)System.Math.Ceiling(elapsed * (_total - System.Math.Min(done, _total)) / done);
            }

            _cmdlet.WriteProgress(record);
        }

        private string Status(long position) =>
            _file == null
                ? $"{_sent:N0} lines sent"
                : $"{_sent:N0} lines sent from {_file} ({DisplayFormat.Bytes(position)} of {DisplayFormat.Bytes(_total)})";

        public void Complete()
        {
            if (!_shown) return;
            _cmdlet.WriteProgress(new ProgressRecord(ActivityId, "Send-TcpLine", $"{_sent:N0} lines sent")
            {
                RecordType = ProgressRecordType.Completed,
            });
        }
    }
}
