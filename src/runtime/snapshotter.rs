//! The snapshot file on disk: replaying it at start and appending records to it from a
//! background thread. The format, its replay rules and what a caller records are in
//! [`serf_proto::serf::snapshot`].
//!
//! Disk I/O never runs on the protocol thread: [`SnapshotWriter`] owns the file on its own thread
//! and [`SnapshotWriter::record`] only tries to put the record in a bounded channel. A graceful
//! leave goes through [`SnapshotWriter::leave`], which waits until the `leave` line is on disk.
//!
//! On start: [`replay`] the file, then [`SnapshotWriter::open`] it with that replay.

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender};
use serf_proto::serf::snapshot::{parse_bytes, Record, Replay};
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Buffered records reach the OS once this much time has passed since the previous flush.
const FLUSH_INTERVAL: Duration = Duration::from_millis(500);

/// Go's `eventChSize`: how many records may wait for the writer thread before new ones are dropped.
const CHANNEL_CAPACITY: usize = 2048;

/// Go's estimate of bytes per alive member, used to size the compaction threshold.
const BYTES_PER_NODE: u64 = 128;

/// The file may grow to this many times the estimated compacted size before it is compacted.
const COMPACTION_FACTOR: u64 = 2;

/// Go's `snapshotSizeLimit`: compaction never triggers below this size.
pub const DEFAULT_MIN_COMPACT_SIZE: u64 = 128 * 1024;

/// A failed compaction (or one to recover from a failed append) is retried at most this often.
const RECOVERY_INTERVAL: Duration = Duration::from_secs(30);

/// [`SnapshotWriter::leave`] waits at most this long for the leave to reach the disk.
const LEAVE_TIMEOUT: Duration = Duration::from_secs(1);

/// Replays the file at `path` (see [`serf_proto::serf::snapshot::parse`]); a missing file is an empty
/// replay.
pub fn replay(path: &Path, rejoin_after_leave: bool) -> io::Result<Replay> {
    match fs::read(path) {
        Ok(bytes) => Ok(parse_bytes(&bytes, rejoin_after_leave)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Replay::default()),
        Err(e) => Err(with_path("failed to read snapshot", path, e)),
    }
}

/// Settings of a [`SnapshotWriter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterOptions {
    /// Keep the alive set in memory on leave, so a compaction after the leave still lists it
    /// (Go's `RejoinAfterLeave`).
    pub rejoin_after_leave: bool,
    /// Compaction never triggers below this file size (Go: 128 KiB).
    pub min_compact_size: u64,
}

impl Default for WriterOptions {
    fn default() -> Self {
        Self {
            rejoin_after_leave: false,
            min_compact_size: DEFAULT_MIN_COMPACT_SIZE,
        }
    }
}

enum Msg {
    Record(Record),
    /// A leave, with where to report whether it reached the disk.
    Leave(Option<Sender<bool>>),
}

#[derive(Default)]
struct Counters {
    dropped: AtomicU64,
    errors: AtomicU64,
}

/// Appends records to the snapshot file from a background thread, compacting it when it grows.
/// The thread keeps its own alive set and last clocks, so compaction needs nothing from the caller.
pub struct SnapshotWriter {
    /// `None` only while shutting down: dropping the sender tells the thread to finish.
    tx: Option<Sender<Msg>>,
    handle: Option<JoinHandle<io::Result<()>>>,
    counters: Arc<Counters>,
}

impl SnapshotWriter {
    /// Opens (or creates, mode 0644) the file for appending, with Go's compaction threshold, and
    /// starts the writer thread. `replay` is what [`replay`] returned for the same file.
    pub fn open(path: &Path, replay: &Replay) -> io::Result<SnapshotWriter> {
        Self::open_with(path, replay, WriterOptions::default())
    }

    /// [`SnapshotWriter::open`] with explicit settings.
    pub fn open_with(
        path: &Path,
        replay: &Replay,
        options: WriterOptions,
    ) -> io::Result<SnapshotWriter> {
        let file = open_append(path).map_err(|e| with_path("failed to open snapshot", path, e))?;
        let offset =
            cut_torn_tail(&file).map_err(|e| with_path("failed to read snapshot", path, e))?;
        let counters = Arc::new(Counters::default());
        let log = Log {
            path: path.to_owned(),
            file: Some(BufWriter::new(file)),
            offset,
            last_flush: None,
            alive: replay.alive.iter().cloned().collect(),
            clock: replay.last_clock,
            event_clock: replay.last_event_clock,
            query_clock: replay.last_query_clock,
            leaving: false,
            options,
            compacted_size: 0,
            last_failed_compaction: None,
            counters: Arc::clone(&counters),
        };
        let (tx, rx) = bounded(CHANNEL_CAPACITY);
        let handle = thread::Builder::new()
            .name("serf-snapshot".to_owned())
            .spawn(move || log.run(rx))?;
        Ok(SnapshotWriter {
            tx: Some(tx),
            handle: Some(handle),
            counters,
        })
    }

    /// Queues a record without ever blocking; when the queue is full the record is dropped and
    /// counted (see [`SnapshotWriter::dropped`]), as Go does rather than stall the protocol.
    pub fn record(&self, r: Record) {
        let msg = match r {
            Record::Leave => Msg::Leave(None),
            r => Msg::Record(r),
        };
        if self.tx.as_ref().is_none_or(|tx| tx.try_send(msg).is_err()) {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Records a leave and waits (at most 1 s in all) until it is flushed and fsynced, so a
    /// restart right after a leave does not rejoin. Returns whether that happened in time.
    /// Afterwards only `clock:` records are still written, as in Go.
    pub fn leave(&self) -> bool {
        let Some(tx) = &self.tx else { return false };
        let deadline = Instant::now() + LEAVE_TIMEOUT;
        let (ack_tx, ack_rx) = bounded(1);
        tx.send_deadline(Msg::Leave(Some(ack_tx)), deadline).is_ok()
            && ack_rx.recv_deadline(deadline).unwrap_or(false)
    }

    /// Records dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.counters.dropped.load(Ordering::Relaxed)
    }

    /// Failed writes, flushes, syncs and compactions (Go logs these; here the caller may).
    pub fn errors(&self) -> u64 {
        self.counters.errors.load(Ordering::Relaxed)
    }

    /// Writes every queued record, flushes, fsyncs and joins the thread.
    pub fn close(mut self) -> io::Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> io::Result<()> {
        self.tx = None;
        match self.handle.take() {
            Some(handle) => handle
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("snapshot writer thread panicked"))),
            None => Ok(()),
        }
    }
}

impl Drop for SnapshotWriter {
    fn drop(&mut self) {
        // Nobody is left to hear about a failure; `close` is the way to see it.
        let _ = self.shutdown();
    }
}

/// The writer thread's state.
struct Log {
    path: PathBuf,
    /// `None` after a compaction renamed the new file into place but could not reopen it.
    file: Option<BufWriter<File>>,
    /// Bytes in the file, counting those still buffered.
    offset: u64,
    last_flush: Option<Instant>,
    alive: BTreeMap<String, SocketAddr>,
    clock: u64,
    event_clock: u64,
    query_clock: u64,
    leaving: bool,
    options: WriterOptions,
    /// Size of the last compacted file.
    compacted_size: u64,
    last_failed_compaction: Option<Instant>,
    counters: Arc<Counters>,
}

impl Log {
    fn run(mut self, rx: Receiver<Msg>) -> io::Result<()> {
        loop {
            let received = match self.flush_deadline() {
                Some(deadline) => rx.recv_deadline(deadline),
                None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            };
            match received {
                Ok(Msg::Record(r)) => {
                    self.apply(&r);
                }
                Ok(Msg::Leave(ack)) => {
                    let appended = self.apply(&Record::Leave);
                    let synced = self.sync();
                    let durable = appended && self.count(synced).is_some();
                    if let Some(ack) = ack {
                        // Capacity 1 and one send: never blocks; the caller may have given up.
                        let _ = ack.try_send(durable);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    // Unlike Go, an idle buffer is flushed too, so a crash loses at most ~500 ms.
                    self.last_flush = Some(Instant::now());
                    let flushed = self.file.as_mut().map_or(Ok(()), Write::flush);
                    self.count(flushed);
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let synced = self.sync();
                    if synced.is_err() {
                        self.counters.errors.fetch_add(1, Ordering::Relaxed);
                    }
                    return synced;
                }
            }
        }
    }

    /// When buffered records are due to be flushed, if any are waiting.
    fn flush_deadline(&self) -> Option<Instant> {
        let dirty = self.file.as_ref().is_some_and(|f| !f.buffer().is_empty());
        dirty.then(|| {
            self.last_flush
                .map_or_else(Instant::now, |t| t + FLUSH_INTERVAL)
        })
    }

    /// Updates the in-memory state and appends the line; returns whether the record is on its way
    /// to disk (appended, or captured by a recovery compaction).
    fn apply(&mut self, r: &Record) -> bool {
        // Go stops recording after a leave, except for the clock, which it keeps updating.
        if self.leaving && !matches!(r, Record::Clock(_) | Record::Leave) {
            return true;
        }
        match r {
            Record::Alive { name, addr } => {
                self.alive.insert(name.clone(), *addr);
            }
            Record::NotAlive { name } => {
                self.alive.remove(name);
            }
            Record::Clock(n) => self.clock = *n,
            Record::EventClock(n) => self.event_clock = *n,
            Record::QueryClock(n) => self.query_clock = *n,
            Record::Leave => {
                self.leaving = true;
                if !self.options.rejoin_after_leave {
                    self.alive.clear();
                }
            }
        }
        // Go's `appendLine` timer, which includes a compaction the line triggers.
        let started = Instant::now();
        let outcome = self.append_or_compact(r);
        metrics::histogram!("serf.snapshot.appendLine").record(millis_since(started));
        outcome
    }

    /// Appends the line, compacting when the file grew too large or the append failed.
    fn append_or_compact(&mut self, r: &Record) -> bool {
        let appended = self.append(r);
        let appended = self.count(appended).is_some();
        if appended && self.offset <= self.max_size() {
            return true;
        }
        // Compaction both shrinks a grown file and recovers from a failed append, since it
        // rewrites the file from memory; after a failure it is retried at most every 30 s.
        if self
            .last_failed_compaction
            .is_some_and(|t| t.elapsed() < RECOVERY_INTERVAL)
        {
            return appended;
        }
        let started = Instant::now();
        let compacted = self.compact();
        metrics::histogram!("serf.snapshot.compact").record(millis_since(started));
        if self.count(compacted).is_some() {
            self.last_failed_compaction = None;
            return true;
        }
        self.last_failed_compaction = Some(Instant::now());
        appended
    }

    fn append(&mut self, r: &Record) -> io::Result<()> {
        let file = self.file.as_mut().ok_or_else(not_open)?;
        let mut line = r.to_line();
        line.push('\n');
        file.write_all(line.as_bytes())?;
        if self.last_flush.is_none_or(|t| t.elapsed() > FLUSH_INTERVAL) {
            self.last_flush = Some(Instant::now());
            file.flush()?;
        }
        self.offset += line.len() as u64;
        Ok(())
    }

    /// Go's threshold, max(2 × 128 × |alive|, minimum), and additionally twice the last compacted
    /// size, so members with very long names cannot make every append compact.
    fn max_size(&self) -> u64 {
        let estimate = COMPACTION_FACTOR * BYTES_PER_NODE * self.alive.len() as u64;
        estimate
            .max(self.options.min_compact_size)
            .max(COMPACTION_FACTOR * self.compacted_size)
    }

    /// Rewrites the file as the alive lines and the three clocks: written to `<path>.compact`,
    /// fsynced, renamed over the original (atomic, so a crash leaves one complete file), then
    /// reopened for appending.
    fn compact(&mut self) -> io::Result<()> {
        let mut tmp_name = self.path.clone().into_os_string();
        tmp_name.push(".compact");
        let tmp = PathBuf::from(tmp_name);
        let mut out = BufWriter::new(create_truncated(&tmp)?);
        let mut size = 0;
        let clocks = [
            Record::Clock(self.clock),
            Record::EventClock(self.event_clock),
            Record::QueryClock(self.query_clock),
        ];
        let alive = self.alive.iter().map(|(name, addr)| Record::Alive {
            name: name.clone(),
            addr: *addr,
        });
        for record in alive.chain(clocks) {
            let mut line = record.to_line();
            line.push('\n');
            out.write_all(line.as_bytes())?;
            size += line.len() as u64;
        }
        out.into_inner()
            .map_err(io::IntoInnerError::into_error)?
            .sync_all()?;
        fs::rename(&tmp, &self.path)?;
        // Persist the rename itself; some filesystems cannot sync a directory, which is harmless.
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            let _ = File::open(dir).and_then(|d| d.sync_all());
        }
        // The old file is unlinked and its buffered records are in the new one: discard them.
        if let Some(old) = self.file.take() {
            let _ = old.into_parts();
        }
        self.file = Some(BufWriter::new(open_append(&self.path)?));
        self.offset = size;
        self.compacted_size = size;
        self.last_flush = Some(Instant::now());
        Ok(())
    }

    /// Flushes and fsyncs, first rebuilding the file if a compaction lost it, since this is
    /// called for a leave or at shutdown: the last chance to persist the state.
    fn sync(&mut self) -> io::Result<()> {
        if self.file.is_none() {
            self.compact()?;
        }
        let file = self.file.as_mut().ok_or_else(not_open)?;
        file.flush()?;
        self.last_flush = Some(Instant::now());
        file.get_ref().sync_all()
    }

    /// Counts a failure (Go would log it) and turns the result into an option.
    fn count<T>(&self, result: io::Result<T>) -> Option<T> {
        if result.is_err() {
            self.counters.errors.fetch_add(1, Ordering::Relaxed);
        }
        result.ok()
    }
}

/// Elapsed time in milliseconds, the unit of every timer metric.
fn millis_since(started: Instant) -> f64 {
    started.elapsed().as_secs_f64() * 1000.0
}

fn not_open() -> io::Error {
    io::Error::other("snapshot file is not open")
}

fn with_path(what: &str, path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}

fn open_append(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).append(true).create(true);
    set_mode(&mut options);
    options.open(path)
}

fn create_truncated(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    set_mode(&mut options);
    options.open(path)
}

#[cfg(unix)]
fn set_mode(options: &mut OpenOptions) {
    use std::os::unix::fs::OpenOptionsExt;
    options.mode(0o644);
}

#[cfg(not(unix))]
fn set_mode(_: &mut OpenOptions) {}

/// Cuts the bytes after the last newline and returns the remaining length. Replay ignored them
/// (a write torn by a crash; Go's buffered writer flushes mid-line), and appending after them
/// would glue the next record onto the fragment and lose it.
fn cut_torn_tail(file: &File) -> io::Result<u64> {
    let len = file.metadata()?.len();
    let mut reader = file;
    let mut chunk = [0u8; 4096];
    let mut end = len;
    let keep = loop {
        if end == 0 {
            break 0;
        }
        let start = end.saturating_sub(chunk.len() as u64);
        let piece = &mut chunk[..(end - start) as usize];
        reader.seek(SeekFrom::Start(start))?;
        reader.read_exact(piece)?;
        if let Some(i) = piece.iter().rposition(|&b| b == b'\n') {
            break start + i as u64 + 1;
        }
        end = start;
    };
    if keep < len {
        file.set_len(keep)?;
    }
    Ok(keep)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};

    /// A fresh directory for one test, removed when the test ends.
    struct TempDir(PathBuf);

    impl std::ops::Deref for TempDir {
        type Target = Path;
        fn deref(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn temp_dir(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("serf-snapshot-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    /// Waits for room in the queue, for tests about the file rather than about dropping.
    fn send(w: &SnapshotWriter, r: Record) {
        w.tx.as_ref().unwrap().send(Msg::Record(r)).unwrap();
    }

    fn alive(name: &str, a: &str) -> Record {
        Record::Alive {
            name: name.to_owned(),
            addr: addr(a),
        }
    }

    #[test]
    fn missing_file_is_empty() {
        let dir = temp_dir("missing");
        assert_eq!(replay(&dir.join("nope"), false).unwrap(), Replay::default());
    }

    #[test]
    fn writer_appends_and_replays() {
        let dir = temp_dir("append");
        let path = dir.join("snap");
        let w = SnapshotWriter::open(&path, &Replay::default()).unwrap();
        w.record(Record::EventClock(42));
        w.record(Record::QueryClock(50));
        w.record(alive("foo", "127.0.0.1:5000"));
        w.record(Record::Clock(100));
        w.record(Record::NotAlive {
            name: "foo".to_owned(),
        });
        w.record(alive("foo", "127.0.0.1:5000"));
        w.record(alive("bar baz", "[::1]:7946"));
        w.close().unwrap();

        let r = replay(&path, false).unwrap();
        assert_eq!(
            r.alive,
            vec![
                ("bar baz".to_owned(), addr("[::1]:7946")),
                ("foo".to_owned(), addr("127.0.0.1:5000"))
            ]
        );
        assert_eq!(
            (r.last_clock, r.last_event_clock, r.last_query_clock),
            (100, 42, 50)
        );
        assert_eq!(r.ignored_lines, 0);

        // Reopening appends after what is there.
        let w = SnapshotWriter::open(&path, &r).unwrap();
        w.record(Record::NotAlive {
            name: "foo".to_owned(),
        });
        drop(w);
        let r = replay(&path, false).unwrap();
        assert_eq!(r.alive, vec![("bar baz".to_owned(), addr("[::1]:7946"))]);
        assert_eq!(r.last_clock, 100);
    }

    #[test]
    fn idle_buffer_is_flushed() {
        let dir = temp_dir("idle");
        let path = dir.join("snap");
        let w = SnapshotWriter::open(&path, &Replay::default()).unwrap();
        w.record(Record::Clock(1)); // first append flushes at once
        w.record(Record::Clock(2)); // buffered
        thread::sleep(FLUSH_INTERVAL * 2);
        assert_eq!(fs::read_to_string(&path).unwrap(), "clock: 1\nclock: 2\n");
        w.close().unwrap();
    }

    #[test]
    fn leave_is_durable_and_stops_recording() {
        for rejoin in [false, true] {
            let dir = temp_dir(&format!("leave-{rejoin}"));
            let path = dir.join("snap");
            let options = WriterOptions {
                rejoin_after_leave: rejoin,
                ..WriterOptions::default()
            };
            let w = SnapshotWriter::open_with(&path, &Replay::default(), options).unwrap();
            w.record(Record::EventClock(42));
            w.record(Record::QueryClock(50));
            w.record(alive("foo", "127.0.0.1:5000"));
            w.record(Record::Clock(100));
            assert!(w.leave());
            assert!(fs::read_to_string(&path).unwrap().ends_with("leave\n"));
            w.record(alive("late", "127.0.0.1:1"));
            w.record(Record::EventClock(60));
            w.record(Record::Clock(101));
            w.close().unwrap();
            assert!(fs::read_to_string(&path)
                .unwrap()
                .ends_with("leave\nclock: 101\n"));

            let r = replay(&path, rejoin).unwrap();
            if rejoin {
                assert_eq!(r.alive, vec![("foo".to_owned(), addr("127.0.0.1:5000"))]);
                assert_eq!(
                    (r.last_clock, r.last_event_clock, r.last_query_clock),
                    (101, 42, 50)
                );
            } else {
                assert!(r.alive.is_empty());
                assert_eq!(
                    (r.last_clock, r.last_event_clock, r.last_query_clock),
                    (101, 0, 0)
                );
            }
            assert_eq!(r.left, !rejoin);
        }
    }

    /// A writer at `path` that compacts once the file passes `min_compact_size` bytes.
    fn compacting_writer(path: &Path, min_compact_size: u64) -> SnapshotWriter {
        let options = WriterOptions {
            min_compact_size,
            ..WriterOptions::default()
        };
        SnapshotWriter::open_with(path, &Replay::default(), options).unwrap()
    }

    #[test]
    fn compaction_keeps_the_state() {
        let dir = temp_dir("compact");
        let path = dir.join("snap");
        let w = compacting_writer(&path, 1024);
        let mut expected = BTreeMap::new();
        for i in 0..2000u64 {
            let name = format!("node {}", i % 7);
            if i % 3 == 0 {
                send(&w, Record::NotAlive { name: name.clone() });
                expected.remove(&name);
            } else {
                let a = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, (i % 250) as u8)), 7946);
                send(
                    &w,
                    Record::Alive {
                        name: name.clone(),
                        addr: a,
                    },
                );
                expected.insert(name, a);
            }
            send(&w, Record::EventClock(i));
            send(&w, Record::QueryClock(i + 1));
            send(&w, Record::Clock(i + 2));
        }
        w.close().unwrap();

        // Threshold: max(2 × 128 × 7 alive, 1024) bytes, plus the line that crossed it.
        let size = fs::metadata(&path).unwrap().len();
        assert!(
            size <= 2 * 128 * 7 + 64,
            "file was not compacted: {size} bytes"
        );
        assert!(!dir.join("snap.compact").exists());
        let r = replay(&path, false).unwrap();
        assert_eq!(r.alive, expected.into_iter().collect::<Vec<_>>());
        assert_eq!(
            (r.last_clock, r.last_event_clock, r.last_query_clock),
            (2001, 1999, 2000)
        );
        assert_eq!(r.ignored_lines, 0);
    }

    #[test]
    fn compacted_file_has_go_layout() {
        let dir = temp_dir("layout");
        let path = dir.join("snap");
        let w = compacting_writer(&path, 50);
        w.record(alive("b", "[::1]:2"));
        w.record(alive("a", "1.1.1.1:1"));
        w.record(Record::EventClock(3));
        // Two alive members put the threshold at 512 bytes.
        for i in 1..=60 {
            send(&w, Record::Clock(i));
        }
        w.close().unwrap();
        let text = fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        // Alive lines, then the three clocks, then what was appended since.
        assert_eq!(lines[..2], ["alive: a 1.1.1.1:1", "alive: b [::1]:2"]);
        let k: u64 = lines[2].strip_prefix("clock: ").unwrap().parse().unwrap();
        assert_eq!(lines[3..5], ["event-clock: 3", "query-clock: 0"]);
        let rest: Vec<String> = (k + 1..=60).map(|i| format!("clock: {i}")).collect();
        assert_eq!(lines[5..], rest);
        assert!(text.len() < 512 + 64);
    }

    #[test]
    fn failed_compaction_keeps_appending_and_waits_to_retry() {
        let dir = temp_dir("recover");
        let path = dir.join("snap");
        // A directory where the compacted file should go makes compaction fail.
        fs::create_dir(dir.join("snap.compact")).unwrap();
        let w = compacting_writer(&path, 40);
        for i in 1..=10 {
            w.record(Record::EventClock(i));
        }
        assert!(w.leave());
        // The third line crossed 40 bytes; the failed compaction is not retried at once.
        assert_eq!(w.errors(), 1);
        fs::remove_dir(dir.join("snap.compact")).unwrap();
        w.record(Record::Clock(5));
        w.close().unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("event-clock: 1\n")
                && text.ends_with("event-clock: 10\nleave\nclock: 5\n")
        );
    }

    /// A snapshot path that is a link to /dev/full: every flush fails until a compaction
    /// replaces the link with a regular file.
    #[cfg(target_os = "linux")]
    #[test]
    fn failed_append_is_recovered_by_compaction() {
        let dir = temp_dir("full");
        let path = dir.join("snap");
        std::os::unix::fs::symlink("/dev/full", &path).unwrap();
        let w = SnapshotWriter::open(&path, &Replay::default()).unwrap();
        w.record(alive("a", "1.1.1.1:1"));
        w.record(Record::QueryClock(7));
        w.close().unwrap();
        assert!(fs::symlink_metadata(&path).unwrap().is_file());
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "alive: a 1.1.1.1:1\nclock: 0\nevent-clock: 0\nquery-clock: 0\nquery-clock: 7\n"
        );
    }

    #[test]
    fn torn_tail_is_cut_before_appending() {
        let dir = temp_dir("torn");
        let path = dir.join("snap");
        fs::write(&path, "clock: 3\nalive: x 10.0.0.1:79").unwrap();
        let r = replay(&path, false).unwrap();
        assert_eq!((r.last_clock, r.ignored_lines), (3, 1));
        let w = SnapshotWriter::open(&path, &r).unwrap();
        w.record(Record::EventClock(1));
        w.close().unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "clock: 3\nevent-clock: 1\n"
        );
    }

    #[test]
    fn full_queue_drops_instead_of_blocking() {
        // A writer whose thread never reads: the queue fills and stays full.
        let (tx, rx) = bounded(CHANNEL_CAPACITY);
        let w = SnapshotWriter {
            tx: Some(tx),
            handle: None,
            counters: Arc::default(),
        };
        let start = Instant::now();
        for i in 0..CHANNEL_CAPACITY as u64 + 10 {
            w.record(Record::Clock(i));
        }
        assert!(start.elapsed() < Duration::from_secs(1));
        assert_eq!(w.dropped(), 10);
        assert_eq!(rx.len(), CHANNEL_CAPACITY);
        // A leave cannot get in either, and gives up after its bound.
        let start = Instant::now();
        assert!(!w.leave());
        assert!(start.elapsed() < LEAVE_TIMEOUT * 2);
        w.close().unwrap();
    }

    #[test]
    fn close_joins_the_thread_after_draining() {
        let dir = temp_dir("close");
        let path = dir.join("snap");
        let w = SnapshotWriter::open(&path, &Replay::default()).unwrap();
        for i in 1..=1000 {
            w.record(Record::QueryClock(i));
        }
        let dropped = w.dropped();
        let counters = Arc::clone(&w.counters);
        w.close().unwrap();
        // The thread held the other reference to the counters; it is gone once joined.
        assert_eq!(Arc::strong_count(&counters), 1);
        assert_eq!(dropped, 0);
        assert_eq!(replay(&path, false).unwrap().last_query_clock, 1000);
    }
}
