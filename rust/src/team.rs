//! The fused kernel on a team of threads that meet once per mini-batch.
//!
//! At [784, h, 10] nearly all the arithmetic is the first layer's, so only it
//! is split: thread t owns the rows J_t of W1 and b1 (hidden units, split as
//! evenly as the count allows), computes a1[:, J_t] for the whole mini-batch
//! into a buffer the team shares, and at the end updates its own rows with its
//! columns of delta1. Everything after the first layer (about 1/78 of the
//! arithmetic at [784, 30, 10]) every thread computes itself, on its own copy
//! of the deeper weights, with the single-thread kernel's code in its order:
//! the copies stay identical, no sum is ever split between threads, and the
//! result is the same bits as `fused`'s sweep kernel whatever the thread
//! count. delta1 too is computed whole by every thread, rather than only for
//! its own rows: which elements fall in a vector's tail would otherwise
//! depend on the split, and with them the rounding.
//!
//! The team is spawned once per epoch (`std::thread::scope`, the caller being
//! thread 0) and meets at one barrier per mini-batch, after a1 is written. The
//! shared a1 is double-buffered by the mini-batch's parity, which is what
//! makes one barrier enough: a thread that writes batch k+1's buffer has
//! passed batch k's barrier, which every other thread reached only after it
//! had read batch k-1's (the same buffer).
//!
//! The barrier is a generation counter: a waiting thread spins a bounded
//! number of times, then yields its core, so that a neighbour on one of the
//! cores slows the team down by the share it takes rather than stalling it
//! while a spinning thread holds the core the late one needs.

use std::cell::UnsafeCell;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use ndarray::ArrayView2;

use crate::data::Epoch;
use crate::fused::{after_first_layer, forward, pad_rows, padded, update, Batch, Fused, Kernels, Matrix, Rows};
use crate::real::Real;
use crate::simd::{Isa, Scalar, Vector};
#[cfg(target_arch = "x86_64")]
use crate::simd::{F32x16, F32x8, F64x4, F64x8};

/// Spins at the barrier before a waiting thread starts yielding its core: a
/// few microseconds (a pause is 10-140 cycles, by CPU), the spread between the
/// threads' arrivals on idle cores. Measured under a load of 4-5 on 2 cores,
/// 200 000 spins made batch 1 six times slower than 200 did; on an idle
/// machine a yield with nothing else to run returns at once, so yielding early
/// costs little there.
pub const SPINS_BEFORE_YIELD: u32 = 200;
/// What `choices()` reports as the barrier.
pub const BARRIER_KIND: &str = "generation counter: spin, then yield";

pub struct FusedParallel<T> {
    fused: Fused<T>,
    threads: usize,
}

impl<T: TeamKernels> FusedParallel<T> {
    /// `threads` is capped by the hidden units: each thread owns at least one row of W1.
    pub fn new(
        weights: &[ArrayView2<T>],
        biases: &[ArrayView2<T>],
        isa: Option<Isa>,
        threads: usize,
    ) -> Result<Self, String> {
        if threads == 0 {
            return Err("threads must be at least 1".into());
        }
        let fused = Fused::new(weights, biases, isa, None)?;
        let threads = threads.min(fused.sizes[1]);
        Ok(FusedParallel { fused, threads })
    }

    pub fn sizes(&self) -> &[usize] {
        &self.fused.sizes
    }

    pub fn isa(&self) -> Isa {
        self.fused.isa
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    pub fn weights(&self) -> Vec<ArrayView2<'_, T>> {
        self.fused.weights()
    }

    pub fn biases(&self) -> &[Vec<T>] {
        self.fused.biases()
    }

    /// How many rows of W1 (hidden units) each thread owns.
    pub fn rows_per_thread(&self) -> Vec<usize> {
        split_rows(self.fused.sizes[1], self.threads).iter().map(|r| r.len()).collect()
    }

    pub fn train_epoch(&mut self, data: &Epoch<T>, batch_size: usize, eta: f64) {
        let head = self.fused.align_first_layer(data.x_slice());
        let (isa, threads) = (self.fused.isa, self.threads);
        let sizes = self.fused.sizes.clone();
        let ranges = split_rows(sizes[1], threads);
        let capacity = padded(batch_size.min(data.order.len()).max(1));
        let shared = [Shared::new(capacity * sizes[1]), Shared::new(capacity * sizes[1])];
        let team = Team {
            sizes: &sizes, x: data.x_slice(), labels: data.labels, order: data.order, batch_size, eta, head, capacity,
            ranges: &ranges, shared: &shared, barrier: Barrier::new(threads),
        };

        let (weights, biases) = self.fused.layers_mut();
        let ([w1, deeper_w @ ..], [b1, deeper_b @ ..]) = (weights, biases) else {
            unreachable!("`Fused::new` checked that there is at least one layer")
        };
        let lengths: Vec<usize> = ranges.iter().map(|r| r.len()).collect();
        let mut w1_rows = split_mut(w1.values_mut(), lengths.iter().map(|n| n * sizes[0]));
        let mut b1_rows = split_mut(b1, lengths.iter().copied());
        // Thread 0 trains the trainer's own deeper layers, the others copies.
        let mut copies: Vec<_> = (1..threads).map(|_| (deeper_w.to_vec(), deeper_b.to_vec())).collect();
        let (w1_first, b1_first) = (w1_rows.remove(0), b1_rows.remove(0));
        std::thread::scope(|scope| {
            let team = &team;
            for (t, ((w1, b1), (w, b))) in w1_rows.into_iter().zip(b1_rows).zip(copies.iter_mut()).enumerate() {
                let own = Own { index: t + 1, w1, b1, weights: w, biases: b };
                std::thread::Builder::new()
                    .name(format!("nndl-team-{}", t + 1))
                    .spawn_scoped(scope, move || T::team_epoch(isa, team, own))
                    .expect("a thread of the team could not start");
            }
            let own = Own { index: 0, w1: w1_first, b1: b1_first, weights: deeper_w, biases: deeper_b };
            T::team_epoch(isa, team, own);
        });
    }
}

/// n rows in `threads` consecutive ranges whose lengths differ by at most one.
pub fn split_rows(n: usize, threads: usize) -> Vec<Range<usize>> {
    let (base, extra) = (n / threads, n % threads);
    let mut start = 0;
    (0..threads)
        .map(|t| {
            let len = base + usize::from(t < extra);
            start += len;
            start - len..start
        })
        .collect()
}

fn split_mut<T>(mut values: &mut [T], lengths: impl Iterator<Item = usize>) -> Vec<&mut [T]> {
    lengths
        .map(|n| {
            let (head, tail) = std::mem::take(&mut values).split_at_mut(n);
            values = tail;
            head
        })
        .collect()
}

/// What every thread of the team reads: the epoch, the row split, the two
/// shared a1 buffers and the barrier.
pub struct Team<'a, T> {
    sizes: &'a [usize],
    x: &'a [T],
    labels: &'a [i64],
    order: &'a [i64],
    batch_size: usize,
    eta: f64,
    head: usize,
    capacity: usize,
    ranges: &'a [Range<usize>],
    shared: &'a [Shared<T>; 2],
    barrier: Barrier,
}

/// What one thread trains: its rows of W1 and b1, and its copy of the deeper layers.
pub struct Own<'a, T> {
    index: usize,
    w1: &'a mut [T],
    b1: &'a mut [T],
    weights: &'a mut [Matrix<T>],
    biases: &'a mut [Vec<T>],
}

/// a1 of one mini-batch, thread t's columns J_t as one block of (capacity, |J_t|)
/// row-major from capacity * J_t.start, so that no two threads write one cache
/// line but at the blocks' edges.
struct Shared<T> {
    cells: Box<[UnsafeCell<T>]>,
}

// SAFETY: the threads write disjoint blocks, and read a buffer only between the
// barrier after its writes and the barrier before its next ones (see the module).
unsafe impl<T: Send> Sync for Shared<T> {}

impl<T: Real> Shared<T> {
    fn new(len: usize) -> Self {
        Shared { cells: (0..len).map(|_| UnsafeCell::new(T::zero())).collect() }
    }

    /// # Safety
    /// No other thread may read or write `range` until the next barrier.
    #[allow(clippy::mut_from_ref)] // the team's protocol, not the borrow checker, makes it exclusive
    unsafe fn block_mut(&self, range: Range<usize>) -> &mut [T] {
        let cells = &self.cells[range];
        unsafe { std::slice::from_raw_parts_mut(cells.as_ptr() as *mut T, cells.len()) }
    }

    /// # Safety
    /// No thread may write `range` while the slice lives.
    unsafe fn block(&self, range: Range<usize>) -> &[T] {
        let cells = &self.cells[range];
        unsafe { std::slice::from_raw_parts(cells.as_ptr() as *const T, cells.len()) }
    }
}

/// A reusable barrier for a fixed team: the last to arrive resets the count and
/// advances the generation the others wait on. If a thread panics (its `Drop`
/// guard marks the barrier broken) the others panic at the barrier instead of
/// waiting for it forever.
struct Barrier {
    threads: usize,
    arrived: AtomicUsize,
    generation: AtomicUsize,
    broken: AtomicBool,
}

impl Barrier {
    fn new(threads: usize) -> Self {
        Barrier { threads, arrived: AtomicUsize::new(0), generation: AtomicUsize::new(0), broken: AtomicBool::new(false) }
    }

    fn wait(&self) {
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
struct BreakOnPanic<'a>(&'a Barrier);

impl Drop for BreakOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.broken.store(true, Ordering::Relaxed);
        }
    }
}

/// One thread's epoch, instantiated for each instruction set with its vector type.
pub trait TeamKernels: Kernels {
    #[doc(hidden)]
    fn team_epoch(isa: Isa, team: &Team<Self>, own: Own<Self>);
}

macro_rules! team_kernels {
    ($t:ty, $v512:ty, $v256:ty, $avx512:ident, $avx2:ident) => {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx2,fma")]
        fn $avx512(team: &Team<$t>, own: Own<$t>) {
            // SAFETY: this function only runs where AVX-512 was detected.
            unsafe { team_epoch::<$t, $v512>(team, own) }
        }

        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        fn $avx2(team: &Team<$t>, own: Own<$t>) {
            // SAFETY: this function only runs where AVX2 and FMA were detected.
            unsafe { team_epoch::<$t, $v256>(team, own) }
        }

        impl TeamKernels for $t {
            fn team_epoch(isa: Isa, team: &Team<$t>, own: Own<$t>) {
                let _guard = BreakOnPanic(&team.barrier);
                match isa {
                    // SAFETY: `Fused::new` checked that the CPU supports `isa`.
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx512 => unsafe { $avx512(team, own) },
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx2Fma => unsafe { $avx2(team, own) },
                    // SAFETY: one scalar lane runs anywhere.
                    _ => unsafe { team_epoch::<$t, Scalar<$t>>(team, own) },
                }
            }
        }
    };
}

team_kernels!(f64, F64x8, F64x4, team_avx512_f64, team_avx2_f64);
team_kernels!(f32, F32x16, F32x8, team_avx512_f32, team_avx2_f32);

/// One thread's share of the epoch: the single-thread sweep kernel with the
/// first layer narrowed to its own rows.
///
/// # Safety
/// Only on a CPU with `V`'s features.
#[inline(always)]
unsafe fn team_epoch<T: Real, V: Vector<Elem = T>>(team: &Team<T>, own: Own<T>) {
    let Own { index, w1, b1, weights, biases } = own;
    let (sizes, cap, head) = (team.sizes, team.capacity, team.head);
    let (n0, hidden) = (sizes[0], sizes[1]);
    let mine = team.ranges[index].clone();
    let width = mine.len();
    // Private buffers, made once per epoch: (capacity, n) row-major per layer.
    let mut acts: Vec<Vec<T>> = sizes[1..].iter().map(|&n| vec![T::zero(); cap * n]).collect();
    let mut deltas = acts.clone();
    let mut own_delta = vec![T::zero(); cap * width];
    let mut rows = vec![0usize; cap];
    let ids: Vec<usize> = (0..cap).collect();
    let x = team.x;

    for (k, batch) in team.order.chunks(team.batch_size).enumerate() {
        let (m, p) = (batch.len(), pad_rows(batch, &mut rows));
        let first = Rows { data: x, width: n0, ids: &rows[..p] };
        let shared = &team.shared[k % 2];
        // SAFETY: this block is this thread's alone until the barrier.
        let block = unsafe { shared.block_mut(cap * mine.start..cap * mine.start + p * width) };
        unsafe { forward::<T, V>(w1, b1, first, block, head) };
        team.barrier.wait();

        let a1 = &mut acts[0][..p * hidden];
        for range in team.ranges {
            // SAFETY: written before the barrier; written again only after the next one.
            let theirs = unsafe { shared.block(cap * range.start..cap * range.start + p * range.len()) };
            for (i, row) in theirs.chunks_exact(range.len()).enumerate() {
                a1[i * hidden + range.start..][..range.len()].copy_from_slice(row);
            }
        }
        let batch = Batch { rows: &rows[..p], ids: &ids[..p], m, labels: team.labels, scale: T::of(team.eta / m as f64) };
        unsafe { after_first_layer::<T, V>(sizes, weights, biases, &mut acts, &mut deltas, &batch) };

        for (i, row) in own_delta[..p * width].chunks_exact_mut(width).enumerate() {
            row.copy_from_slice(&deltas[0][i * hidden + mine.start..][..width]);
        }
        unsafe { update::<T, V>(w1, b1, &own_delta[..p * width], first, head) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_split_evenly_and_cover_the_layer() {
        assert_eq!(split_rows(30, 2), vec![0..15, 15..30]);
        assert_eq!(split_rows(100, 3), vec![0..34, 34..67, 67..100]);
        assert_eq!(split_rows(3, 3), vec![0..1, 1..2, 2..3]);
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
