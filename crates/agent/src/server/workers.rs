//! The threads that carry out RPC requests. A request may block for seconds (a join dials
//! peers, a leave waits for its broadcast, a query streams answers until its deadline), so it
//! cannot run on the poll thread; but an idle connection, a stream or a monitor needs no thread
//! at all. Threads are started when every existing one is busy, up to [`MAX_WORKERS`], and end
//! after [`IDLE_EXIT`] without work, so the count follows the requests in flight, not the
//! connections open.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

/// Requests carried out at once; more wait for a thread.
pub const MAX_WORKERS: usize = 64;
/// How long a thread without work stays.
const IDLE_EXIT: Duration = Duration::from_secs(30);

pub type Job = Box<dyn FnOnce() + Send>;

/// Counts kept between the submitter and the threads.
#[derive(Default)]
struct Counts {
    /// Threads waiting for a job and not yet promised one.
    idle: AtomicUsize,
    /// Threads running.
    live: AtomicUsize,
}

pub struct Workers {
    jobs: Mutex<Option<Sender<Job>>>,
    queue: Receiver<Job>,
    counts: Arc<Counts>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Workers {
    pub fn new() -> Workers {
        let (jobs, queue) = crossbeam_channel::unbounded();
        Workers {
            jobs: Mutex::new(Some(jobs)),
            queue,
            counts: Arc::default(),
            threads: Mutex::new(Vec::new()),
        }
    }

    /// Runs `job` on an idle thread, or on a new one if none is idle and fewer than
    /// [`MAX_WORKERS`] run; otherwise it waits for the first thread to finish.
    pub fn submit(&self, job: Job) {
        let promised = self
            .counts
            .idle
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if !promised && self.counts.live.load(Ordering::SeqCst) < MAX_WORKERS {
            self.spawn();
        }
        if let Some(jobs) = &*self.jobs.lock().unwrap_or_else(|e| e.into_inner()) {
            let _ = jobs.send(job);
        }
    }

    fn spawn(&self) {
        let (queue, counts) = (self.queue.clone(), self.counts.clone());
        counts.live.fetch_add(1, Ordering::SeqCst);
        let spawned = std::thread::Builder::new()
            .name("serf-rpc-worker".into())
            .spawn(move || work(&queue, &counts));
        let mut threads = self.threads.lock().unwrap_or_else(|e| e.into_inner());
        threads.retain(|t| !t.is_finished());
        match spawned {
            Ok(t) => threads.push(t),
            Err(_) => {
                self.counts.live.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }

    /// Lets every thread finish its job and waits for them.
    pub fn shutdown(&self) {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner()).take();
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        for t in threads {
            let _ = t.join();
        }
    }
}

/// A thread's life: the job it was started for (or promised), then more while they come.
fn work(queue: &Receiver<Job>, counts: &Counts) {
    loop {
        match queue.recv_timeout(IDLE_EXIT) {
            Ok(job) => {
                job();
                counts.idle.fetch_add(1, Ordering::SeqCst);
            }
            Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => {
                // Leave only if no job was promised to the idle threads in the meantime.
                let left = counts
                    .idle
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok();
                if left {
                    break;
                }
            }
        }
    }
    counts.live.fetch_sub(1, Ordering::SeqCst);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Barrier;

    #[test]
    fn threads_follow_the_jobs_in_flight() {
        let workers = Workers::new();
        // Three jobs that wait for each other need three threads.
        let all = Arc::new(Barrier::new(4));
        for _ in 0..3 {
            let all = all.clone();
            workers.submit(Box::new(move || {
                all.wait();
            }));
        }
        all.wait();
        assert_eq!(workers.counts.live.load(Ordering::SeqCst), 3);
        // Once they are done, later jobs one at a time reuse the idle threads.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while workers.counts.idle.load(Ordering::SeqCst) < 3 {
            assert!(std::time::Instant::now() < deadline, "threads never idle");
            std::thread::sleep(Duration::from_millis(5));
        }
        for _ in 0..10 {
            let (tx, rx) = crossbeam_channel::bounded(1);
            workers.submit(Box::new(move || tx.send(()).unwrap()));
            rx.recv_timeout(Duration::from_secs(5))
                .expect("the job ran");
        }
        assert_eq!(workers.counts.live.load(Ordering::SeqCst), 3);
        workers.shutdown();
        assert_eq!(workers.counts.live.load(Ordering::SeqCst), 0);
    }
}
