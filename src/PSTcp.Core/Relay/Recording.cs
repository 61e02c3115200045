using System;
using System.Collections.Concurrent;
using System.IO;
using System.Threading;
using System.Threading.Tasks;

namespace PSTcp
{
    /// <summary>
    /// Start-TcpRelay -RecordPath: records the relay's connections to a file (each connection's
    /// messages both ways with their timing, and how it ended), and, by <see cref="RecordMode"/>,
    /// answers clients from the file instead of the target. Hooked into <see cref="RelayHandler"/>
    /// through its <see cref="RelayHandler.Recorder"/>: it sees every client event first, and
    /// decides per connection whether the target is contacted.
    /// </summary>
    public sealed class RelayRecorder
    {
        /// <summary>Reads of one side this close together (ms) form one recorded message.</summary>
        internal const double MergeMilliseconds = 20;

        private readonly ConcurrentDictionary<TcpConnection, ClientState> _clients = new ConcurrentDictionary<TcpConnection, ClientState>();
        private readonly object _fileLock = new object();
        private readonly TcpRecording _file;
        private readonly ReplayBook _book;
        private int _nextId;

        /// <param name="path">The recording file (a full path).</param>
        /// <param name="mode">What is recorded and what replayed.</param>
        /// <param name="target">The relay's target, written into the file.</param>
        public RelayRecorder(string path, RecordMode mode, string target)
        {
            Path = path ?? throw new ArgumentNullException(nameof(path));
            Mode = mode;
            bool exists = File.Exists(path);
            if (mode == RecordMode.None && !exists)
            {
                throw new TcpException(TcpErrorKind.RecordingInvalid, $"The recording {path} does not exist, and -RecordMode None only replays.");
            }

            var directory = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path));
            if (mode != RecordMode.None && !Directory.Exists(directory))
            {
                throw new TcpException(TcpErrorKind.RecordingInvalid, $"The recording {path} can't be written: the folder {directory} does not exist.");
            }

            Replays = mode == RecordMode.None || mode == RecordMode.NewEpisodes || (mode == RecordMode.Once && exists);
            Records = mode == RecordMode.All || mode == RecordMode.NewEpisodes || (mode == RecordMode.Once && !exists);
            var existing = exists && Replays ? TcpRecording.Load(path) : null;
            if (Replays)
            {
                _book = new ReplayBook(existing ?? new TcpRecording(), path, reuse: mode != RecordMode.NewEpisodes);
            }

            // NewEpisodes appends to what the file has; All and Once start a new file.
            _file = mode == RecordMode.NewEpisodes && existing != null ? existing : new TcpRecording();
            _file.Target = _file.Target ?? target;
            foreach (var c in _file.Connections) _nextId = Math.Max(_nextId, c.Id);
        }

        public string Path { get; }

        /// <summary>Where a <see cref="TcpErrorKind.ReplayMiss"/> is reported (the server's RecordError by default).</summary>
        public Action<TcpConnection, TcpException> ReportMiss
        {
            set
            {
                if (_book != null) _book.Report = value ?? throw new ArgumentNullException(nameof(value));
            }
        }

        public RecordMode Mode { get; }

        /// <summary>Whether clients are answered from the file (all of them, or, with NewEpisodes, those it has).</summary>
        public bool Replays { get; }

        /// <summary>Whether connections relayed to the target are recorded.</summary>
        public bool Records { get; }

        /// <summary>How many connections were written to the file by this relay.</summary>
        public int Recorded => Volatile.Read(ref _recorded);

        private int _recorded;

        /// <summary>A client connected: true when the relay should connect it to the target now.</summary>
        internal bool OnClientConnected(TcpConnection client)
        {
            var state = new ClientState();
            _clients[client] = state;
            if (_book == null)
            {
                StartRecording(state, client);
                return true;
            }

            var session = new ReplaySession(_book, client, timing: false, fallback: Records);
            if (Records && !_book.HasUnused)
            {
                // NewEpisodes with everything used: straight to the target.
                StartRecording(state, client);
                return true;
            }

            state.Replay = session;
            session.TryStartTargetFirst();
            return false;
        }

        internal async ValueTask OnClientDataAsync(RelayHandler relay, TcpConnection client, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
        {
            if (!_clients.TryGetValue(client, out var state)) return;
            var replay = state.Replay;
            if (replay != null)
            {
                if (await replay.OnDataAsync(data, cancellationToken).ConfigureAwait(false) != ReplayResult.Unpaired) return;
                // NewEpisodes: nothing recorded starts like this; the target answers, and it is recorded.
                state.Replay = null;
                StartRecording(state, client);
                relay.StartPair(client);
                data = replay.TakePending();
            }

            state.Recording?.Data(RecordedSide.Client, data.Span);
            await relay.ForwardFromClientAsync(client, data, cancellationToken).ConfigureAwait(false);
        }

        internal async ValueTask OnClientEndedAsync(RelayHandler relay, TcpConnection client)
        {
            if (!_clients.TryGetValue(client, out var state)) return;
            var replay = state.Replay;
            if (replay != null)
            {
                if (await replay.OnClientEndedAsync().ConfigureAwait(false) != ReplayResult.Unpaired) return;
                // NewEpisodes: the client ended before what it sent paired with anything; the target answers.
                state.Replay = null;
                StartRecording(state, client);
                relay.StartPair(client);
                var pending = replay.TakePending();
                state.Recording?.Data(RecordedSide.Client, pending.Span);
                await relay.ForwardFromClientAsync(client, pending, CancellationToken.None).ConfigureAwait(false);
            }

            state.Recording?.Ended(RecordedSide.Client, RecordedEndKind.Close);
            await relay.ClientEndedAsync(client).ConfigureAwait(false);
        }

        /// <summary>The client's connection closed: a recorded one is written to the file.</summary>
        internal void OnClientClosed(TcpConnection client)
        {
            if (!_clients.TryRemove(client, out var state)) return;
            state.Replay?.OnClosed();
            var recording = state.Recording;
            // Nothing said either way (a health check, a target that could not be reached): nothing to replay.
            if (recording == null || recording.Connection.Messages.Count == 0) return;
            var server = client.Server;
            // No FIN and no end from the target: the client reset it, unless the relay is stopping.
            if (server != null && server.State != ServerState.Running && server.State != ServerState.Suspended)
            {
                recording.Ended(RecordedSide.Relay, RecordedEndKind.Close);
            }
            else
            {
                recording.Ended(RecordedSide.Client, RecordedEndKind.Reset);
            }

            Save(recording.Connection, server);
        }

        /// <summary>The target could not be reached: the client's connection is not a conversation to replay.</summary>
        internal void OnTargetFailed(TcpConnection client)
        {
            if (_clients.TryGetValue(client, out var state)) state.Recording = null;
        }

        internal void OnTargetData(TcpConnection client, ReadOnlyMemory<byte> data)
        {
            if (_clients.TryGetValue(client, out var state)) state.Recording?.Data(RecordedSide.Target, data.Span);
        }

        internal void OnTargetEnded(TcpConnection client)
        {
            if (_clients.TryGetValue(client, out var state)) state.Recording?.Ended(RecordedSide.Target, RecordedEndKind.Close);
        }

        internal void OnTargetClosed(TcpConnection client, TcpConnection target)
        {
            if (_clients.TryGetValue(client, out var state) && target.Error?.Kind == TcpErrorKind.ConnectionReset)
            {
                state.Recording?.Ended(RecordedSide.Target, RecordedEndKind.Reset);
            }
        }

        private void StartRecording(ClientState state, TcpConnection client)
        {
            if (!Records) return;
            state.Recording = new RecordingSession(new RecordedConnection
            {
                Id = Interlocked.Increment(ref _nextId),
                Started = client.ConnectedAt,
                Client = client.RemoteEndPoint?.ToString(),
            }, state.Clock);
        }

        /// <summary>Adds a finished connection and rewrites the file (temporary file, then rename), so it is whole while the relay runs.</summary>
        private void Save(RecordedConnection connection, TcpServer server)
        {
            lock (_fileLock)
            {
                _file.Connections.Add(connection);
                _file.Connections.Sort((a, b) => a.Id.CompareTo(b.Id));
                try
                {
                    _file.Save(Path);
                    _recorded++;
                }
                catch (Exception e) when (e is IOException || e is UnauthorizedAccessException)
                {
                    server?.RecordError(new TcpException(TcpErrorKind.RecordingInvalid, $"Writing the recording {Path} failed: {e.Message}", e), null);
                }
            }
        }

        /// <summary>Writes the file as it is now (nothing recorded yet included).</summary>
        public void Flush()
        {
            lock (_fileLock)
            {
                if (Records) _file.Save(Path);
            }
        }

        private sealed class ClientState
        {
            public readonly RecordingClock Clock = new RecordingClock();

            public volatile ReplaySession Replay;

            public volatile RecordingSession Recording;
        }
    }

    /// <summary>One relayed connection being recorded; both sides' loops call in, so it locks.</summary>
    internal sealed class RecordingSession
    {
        private readonly object _lock = new object();
        private readonly RecordingClock _clock;
        private readonly double[] _lastData = { double.NegativeInfinity, double.NegativeInfinity };

        public RecordingSession(RecordedConnection connection, RecordingClock clock)
        {
            Connection = connection;
            _clock = clock;
        }

        public RecordedConnection Connection { get; }

        public void Data(RecordedSide side, ReadOnlySpan<byte> data)
        {
            if (data.IsEmpty) return;
            lock (_lock)
            {
                double now = _clock.Now;
                var messages = Connection.Messages;
                var last = messages.Count > 0 ? messages[messages.Count - 1] : null;
                if (last != null && last.From == side && now - _lastData[(int)side] <= RelayRecorder.MergeMilliseconds)
                {
                    var merged = new byte[last.Data.Length + data.Length];
                    Buffer.BlockCopy(last.Data, 0, merged, 0, last.Data.Length);
                    data.CopyTo(merged.AsSpan(last.Data.Length));
                    last.Data = merged;
                }
                else
                {
                    messages.Add(new RecordedMessage(side, now, data.ToArray()));
                }

                _lastData[(int)side] = now;
                // A FIN the other side answered with more data was a half-close.
                var end = Connection.End;
                if (end != null && end.How == RecordedEndKind.Close && end.By != side && end.By != RecordedSide.Relay)
                {
                    Connection.End = new RecordedEnd(end.By, RecordedEndKind.HalfClose, end.At);
                }
            }
        }

        /// <summary>The first side to end decides how the connection ended; later ends are the other side following.</summary>
        public void Ended(RecordedSide side, RecordedEndKind how)
        {
            lock (_lock)
            {
                if (Connection.End == null) Connection.End = new RecordedEnd(side, how, _clock.Now);
            }
        }
    }
}
