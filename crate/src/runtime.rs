//! Process-wide settings that training depends on for its speed, and the thread pools that
//! checks of thread-count independence run on.

use std::sync::Once;

/// Keep freed memory in the process instead of handing it back to the kernel.
///
/// A CNN training step allocates and frees about 200 MB of activation and gradient buffers.
/// glibc serves blocks that large with fresh `mmap`s and unmaps them on free, so every step
/// page-faulted all of it in again: measured on the 2-core machine, a step took 190 ms with
/// glibc's defaults and 131 ms with freed memory kept (`crate/examples/profile_conv.rs`).
pub fn keep_freed_memory() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: mallopt only changes allocator tuning parameters; it is safe to call at any
        // time, and a rejected value leaves the default in place.
        unsafe {
            // The largest threshold glibc accepts on 64-bit (32 MiB): blocks below it come from
            // the heap, which is reused instead of unmapped.
            libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
            libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
            libc::mallopt(libc::M_TOP_PAD, 256 << 20);
        }
    });
}

/// Make polars print whole tables (every row and column) unless the user chose otherwise
/// through its `POLARS_FMT_*` variables. Call it early: the command-line tool does at start,
/// a notebook in its first cell after the `:dep` line (evcxr compiles cells as Rust 2024, where
/// setting a variable is `unsafe`; this crate is 2021).
pub fn show_whole_tables() {
    for var in [
        "POLARS_FMT_MAX_ROWS",
        "POLARS_FMT_MAX_COLS",
        "POLARS_TABLE_WIDTH",
    ] {
        if std::env::var_os(var).is_none() {
            std::env::set_var(var, "-1");
        }
    }
}

/// The variable that lists what the tests must find on this machine, e.g.
/// `DIGITS_TESTS_REQUIRE=data,font` (what `.ci/run` sets).
pub const TESTS_REQUIRE_ENV: &str = "DIGITS_TESTS_REQUIRE";

/// A test that cannot run here (no data mirror, no font) calls this instead of
/// running: it skips with `why` printed, unless [`TESTS_REQUIRE_ENV`] names `what`, where a
/// skip would hide a broken set-up, and it fails with `why` instead.
pub fn skip_unless_required(what: &str, why: &str) {
    let required = std::env::var(TESTS_REQUIRE_ENV).unwrap_or_default();
    if required.split(',').any(|w| w.trim() == what) {
        panic!("{TESTS_REQUIRE_ENV} requires `{what}` here: {why}");
    }
    println!("skipping: {why}");
}

/// Run `f` on one of the threads of rayon's global pool while this thread waits, and return
/// what it returns (at once, where this thread is one of the pool's).
///
/// Why: a parallel loop started from outside the pool hands all its work to the pool and
/// sleeps until the pool wakes it, a round trip through the kernel per loop; started on one
/// of the pool's threads, that thread does its share and only the others are handed work. A
/// training step starts dozens of loops. The numbers are the same either way: the pool and
/// its thread count are the same. What runs there must not wait for a thread outside the
/// pool that itself waits for the pool: on a pool of one thread that wait never ends (work to
/// do beside it goes to the pool as a task, as [`crate::train::beside`] does).
pub fn on_pool<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    // `rayon::scope` runs its closure on one of the global pool's threads.
    rayon::scope(|_| f())
}

/// Run `f` on a rayon pool of `threads` threads: how the checks that numbers do not depend on
/// the thread count run the same work on several.
pub fn with_threads<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("a thread pool")
        .install(f)
}

/// The most memory this process has held resident at once, in bytes: the figure to compare
/// with another program's peak (`/usr/bin/time -v` calls it the maximum resident set size).
/// `None` where the system does not report it in a known unit (Linux reports kilobytes).
pub fn peak_resident_bytes() -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: getrusage fills the struct it is given and reads nothing else; a zeroed
        // rusage is a valid value of that plain C struct.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } == 0 {
            return u64::try_from(usage.ru_maxrss).ok().map(|kb| kb * 1024);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The work runs on one of the global pool's threads, not on the caller's; called from a
    /// pool's thread it runs there, so inside `with_threads` the pool stays the one chosen.
    #[test]
    fn work_runs_on_a_pool_thread() {
        // From a thread of its own, outside every pool.
        let (caller, (index, thread)) = std::thread::spawn(|| {
            let caller = std::thread::current().id();
            (
                caller,
                on_pool(|| (rayon::current_thread_index(), std::thread::current().id())),
            )
        })
        .join()
        .expect("no panic");
        assert!(index.is_some(), "on_pool ran outside the pool");
        assert_ne!(thread, caller);
        let (outer, inner) = with_threads(3, || {
            let outer = std::thread::current().id();
            (outer, on_pool(|| std::thread::current().id()))
        });
        assert_eq!(outer, inner);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_peak_counts_memory_written() {
        let len = 48 << 20;
        let buf = std::hint::black_box(vec![1u8; len]);
        let peak = peak_resident_bytes().expect("Linux reports its peak");
        assert!(peak >= len as u64, "peak {peak} bytes after writing {len}");
        drop(buf);
    }
}
