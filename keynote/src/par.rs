//! Independent jobs shared between the calling thread and helper threads, handed out one at a
//! time, so that the calling thread never sits idle while work is left.
//!
//! Why not fixed shares (half the work to each of two threads): on a virtual machine a new
//! thread can wait a long time for its CPU. On this project's 2-core build machine the first
//! thread a process starts took 0.1 to 1.9 ms to run (the idle second CPU has to be woken),
//! against 21 µs once that CPU is awake; a caller that waits for a late helper's fixed half
//! made a 3,331-clause policy twice as slow on two cores as on one (keynote/README.md,
//! session 5). Here each thread takes the next job from a shared counter: a late helper finds
//! less (or nothing) left, and the caller waits at the end only for the job a helper is in
//! the middle of, or for a helper that starts late to see there is nothing left to take.
//!
//! Results come back in job order, so callers get exactly the one-thread answer. The jobs of
//! a helper that panicked (which no job may do) are run again on the calling thread, so the
//! outcome is the one-thread one there too.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Run `job` on every item, on the calling thread and up to `threads - 1` helpers (never more
/// helpers than items after the first); results in item order. `threads` of 0 or 1, or a
/// single item, run everything here without starting a thread.
pub fn share<I: Sync, O: Send>(
    items: &[I],
    threads: usize,
    job: impl Fn(&I) -> O + Sync,
) -> Vec<O> {
    let helpers = threads.saturating_sub(1).min(items.len().saturating_sub(1));
    if helpers == 0 {
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
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..helpers).map(|_| scope.spawn(work)).collect();
        let mut parts = vec![work()];
        parts.extend(handles.into_iter().filter_map(|h| h.join().ok()));
        for (i, out) in parts.into_iter().flatten() {
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
    let pieces: Vec<&[I]> = items.chunks(piece.max(1)).collect();
    share(&pieces, threads, |part| {
        part.iter().map(&job).collect::<Vec<_>>()
    })
    .into_iter()
    .flatten()
    .collect()
}

#[cfg(test)]
mod tests {
    use super::{share, share_in_pieces};
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
    fn every_job_runs_once() {
        let runs: Vec<AtomicUsize> = (0..500).map(|_| AtomicUsize::new(0)).collect();
        share(&runs, 4, |r| r.fetch_add(1, Ordering::Relaxed));
        assert!(runs.iter().all(|r| r.load(Ordering::Relaxed) == 1));
    }

    #[test]
    fn a_job_that_panicked_on_a_helper_runs_again_here() {
        use std::sync::atomic::AtomicBool;
        use std::time::{Duration, Instant};
        let main = std::thread::current().id();
        let helper_took_one = AtomicBool::new(false);
        let items: Vec<usize> = (0..64).collect();
        // Every job panics off the calling thread. The first job holds this thread until the
        // helper has taken one (or 10 s have passed), so the helper always gets a job.
        let got = std::panic::catch_unwind(|| {
            share(&items, 2, |i| {
                if std::thread::current().id() != main {
                    helper_took_one.store(true, Ordering::SeqCst);
                    panic!("helper");
                }
                if *i == 0 {
                    let start = Instant::now();
                    while !helper_took_one.load(Ordering::SeqCst)
                        && start.elapsed() < Duration::from_secs(10)
                    {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
                i + 1
            })
        });
        assert!(
            helper_took_one.load(Ordering::SeqCst),
            "the helper never ran a job"
        );
        let want: Vec<usize> = (1..=64).collect();
        assert_eq!(got.ok(), Some(want));
    }
}
