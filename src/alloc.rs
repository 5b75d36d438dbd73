//! Allocator tuning for the process.
//!
//! stage-model moves 1 MiB buffers between tokio's worker threads and its blocking threads (the
//! download writes them, the copy reads files into websocket frames). glibc gives each thread that
//! contends for the heap an arena of its own (up to 8 per core) and keeps freed memory in each, so
//! the peak RSS of a staging run was 75–99 MiB where the live data is under 40 MiB. Two arenas keep
//! it at 35–55 MiB with no measurable cost in throughput (`cargo bench --bench stage_copy`).
//!
//! The commands that only render are the other way round: their threads (the tree's read-ahead,
//! compiling the templates, parsing the catalog, rendering the models) allocate small objects all
//! the time, and with two arenas they waited on each other's arena lock (a 1000-model `root`:
//! about 1 400 context switches instead of 25, and one run in two 20–40 ms slower). They get an
//! arena per thread.

/// Limit glibc's malloc arenas; a no-op elsewhere. Call once, early in `main`.
pub fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a malloc parameter; it is called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, crate::consts::MALLOC_ARENAS);
    }
}

/// An arena per thread, for a command that only renders. Call before any other thread exists:
/// glibc reads the limit once, when a second thread first allocates.
pub fn arenas_for_rendering() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: as above; called while parsing the command line, before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, crate::consts::RENDER_MALLOC_ARENAS);
    }
}
