//! Plugin criteria evaluated ahead of the writer, on threads of their own.
//!
//! A write that will evaluate plugin criteria (`activity.record`,
//! `prospect.update`, `prospect.advance`, `prospect.close` won) first has
//! them evaluated here, on a read snapshot with the write's effect applied
//! in memory (`stagecoach_core::engine::ahead`); the plugin host keeps the
//! answers, and the writer reuses them when its input is the same. So a
//! slow plugin delays only the writes of prospects whose stages use it.
//!
//! The threads run at the lowest CPU priority (nice 19): plugin work uses
//! the CPU the writer, the socket and the other requests leave idle, and
//! there are as many of them as cores.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

type Job = Box<dyn FnOnce() + Send>;

/// Puts the calling thread in the idle scheduling class (Linux
/// `SCHED_IDLE`): it runs only when no other thread wants the CPU and is
/// preempted at once when one does, which nice 19 alone is not. Falls back
/// to nice 19.
fn idle_priority() {
    #[cfg(target_os = "linux")]
    #[allow(unsafe_code)]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: `param` is a valid `sched_param` for the duration of the
        // call; pid 0 is the calling thread; SCHED_IDLE takes priority 0.
        if unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) } == 0 {
            return;
        }
    }
    // Per thread on Linux: only this thread is reniced.
    let tid = rustix::thread::gettid();
    if let Err(e) = rustix::process::setpriority_process(Some(tid), 19) {
        tracing::debug!(error = %e, "cannot lower the plugin threads' priority");
    }
}

/// The pool.
pub struct AheadPool {
    jobs: mpsc::Sender<Job>,
}

impl AheadPool {
    /// A pool of `threads` low-priority threads.
    pub fn new(threads: usize) -> std::io::Result<AheadPool> {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("stagecoach-ahead-{i}"))
                .spawn(move || {
                    idle_priority();
                    loop {
                        let job = match rx.lock().expect("ahead jobs").recv() {
                            Ok(job) => job,
                            Err(_) => return,
                        };
                        job();
                    }
                })?;
        }
        Ok(AheadPool { jobs: tx })
    }

    /// Runs `f` on the pool; resolves to its result (`None` if the pool is
    /// gone).
    pub async fn run<R: Send + 'static>(
        &self,
        f: impl FnOnce() -> R + Send + 'static,
    ) -> Option<R> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(f());
        });
        self.jobs.send(job).ok()?;
        rx.await.ok()
    }
}
