//! CPU-bound work split over a few threads (rendering models, reading the output tree).

use crate::consts;

/// `f` over `items` in chunks of at least `min_chunk`, on up to [`consts::WORK_THREADS`] threads
/// (fewer on fewer cores; on the calling thread alone when there is one chunk). The results in
/// the order of the chunks; a panic in a worker is resumed here.
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
    std::thread::scope(|s| {
        let workers: Vec<_> = items
            .chunks(chunk)
            .map(|part| s.spawn(move || f(part)))
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    })
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
    fn join_gives_both_results() {
        let items: Vec<u32> = (0..100).collect();
        let (a, b) = super::join(|| items.iter().sum::<u32>(), || items.len());
        assert_eq!((a, b), (4950, 100));
    }
}
