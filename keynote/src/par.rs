//! Independent jobs shared between helper threads, handed out one at a time from a shared
//! counter, while the calling thread waits for them.
//!
//! Why the caller waits instead of working beside its helpers: Linux puts the first thread a
//! process starts on the parent's own CPU, where it runs only once the parent blocks or an
//! idle CPU pulls it over. Traced on this project's 2-core build machine (60 runs each of a
//! 1,000-file `gt keynote verify`, keynote/README.md session 12), the one helper the caller
//! used to start was queued on the caller's CPU in 58 runs of 60, so the "parallel" reading
//! ran on one CPU until the scheduler noticed; of two threads started back to back, one was
//! queued on the caller's CPU and the other on the idle one in 58 of 60. With as many helpers
//! as cores and the caller blocked in `join`, one helper takes the caller's CPU at once and
//! the other the idle one: that query went from 8.35 to 6.57 ms (paired rounds). Session 5
//! had seen the symptom, a first helper taking 0.1-1.9 ms to run, and let the caller work so
//! that the work never waited for it.
//!
//! Why helpers wait at a gate until all of them are started: the first helper often preempts
//! the thread starting them as soon as it is queued on that thread's CPU, and the starting
//! thread then waits for the end of the helper's time slice (or for the idle CPU to pull it
//! over) before it starts the next helper, while the other CPU idles. Traced
//! (`sched_switch`, 30 runs of the same query): the second helper started 0.9-4.7 ms after the
//! first in 12 runs of 30; the run had mostly been done by one helper by then. A helper that
//! finds the gate shut blocks at once, which hands the CPU back; the gate opens when the last
//! helper is started. With it, no second start came later than 0.3 ms after the first (120
//! runs), and that query's 90th percentile fell from 7.69 to 6.69 ms, its median from 5.71 to
//! 5.53 (120 runs each, interleaved).
//!
//! Why not fixed shares (half the work to each of two threads): a helper can still start late,
//! or be held up. Each helper takes the next job from the counter, so a late one finds less (or
//! nothing) left, and the others are held up at the end only by the job a helper is in the
//! middle of.
//!
//! Results come back in job order, so callers get exactly the one-thread answer. The jobs of
//! a helper that panicked (which no job may do) are run again on the calling thread, so the
//! outcome is the one-thread one there too.

use std::sync::RwLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::{Scope, ScopedJoinHandle};

/// Starts threads that each wait until all of them are started (the module doc says why): for
/// any caller that starts several threads back to back and then waits for them.
#[derive(Default)]
pub struct Gate(RwLock<()>);

impl Gate {
    /// Start one scoped thread per job; none runs its job before the last one is started.
    pub fn spawn_all<'scope, 'env, T, F>(
        &'env self,
        scope: &'scope Scope<'scope, 'env>,
        jobs: impl IntoIterator<Item = F>,
    ) -> Vec<ScopedJoinHandle<'scope, T>>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        // A poisoned lock (a thread start that panicked while it was held) still opens.
        let shut = self.0.write();
        let handles = jobs
            .into_iter()
            .map(|job| {
                scope.spawn(move || {
                    drop(self.0.read());
                    job()
                })
            })
            .collect();
        drop(shut);
        handles
    }
}

/// Run `job` on every item, on up to `threads` helper threads (never more than items) while
/// the calling thread waits; results in item order. `threads` of 0 or 1, or a single item, run
/// everything here without starting a thread.
pub fn share<I: Sync, O: Send>(
    items: &[I],
    threads: usize,
    job: impl Fn(&I) -> O + Sync,
) -> Vec<O> {
    let helpers = threads.min(items.len());
    if helpers <= 1 {
        return items.iter().map(job).collect();
    }
    let next = AtomicUsize::new(0);
    let work = || {
        let mut done = Vec::new();
        loop {
            // Relaxed is enough: the counter only hands out distinct indices; the results
            // travel back through the threads' joins.
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(item) = items.get(i) else { break };
            done.push((i, job(item)));
        }
        done
    };
    let mut slots: Vec<Option<O>> = std::iter::repeat_with(|| None).take(items.len()).collect();
    let gate = Gate::default();
    std::thread::scope(|scope| {
        let handles = gate.spawn_all(scope, (0..helpers).map(|_| work));
        for (i, out) in handles.into_iter().filter_map(|h| h.join().ok()).flatten() {
            if let Some(slot) = slots.get_mut(i) {
                *slot = Some(out);
            }
        }
    });
    slots
        .into_iter()
        .zip(items)
        .map(|(slot, item)| slot.unwrap_or_else(|| job(item)))
        .collect()
}

/// [`share`] with the items handed out `piece` at a time (at least one), for jobs too short
/// to be worth a turn of the counter each; results in item order, one per item.
pub fn share_in_pieces<I: Sync, O: Send>(
    items: &[I],
    piece: usize,
    threads: usize,
    job: impl Fn(&I) -> O + Sync,
) -> Vec<O> {
    share_pieces(items, piece, threads, |part| {
        part.iter().map(&job).collect()
    })
}

/// [`share_in_pieces`] for jobs that take a whole piece at once (say, to read its files with
/// one system call): `job` gets up to `piece` items (at least one) and must return one result
/// per item, in order. A piece whose job returned another number of results is run again
/// item by item on the calling thread, so that results stay one per item, in item order.
pub fn share_pieces<I: Sync, O: Send>(
    items: &[I],
    piece: usize,
    threads: usize,
    job: impl Fn(&[I]) -> Vec<O> + Sync,
) -> Vec<O> {
    let pieces: Vec<&[I]> = items.chunks(piece.max(1)).collect();
    let parts = share(&pieces, threads, |part| job(part));
    // Sized once: collecting the flattened parts would grow the vector by doubling, copying
    // it each time (a 1,000-file query's results reached a fresh 2 MiB page that way).
    let mut all = Vec::with_capacity(items.len());
    for (part, items) in parts.into_iter().zip(pieces) {
        if part.len() == items.len() {
            all.extend(part);
        } else {
            all.extend(items.chunks(1).flat_map(&job));
        }
    }
    all
}

#[cfg(test)]
mod tests {
    use super::{share, share_in_pieces, share_pieces};
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn results_in_order_on_any_number_of_threads() {
        let items: Vec<u64> = (0..1000).collect();
        for threads in [0, 1, 2, 3, 8, 2000] {
            let got = share(&items, threads, |x| x * x);
            let want: Vec<u64> = items.iter().map(|x| x * x).collect();
            assert_eq!(got, want, "{threads} threads");
        }
        assert!(share(&[] as &[u8], 4, |x| *x).is_empty());
    }

    #[test]
    fn pieces_give_one_result_per_item_in_order() {
        let items: Vec<u64> = (0..1001).collect();
        let want: Vec<u64> = items.iter().map(|x| x + 7).collect();
        for piece in [0, 1, 8, 1000, 5000] {
            for threads in [1, 2, 3] {
                let got = share_in_pieces(&items, piece, threads, |x| x + 7);
                assert_eq!(got, want, "pieces of {piece} on {threads} threads");
            }
        }
        assert!(share_in_pieces(&[] as &[u8], 8, 4, |x| *x).is_empty());
    }

    #[test]
    fn whole_pieces_give_one_result_per_item_in_order() {
        let items: Vec<u64> = (0..1001).collect();
        let want: Vec<u64> = items.iter().map(|x| x * 3).collect();
        for piece in [0, 1, 16, 5000] {
            for threads in [1, 2, 3] {
                let got = share_pieces(&items, piece, threads, |part| {
                    assert!(!part.is_empty() && part.len() <= piece.max(1));
                    part.iter().map(|x| x * 3).collect()
                });
                assert_eq!(got, want, "pieces of {piece} on {threads} threads");
            }
        }
        // A job that drops a result for a piece of several: that piece is run again one item
        // at a time, and the results are still one per item.
        let got = share_pieces(&items, 16, 2, |part| {
            let mut out: Vec<u64> = part.iter().map(|x| x * 3).collect();
            if part.len() > 1 && part[0] == 32 {
                out.pop();
            }
            out
        });
        assert_eq!(got, want);
    }

    #[test]
    fn every_job_runs_once() {
        let runs: Vec<AtomicUsize> = (0..500).map(|_| AtomicUsize::new(0)).collect();
        share(&runs, 4, |r| r.fetch_add(1, Ordering::Relaxed));
        assert!(runs.iter().all(|r| r.load(Ordering::Relaxed) == 1));
    }

    #[test]
    fn the_calling_thread_runs_no_job_when_helpers_start() {
        // The scheduling argument of the module doc: the caller blocks, so the helper queued
        // on its CPU runs at once.
        let main = std::thread::current().id();
        let items: Vec<u32> = (0..200).collect();
        for threads in [2, 3, 8] {
            let ran_on = share(&items, threads, |_| std::thread::current().id());
            assert!(ran_on.iter().all(|id| *id != main), "{threads} threads");
        }
        // One thread (or one item) runs here, without starting any.
        assert_eq!(share(&items, 1, |_| std::thread::current().id())[0], main);
        assert_eq!(
            share(&items[..1], 4, |_| std::thread::current().id()),
            [main]
        );
    }

    #[test]
    fn a_job_that_panicked_on_a_helper_runs_again_here() {
        let main = std::thread::current().id();
        let items: Vec<usize> = (0..64).collect();
        // Every job panics off the calling thread: each helper dies on its first job, and
        // every job, taken or not, is run again here.
        let got = std::panic::catch_unwind(|| {
            share(&items, 2, |i| {
                assert!(std::thread::current().id() == main, "helper");
                i + 1
            })
        });
        let want: Vec<usize> = (1..=64).collect();
        assert_eq!(got.ok(), Some(want));
    }
}
