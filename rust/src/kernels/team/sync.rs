//! What the team's threads share, and the protocol that makes sharing it
//! safe: W1ᵀ written by several threads, each in its own rows; the partial
//! sums, each part on cache lines of its own; and the barrier they meet at.
//!
//! The barrier is a generation counter: a waiting thread spins a bounded
//! number of times, then yields its core, so that a neighbour on one of the
//! cores slows the team down by the share it takes rather than stalling it
//! while a spinning thread holds the core the late one needs.

use std::cell::UnsafeCell;
use std::marker::PhantomData;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::kernels::layout::{line, CACHE_LINE};
use crate::real::Real;


/// Spins at the barrier before a waiting thread starts yielding its core: a
/// few microseconds (a pause is 10-140 cycles, by CPU), the spread between the
/// threads' arrivals on idle cores. Measured under a load of 4-5 on 2 cores,
/// 200 000 spins made batch 1 six times slower than 200 did; on an idle
/// machine a yield with nothing else to run returns at once, so yielding early
/// costs little there.
pub const SPINS_BEFORE_YIELD: u32 = 200;

/// W1ᵀ (rows, cols) row-major, written by several threads at once, each in
/// its own rows.
pub(super) struct SharedMatrix<'a, T> {
    data: *mut T,
    rows: usize,
    cols: usize,
    _borrow: PhantomData<&'a mut [T]>,
}

// SAFETY: the threads touch disjoint rows (see `rows_mut`).
unsafe impl<T: Send> Sync for SharedMatrix<'_, T> {}
unsafe impl<T: Send> Send for SharedMatrix<'_, T> {}

impl<'a, T> SharedMatrix<'a, T> {
    pub(super) fn new(values: &'a mut [T], rows: usize, cols: usize) -> Self {
        assert_eq!(values.len(), rows * cols, "a matrix of {rows} x {cols}");
        SharedMatrix { data: values.as_mut_ptr(), rows, cols, _borrow: PhantomData }
    }

    /// The rows `rows`.
    ///
    /// # Safety
    /// No other thread may write these rows while the slice lives.
    #[inline(always)]
    pub(super) unsafe fn rows(&self, rows: &Range<usize>) -> &[T] {
        assert!(rows.start <= rows.end && rows.end <= self.rows);
        unsafe { std::slice::from_raw_parts(self.data.add(rows.start * self.cols), rows.len() * self.cols) }
    }

    /// The rows `rows`, to write.
    ///
    /// # Safety
    /// No other thread may touch these rows while the slice lives.
    #[allow(clippy::mut_from_ref)] // the team's protocol, not the borrow checker, makes it exclusive
    #[inline(always)]
    pub(super) unsafe fn rows_mut(&self, rows: &Range<usize>) -> &mut [T] {
        assert!(rows.start <= rows.end && rows.end <= self.rows);
        unsafe { std::slice::from_raw_parts_mut(self.data.add(rows.start * self.cols), rows.len() * self.cols) }
    }
}

/// The partial sums of one mini-batch's first layer: part p's (capacity, n)
/// row-major, each part on cache lines of its own, so that threads writing
/// different parts never share a line.
pub(super) struct Partials<T> {
    cells: Box<[UnsafeCell<T>]>,
    start: usize,
    stride: usize,
}

// SAFETY: the threads write disjoint parts, and read a buffer only between the
// barrier after its writes and the barrier before its next ones (see the module).
unsafe impl<T: Send> Sync for Partials<T> {}

impl<T: Real> Partials<T> {
    pub(super) fn new(parts: usize, len: usize) -> Self {
        let line = line::<T>();
        let stride = len.div_ceil(line) * line;
        let cells: Box<[UnsafeCell<T>]> = (0..parts * stride + line).map(|_| UnsafeCell::new(T::zero())).collect();
        let base = cells.as_ptr() as usize;
        let start = (0..line).find(|s| (base + s * std::mem::size_of::<T>()).is_multiple_of(CACHE_LINE)).unwrap_or(0);
        Partials { cells, start, stride }
    }

    fn range(&self, part: usize, len: usize) -> Range<usize> {
        assert!(len <= self.stride);
        let from = self.start + part * self.stride;
        from..from + len
    }

    /// # Safety
    /// No other thread may read or write this part until the next barrier.
    #[allow(clippy::mut_from_ref)] // the team's protocol, not the borrow checker, makes it exclusive
    pub(super) unsafe fn part_mut(&self, part: usize, len: usize) -> &mut [T] {
        let cells = &self.cells[self.range(part, len)];
        unsafe { std::slice::from_raw_parts_mut(cells.as_ptr() as *mut T, cells.len()) }
    }

    /// # Safety
    /// No thread may write this part while the slice lives.
    pub(super) unsafe fn part(&self, part: usize, len: usize) -> &[T] {
        let cells = &self.cells[self.range(part, len)];
        unsafe { std::slice::from_raw_parts(cells.as_ptr() as *const T, cells.len()) }
    }
}

/// A mini-batch's activations or deltas of one layer, (capacity, n)
/// row-major: each thread writes the rows of its own samples, and between two
/// barriers every thread reads them all.
pub(super) struct SharedRows<T> {
    cells: Box<[UnsafeCell<T>]>,
    width: usize,
}

// SAFETY: the threads write disjoint rows and read their own; they read the
// others' only after the barrier that follows the writes and before the one
// that precedes the next.
unsafe impl<T: Send + Sync> Sync for SharedRows<T> {}

impl<T: Real> SharedRows<T> {
    pub(super) fn new(rows: usize, width: usize) -> Self {
        SharedRows { cells: (0..rows * width).map(|_| UnsafeCell::new(T::zero())).collect(), width }
    }

    /// The rows `rows`, to write.
    ///
    /// # Safety
    /// No other thread may touch these rows while the slice lives.
    #[allow(clippy::mut_from_ref)] // the team's protocol, not the borrow checker, makes it exclusive
    pub(super) unsafe fn rows_mut(&self, rows: Range<usize>) -> &mut [T] {
        let cells = &self.cells[rows.start * self.width..rows.end * self.width];
        unsafe { std::slice::from_raw_parts_mut(cells.as_ptr() as *mut T, cells.len()) }
    }

    /// The rows `rows`.
    ///
    /// # Safety
    /// No thread may write these rows while the slice lives.
    pub(super) unsafe fn rows_in(&self, rows: Range<usize>) -> &[T] {
        let cells = &self.cells[rows.start * self.width..rows.end * self.width];
        unsafe { std::slice::from_raw_parts(cells.as_ptr() as *const T, cells.len()) }
    }

    /// The first `rows` rows.
    ///
    /// # Safety
    /// No thread may write these rows while the slice lives.
    pub(super) unsafe fn rows(&self, rows: usize) -> &[T] {
        let cells = &self.cells[..rows * self.width];
        unsafe { std::slice::from_raw_parts(cells.as_ptr() as *const T, cells.len()) }
    }
}

/// The next task of a phase, on a cache line of its own: each thread takes
/// one at a time until they run out; one thread resets it between two
/// barriers that no other thread takes a task between. Relaxed is enough:
/// the barrier's release and acquire make the reset seen before the next take.
#[derive(Default)]
#[repr(align(64))]
pub(super) struct TaskCounter(AtomicUsize);

impl TaskCounter {
    pub(super) fn take(&self) -> usize {
        self.0.fetch_add(1, Ordering::Relaxed)
    }

    pub(super) fn reset(&self) {
        self.0.store(0, Ordering::Relaxed);
    }
}

/// A reusable barrier for a fixed team: the last to arrive resets the count and
/// advances the generation the others wait on. If a thread panics (its `Drop`
/// guard marks the barrier broken) the others panic at the barrier instead of
/// waiting for it forever.
pub(super) struct Barrier {
    threads: usize,
    arrived: AtomicUsize,
    generation: AtomicUsize,
    broken: AtomicBool,
}

impl Barrier {
    pub(super) fn new(threads: usize) -> Self {
        Barrier { threads, arrived: AtomicUsize::new(0), generation: AtomicUsize::new(0), broken: AtomicBool::new(false) }
    }

    /// The threads it waits for: the team's.
    pub(super) fn threads(&self) -> usize {
        self.threads
    }

    /// How many times the team has met here.
    pub(super) fn rounds(&self) -> usize {
        self.generation.load(Ordering::Acquire)
    }

    pub(super) fn wait(&self) {
        let generation = self.generation.load(Ordering::Acquire);
        if self.arrived.fetch_add(1, Ordering::AcqRel) + 1 == self.threads {
            self.arrived.store(0, Ordering::Relaxed);
            self.generation.fetch_add(1, Ordering::Release);
            return;
        }
        let mut spins = 0u32;
        while self.generation.load(Ordering::Acquire) == generation {
            if self.broken.load(Ordering::Relaxed) {
                panic!("another thread of the team panicked");
            }
            if spins < SPINS_BEFORE_YIELD {
                spins += 1;
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    }
}

/// Marks the barrier broken if its thread unwinds.
pub(super) struct BreakOnPanic<'a>(pub(super) &'a Barrier);

impl Drop for BreakOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.broken.store(true, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_sums_sit_on_lines_of_their_own() {
        let partials = Partials::<f64>::new(3, 30);
        let address = |part| unsafe { partials.part(part, 30) }.as_ptr() as usize;
        for part in 0..3 {
            assert_eq!(address(part) % CACHE_LINE, 0);
        }
        assert!(address(1) - address(0) >= 30 * 8);
    }

    #[test]
    fn the_barrier_holds_every_thread_until_the_last_arrives() {
        let barrier = Barrier::new(3);
        let counter = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..3 {
                s.spawn(|| {
                    for round in 0..200 {
                        counter.fetch_add(1, Ordering::SeqCst);
                        barrier.wait();
                        // nobody starts round + 1 before all have counted round
                        assert!(counter.load(Ordering::SeqCst) >= 3 * (round + 1));
                        barrier.wait();
                    }
                });
            }
        });
        assert_eq!(counter.load(Ordering::SeqCst), 600);
    }
}
