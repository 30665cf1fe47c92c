//! The process-wide worker pool that threaded GEMM calls share.
//!
//! A call ([`run`]) publishes a task of `shares` numbered pieces of work; the calling thread
//! and any pool workers that are free claim pieces from one atomic counter until none is left,
//! and the caller returns when every piece has finished. The caller always takes part, so a
//! task completes even if no worker ever picks it up: concurrent calls from several threads
//! cannot starve each other, and a call made from inside a piece (a nested call, on a worker or
//! on a caller) cannot deadlock; it runs its own pieces, helped by whichever workers are free.
//!
//! Workers are started lazily (as many as the largest `shares - 1` asked for so far, at most
//! [`MAX_WORKERS`]) and live for the rest of the process. An idle worker polls an atomic for
//! [`SPIN`] (so back-to-back calls, as in a network's successive layers, find it awake),
//! yielding its core between polls, then parks on a condition variable: it never busy-waits
//! for longer than that. A caller waiting for a worker's piece yields and parks the same way:
//! on a loaded machine the worker may be queued behind the caller on the caller's core.
//!
//! Why not a crate: measured on the project VM (2 vCPUs, load average 16-18 from other builds,
//! so no second core was free), a call of two empty pieces cost a median of 16-19 us through
//! rayon-core 1.13 (`install` + `join`, or `in_place_scope` + `spawn`, pools of 1 or 2
//! threads) and ~50 us through `std::thread::scope`, against 0.13 us here; two pieces of 6 us
//! each took 31 us through rayon, 77 us with a scoped spawn and 12.0 us here (11.7 us serial:
//! the caller ran both, as no worker could start). Rayon's caller blocks on a latch and each
//! injected job goes through its sleep/wake machinery: fine for millisecond jobs, too slow for
//! GEMMs of tens of microseconds. After a 200 us pause (worker parked), a call of two empty
//! pieces cost 0.1 us here and 14 us through rayon; a first version of this pool that
//! busy-waited for the worker instead of yielding cost ~65 us there, as the woken worker was
//! queued behind the spinning caller.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::Thread;
use std::time::{Duration, Instant};

/// The most workers the pool will start (a call asking for more threads still completes: its
/// extra pieces run on the threads there are).
pub(crate) const MAX_WORKERS: usize = 63;

/// How long an idle worker (or a caller waiting for the last piece) spins and yields before it
/// parks.
const SPIN: Duration = Duration::from_micros(50);

/// A published call: its body, and counters of pieces claimed and finished.
struct Task {
    /// Calls the caller's closure (behind `data`) on piece `i`.
    call: unsafe fn(*const (), usize),
    /// The caller's closure, on the caller's stack.
    data: *const (),
    shares: usize,
    /// The next piece to claim (may run past `shares`).
    next: AtomicUsize,
    /// Pieces finished.
    done: AtomicUsize,
    /// A piece panicked on a worker.
    panicked: AtomicBool,
    /// The calling thread, unparked when the last piece finishes.
    owner: Thread,
}

// SAFETY: `data` points to a `Sync` closure that outlives every use: it is dereferenced only
// to run a piece claimed below `shares`, and the caller does not return (nor unwind) before
// all `shares` pieces have finished. Everything else in a task is `Send + Sync`.
unsafe impl Send for Task {}
// SAFETY: as above.
unsafe impl Sync for Task {}

impl Task {
    /// Claims and runs pieces until none is left. Returns whether this thread finished the last
    /// piece of the task.
    fn help(&self) -> bool {
        let mut last = false;
        loop {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            if i >= self.shares {
                return last;
            }
            // SAFETY: `i < shares`, so the caller is still waiting for this piece and its
            // closure is alive (see `unsafe impl Send for Task`).
            let r = catch_unwind(AssertUnwindSafe(|| unsafe { (self.call)(self.data, i) }));
            if r.is_err() {
                self.panicked.store(true, Ordering::Relaxed);
            }
            // Release: the piece's writes happen before the caller sees it finished.
            last = self.done.fetch_add(1, Ordering::AcqRel) + 1 == self.shares;
        }
    }
}

/// Tasks with pieces possibly unclaimed, and the workers' bookkeeping.
struct Queue {
    tasks: Vec<Arc<Task>>,
    /// Workers parked on [`Pool::wake`].
    sleeping: usize,
    /// Workers started.
    started: usize,
}

struct Pool {
    queue: Mutex<Queue>,
    wake: Condvar,
    /// `queue.tasks.len()`, readable without the lock by spinning workers.
    open: AtomicUsize,
}

static POOL: Pool = Pool {
    queue: Mutex::new(Queue {
        tasks: Vec::new(),
        sleeping: 0,
        started: 0,
    }),
    wake: Condvar::new(),
    open: AtomicUsize::new(0),
};

impl Pool {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // No code panics while holding the lock, but never let poisoning stop the pool.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Removes `task` from the open tasks (if still there).
    fn close(&self, task: &Arc<Task>) {
        let mut q = self.lock();
        if let Some(p) = q.tasks.iter().position(|t| Arc::ptr_eq(t, task)) {
            q.tasks.swap_remove(p);
            self.open.store(q.tasks.len(), Ordering::Release);
        }
    }

    /// A worker's life: take an open task, help it, close it; spin, then park, when idle.
    fn work(&self) {
        loop {
            idle(|| self.open.load(Ordering::Acquire) != 0);
            let task = {
                let mut q = self.lock();
                loop {
                    if let Some(t) = q.tasks.last() {
                        break t.clone();
                    }
                    q.sleeping += 1;
                    q = self.wake.wait(q).unwrap_or_else(|e| e.into_inner());
                    q.sleeping -= 1;
                }
            };
            if task.help() {
                task.owner.unpark();
            }
            self.close(&task);
        }
    }

    /// Starts workers until there are `want` (or the system refuses one).
    fn grow(&self, q: &mut Queue, want: usize) {
        while q.started < want.min(MAX_WORKERS) {
            let spawned = std::thread::Builder::new()
                .name(format!("sinter-gemm-{}", q.started))
                .spawn(|| POOL.work());
            if spawned.is_err() {
                break;
            }
            q.started += 1;
        }
    }
}

/// Waits up to [`SPIN`] for `ready`: a few pause instructions, then yielding the core (so a
/// worker or caller queued behind this thread on a busy machine can run). Returns `ready()`.
fn idle(ready: impl Fn() -> bool) -> bool {
    let t0 = Instant::now();
    let mut polls = 0u32;
    while !ready() {
        if polls < 16 {
            for _ in 0..32 {
                std::hint::spin_loop();
            }
        } else {
            std::thread::yield_now();
        }
        polls += 1;
        if polls.is_multiple_of(8) && t0.elapsed() > SPIN {
            return ready();
        }
    }
    true
}

/// Runs `f(0)`, ..., `f(shares - 1)`, each exactly once, on the calling thread and on free pool
/// workers (at most `shares - 1` of them), and returns when all have finished. A panic in a
/// piece is re-raised here after every piece has finished.
pub(crate) fn run<F: Fn(usize) + Sync>(shares: usize, f: F) {
    if shares <= 1 {
        if shares == 1 {
            f(0);
        }
        return;
    }
    /// # Safety
    /// `data` must point to a live `F`.
    unsafe fn call<F: Fn(usize)>(data: *const (), i: usize) {
        // SAFETY: forwarded.
        unsafe { (*data.cast::<F>())(i) }
    }
    let task = Arc::new(Task {
        call: call::<F>,
        data: (&raw const f).cast(),
        shares,
        next: AtomicUsize::new(0),
        done: AtomicUsize::new(0),
        panicked: AtomicBool::new(false),
        owner: std::thread::current(),
    });
    let sleeping = {
        let mut q = POOL.lock();
        POOL.grow(&mut q, shares - 1);
        q.tasks.push(task.clone());
        POOL.open.store(q.tasks.len(), Ordering::Release);
        q.sleeping.min(shares - 1)
    };
    // Notified after unlocking, so a woken worker does not block on the lock at once.
    match sleeping {
        0 => {}
        1 => POOL.wake.notify_one(),
        _ => POOL.wake.notify_all(),
    }
    task.help();
    POOL.close(&task);
    // Wait for pieces still running on workers: spin briefly, then park (the worker finishing
    // the last piece unparks this thread; a stray unpark only makes this loop check again).
    if !idle(|| task.done.load(Ordering::Acquire) == shares) {
        while task.done.load(Ordering::Acquire) < shares {
            std::thread::park();
        }
    }
    if task.panicked.load(Ordering::Relaxed) {
        resume_unwind(Box::new("a piece of a pooled task panicked on a worker"));
    }
}

/// Workers started so far (for tests).
#[cfg(test)]
pub(crate) fn workers() -> usize {
    POOL.lock().started
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_piece_once() {
        for shares in [0, 1, 2, 3, 7, 64] {
            let hits: Vec<AtomicUsize> = (0..shares).map(|_| AtomicUsize::new(0)).collect();
            run(shares, |i| {
                hits[i].fetch_add(1, Ordering::Relaxed);
            });
            assert!(
                hits.iter().all(|h| h.load(Ordering::Relaxed) == 1),
                "{shares}"
            );
        }
        assert!(workers() >= 1);
    }

    #[test]
    fn nested_and_concurrent_calls_complete() {
        let total = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..50 {
                        run(3, |_| {
                            run(2, |_| {
                                run(2, |_| {
                                    total.fetch_add(1, Ordering::Relaxed);
                                })
                            })
                        });
                    }
                });
            }
        });
        assert_eq!(total.load(Ordering::Relaxed), 4 * 50 * 3 * 2 * 2);
    }

    #[test]
    fn a_panicking_piece_panics_the_caller_after_all_pieces() {
        let done = AtomicUsize::new(0);
        let r = catch_unwind(AssertUnwindSafe(|| {
            run(4, |i| {
                if i == 1 {
                    panic!("piece 1");
                }
                done.fetch_add(1, Ordering::Relaxed);
            })
        }));
        assert!(r.is_err());
        assert_eq!(done.load(Ordering::Relaxed), 3);
    }
}
