//! CPU-bound work split over a few threads (rendering models, reading the output tree).

use crate::consts;

/// `f` over `items` in chunks of at least `min_chunk`, on up to [`consts::WORK_THREADS`] threads
/// (fewer on fewer cores; on the calling thread alone when there is one chunk), as
/// [`run_jobs`]. The results in the order of the chunks; a panic in a worker is resumed here.
pub fn map_chunks<T: Sync, R: Send>(
    items: &[T],
    min_chunk: usize,
    f: impl Fn(&[T]) -> R + Sync,
) -> Vec<R> {
    let threads = cores().clamp(1, consts::WORK_THREADS);
    let chunk = items.len().div_ceil(threads).max(min_chunk).max(1);
    if items.len() <= chunk {
        return vec![f(items)];
    }
    let f = &f;
    let jobs = items
        .chunks(chunk)
        .map(|part| Box::new(move || f(part)) as Job<'_, R>);
    run_jobs(jobs.collect())
}

/// A piece of work for [`run_jobs`].
pub type Job<'a, R> = Box<dyn FnOnce() -> R + Send + 'a>;

/// A job until a thread takes it, then its result.
type Slot<'a, R> = std::sync::Mutex<(Option<Job<'a, R>>, Option<R>)>;

/// Every job, on up to [`consts::WORK_THREADS`] threads (the calling thread one of them; fewer on
/// fewer cores), each thread taking the next job no thread has taken: uneven jobs keep every core
/// busy to the end. The results in the order of the jobs; a panic in a job is resumed here.
pub fn run_jobs<R: Send>(jobs: Vec<Job<'_, R>>) -> Vec<R> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Mutex, PoisonError};
    let threads = cores().clamp(1, consts::WORK_THREADS).min(jobs.len());
    let slots: Vec<Slot<'_, R>> = jobs
        .into_iter()
        .map(|job| Mutex::new((Some(job), None)))
        .collect();
    let next = AtomicUsize::new(0);
    let work = || {
        while let Some(slot) = slots.get(next.fetch_add(1, Ordering::Relaxed)) {
            let job = slot.lock().unwrap_or_else(PoisonError::into_inner).0.take();
            let result = job.map(|job| job());
            slot.lock().unwrap_or_else(PoisonError::into_inner).1 = result;
        }
    };
    std::thread::scope(|s| {
        let helpers: Vec<_> = (1..threads).map(|_| s.spawn(work)).collect();
        work();
        for h in helpers {
            h.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
        }
    });
    // Every job ran (a panic would have been resumed above): each slot holds its result.
    let jobs = slots.len();
    let results: Vec<R> = slots
        .into_iter()
        .filter_map(|slot| slot.into_inner().unwrap_or_else(PoisonError::into_inner).1)
        .collect();
    debug_assert_eq!(results.len(), jobs, "a job without a result");
    results
}

/// The cores this process may use, asked once: std reads the cgroup's CPU quota files on every
/// call (three files), and a render asks for each chunked step.
fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, usize::from))
}

/// `a` on a thread of its own while `b` runs on the calling thread (one after the other when
/// there is one core); both results. A panic in `a` is resumed here.
pub fn join<A: Send, B>(a: impl FnOnce() -> A + Send, b: impl FnOnce() -> B) -> (A, B) {
    if cores() < 2 {
        let ra = a();
        return (ra, b());
    }
    std::thread::scope(|s| {
        let ha = s.spawn(a);
        let rb = b();
        let ra = ha.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
        (ra, rb)
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn results_come_in_the_order_of_the_items() {
        let items: Vec<u32> = (0..1000).collect();
        let sums = super::map_chunks(&items, 16, |part| part.to_vec());
        assert_eq!(sums.concat(), items);
        assert_eq!(super::map_chunks(&items[..3], 16, <[u32]>::len), vec![3]);
    }

    #[test]
    fn jobs_give_their_results_in_order_whichever_thread_ran_them() {
        let items: Vec<u64> = (0..200).collect();
        let jobs: Vec<super::Job<'_, u64>> = items
            .chunks(7)
            .map(|part| Box::new(move || part.iter().map(|i| i * i).sum::<u64>()) as _)
            .collect();
        let expected: Vec<u64> = items
            .chunks(7)
            .map(|part| part.iter().map(|i| i * i).sum())
            .collect();
        assert_eq!(super::run_jobs(jobs), expected);
        assert!(super::run_jobs::<u8>(Vec::new()).is_empty());
    }

    #[test]
    fn join_gives_both_results() {
        let items: Vec<u32> = (0..100).collect();
        let (a, b) = super::join(|| items.iter().sum::<u32>(), || items.len());
        assert_eq!((a, b), (4950, 100));
    }
}
