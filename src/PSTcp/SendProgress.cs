using System.Diagnostics;
using System.Management.Automation;

namespace PSTcp.Commands
{
    /// <summary>Write-Progress for Send-TcpLine, shown only once sending has taken over a second.</summary>
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
        }

        public void BeginFile(string file, long length)
        {
            _file = file;
            _total = length;
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
            var record = new ProgressRecord(ActivityId, "Send-TcpLine",
                _file != null ? $"{_sent:N0} lines sent from {_file}" : $"{_sent:N0} lines sent");
            if (_file != null && _total > 0)
            {
                record.PercentComplete = (int)(100 * position / _total);
            }
            else if (_total > 0)
            {
                record.PercentComplete = (int)(100 * (_sent - _itemBase) / _total);
            }

            _cmdlet.WriteProgress(record);
        }

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
