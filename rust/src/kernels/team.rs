//! The fused kernel on a team of threads that meet once or twice per mini-batch.
//!
//! At [784, h, 10] nearly all the arithmetic is the first layer's, so only it
//! is split, and by its input features, not by its hidden units. The team
//! runs the first layer as `tiles` does, on W1 held transposed for the epoch
//! (W1ᵀ, a row per input feature): thread t owns a run K_t of W1ᵀ's rows
//! (in the default ways; the balanced way below shares them out by tasks),
//! reads only K_t of each row of X, computes the partial sums W1[:, K_t]
//! x_i[K_t] into a buffer the team shares, and at the end updates its rows
//! of W1ᵀ with the whole of delta1. Split by hidden units instead, every
//! thread streamed every row of the mini-batch for its share of W1, and that
//! traffic, which did not shrink with the thread count, kept two threads from
//! paying at width 30.
//!
//! The features fall into `parts` consecutive runs of whole cache lines of
//! W1ᵀ, and each part's sums start from zero: z = ((part 0 + part 1) + ...) +
//! b, in that order. The parts are fixed by the trainer, not by the threads
//! (each thread takes a run of parts), so the result is the same bits
//! whatever the thread count; the update of each weight is one thread's, in
//! the samples' order, whatever the split. What follows the first layer's
//! sums (about 1/78 of the arithmetic at [784, 30, 10], but a sixth to a
//! quarter of the team's time at batch 1000) runs the single-thread kernel's
//! code in its order, each thread on its own copy of the deeper weights and
//! of b1, so the copies stay identical. By default it runs one of two ways
//! (`Rest`): every thread the whole mini-batch, or each thread its own sweeps
//! of five samples through the deeper layers and backprop, which are the same
//! bits whoever computes them, and after a second barrier every thread the
//! updates of its copies from all the samples. Those updates sum each
//! weight's terms in the samples' order, so they cannot be split by samples
//! without changing the bits, and each thread reads the others' activations
//! and deltas for them. A third way, only where asked (the Python backend asks
//! for it where a trial finds it the fastest), takes the first
//! layer's work too from a counter, in tasks of samples and of W1ᵀ's rows
//! (`balanced_epoch`), for cores that run at uneven speeds. With one part the
//! result is `Fused`'s tiles kernel's, bit for bit.
//!
//! Each thread owns a fixed run of the parts for the whole epoch, so that its
//! rows of W1ᵀ stay in its own core's cache. Taken in turn from a shared
//! counter instead, as they were first, the two parts of a team of two
//! changed hands in 43-70% of the mini-batches at batch 10, [784, 30, 10],
//! and each time 100 KB of W1ᵀ crossed between the cores: on a 2-core Xeon a
//! part took 25,900-29,100 time-stamp-counter cycles rather than
//! 18,600-19,400, and the epoch's median was 0.075-0.078 s rather than
//! 0.062-0.067 s. The price is that a thread slowed by a
//! neighbour on its core holds the others at the barrier for its share.
//!
//! The team is spawned once per epoch (`std::thread::scope`, the caller being
//! thread 0) and meets at a barrier per mini-batch after the partial sums are
//! written. They are double-buffered by the mini-batch's parity, which is
//! what makes one barrier enough where each thread does the rest whole: a
//! thread that writes batch k+1's buffer has passed batch k's barrier, which
//! every other thread reached only after it had read batch k-1's (the same
//! buffer). Shared by samples, the activations and deltas each thread writes
//! for its samples are read by all after the second barrier, and written
//! again only after the next mini-batch's first. In those two ways no thread
//! reads or writes another's rows of W1ᵀ, so W1ᵀ needs no barrier at all; the
//! balanced way reads all of it before its first barrier and writes runs of
//! it, each one task's, before its second. A mini-batch too big for L2 is
//! cut into blocks as the tiles kernel cuts it (`blocked_epoch`), and the
//! whole and by-samples ways then meet once or twice per block.
//!
//!
//! The barrier, the shared W1ᵀ and the partial sums are in `sync`.

mod sync;

use std::ops::Range;

use ndarray::ArrayView2;

use self::sync::{Barrier, BreakOnPanic, Partials, SharedMatrix, SharedRows, TaskCounter};
use super::isa::{dispatch, Isa};
use super::layout::{pad_rows, padded, rows_ahead, stride, Aligned, Matrix, Rows, CACHE_LINE, SWEEP};
use super::outer::{self, forward_range};
use super::sweep::{deeper_backward, update_bias, update_deeper, Batch, Deeper};
use super::tiles;
use super::vector::{FlushSubnormals, Lane, Vector};
use super::Fused;
use crate::data::Epoch;
use crate::real::Real;

pub use self::sync::SPINS_BEFORE_YIELD;

/// What `choices()` reports as the barrier.
pub const BARRIER_KIND: &str = "generation counter: spin, then yield";
/// What `choices()` reports as the split.
pub const SPLIT_KIND: &str = "first layer by input features (rows of W1 transposed), in whole cache lines";
/// What `choices()` reports as the way the threads share the parts.
pub const TASK_KIND: &str = "a fixed run of parts per thread, each its update then its sums";
/// The same, for the balanced way.
pub const BALANCED_TASK_KIND: &str =
    "tasks from a counter: runs of samples through every part, then runs of W1 transposed's rows to update";
/// What `choices()` reports as the kernel.
pub const TEAM_KERNEL: &str = "tiles";

/// Who does what follows the first layer's sums in each mini-batch: the
/// deeper layers, the errors and backprop down to delta1, and the updates of
/// b1 and the deeper layers; for the balanced way, who does the first layer's
/// work too.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rest {
    /// Every thread the whole mini-batch, on its own copies: one meeting.
    Whole,
    /// Each thread its own whole sweeps of the samples up to delta1; then a
    /// second meeting, and every thread the updates of its copies.
    BySamples,
    /// Tasks taken from a counter: the first layer's sums with the rest up
    /// to delta1 by runs of samples, each sum over all the parts; a meeting;
    /// then every thread the updates of its copies, and W1ᵀ's update by runs
    /// of rows; a second meeting.
    Balanced,
}

/// Where the rest is not asked for, it is shared by samples from this many
/// sweeps of the mini-batch per thread. The second meeting costs the same at
/// any batch size, and what it shares grows with the batch. On a 2-core Xeon
/// (`docs/findings`, team/rest.txt; widths 30 and 100, float64 and float32)
/// the team of two was 3-10% faster whole at batch 10, 2-10% faster by
/// samples at batch 100 (ten sweeps each) and 1000, and at batch 50 within
/// 1.5% either way but for one cell, where sharing was 15% faster.
pub const SWEEPS_PER_THREAD_TO_SHARE: usize = 10;

impl Rest {
    pub const ALL: [Rest; 3] = [Rest::Whole, Rest::BySamples, Rest::Balanced];

    pub fn name(self) -> &'static str {
        match self {
            Rest::Whole => "whole",
            Rest::BySamples => "by-samples",
            Rest::Balanced => "balanced",
        }
    }

    pub fn from_name(name: &str) -> Option<Rest> {
        Rest::ALL.into_iter().find(|r| r.name() == name)
    }
}

pub struct FusedParallel<T> {
    fused: Fused<T>,
    threads: usize,
    parts: usize,
    /// Asked for; else by the batch size (`rest_for`).
    rest: Option<Rest>,
    /// The times the team met in the last epoch.
    meetings: usize,
    /// W1ᵀ while an epoch trains, and the next W1ᵀ while a mini-batch cut
    /// into blocks is updated (`blocked_epoch`).
    transposed: Aligned<T>,
    spare: Aligned<T>,
}

/// The rows of W1ᵀ (of `stride` elements of T) that make up whole cache lines.
fn rows_per_line<T>(stride: usize) -> usize {
    let bytes = stride * std::mem::size_of::<T>();
    let mut gcd = (CACHE_LINE, bytes);
    while gcd.1 != 0 {
        gcd = (gcd.1, gcd.0 % gcd.1);
    }
    CACHE_LINE / gcd.0
}

impl<T: Lane> FusedParallel<T> {
    /// `parts` (default: `threads`) fixes how the first layer's sums are
    /// grouped, and with it the result; it is capped by the cache lines in a
    /// row of X, and `threads` by `parts`: each thread owns at least one part.
    pub fn new(
        weights: &[ArrayView2<T>],
        biases: &[ArrayView2<T>],
        isa: Option<Isa>,
        threads: usize,
        parts: Option<usize>,
    ) -> Result<Self, String> {
        if threads == 0 || parts == Some(0) {
            return Err("threads and parts must be at least 1".into());
        }
        let fused = Fused::new(weights, biases, isa, None)?;
        let stride = stride(fused.sizes[1], fused.isa.lanes::<T>());
        let parts = parts.unwrap_or(threads).min((fused.sizes[0] / rows_per_line::<T>(stride)).max(1));
        Ok(FusedParallel { fused, threads: threads.min(parts), parts, rest: None, meetings: 0, transposed: Aligned::default(), spare: Aligned::default() })
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

    pub fn parts(&self) -> usize {
        self.parts
    }

    /// Who does the rest of each mini-batch of `batch_size`: as asked, else
    /// by samples where each thread has `SWEEPS_PER_THREAD_TO_SHARE` sweeps
    /// of it. The result is the same bits either way.
    pub fn rest_for(&self, batch_size: usize) -> Rest {
        let shares = batch_size >= SWEEPS_PER_THREAD_TO_SHARE * SWEEP * self.threads && self.threads > 1;
        self.rest.unwrap_or(if shares { Rest::BySamples } else { Rest::Whole })
    }

    /// The samples per block of a mini-batch of `batch_size`, as the tiles
    /// kernel cuts them (`blocked_epoch`); None where it runs in one pass, as
    /// the balanced way always does. An epoch shorter than `batch_size` is
    /// cut by its own length.
    pub fn block_samples(&self, batch_size: usize) -> Option<usize> {
        let balanced = self.rest_for(batch_size) == Rest::Balanced;
        (!balanced).then(|| tiles::block_samples::<T>(&self.fused.sizes, padded(batch_size))).flatten()
    }

    /// None: by the batch size (`rest_for`).
    pub fn set_rest(&mut self, rest: Option<Rest>) {
        self.rest = rest;
    }

    /// The times the team met at its barrier in the last epoch.
    pub fn meetings(&self) -> usize {
        self.meetings
    }

    pub fn weights(&self) -> Vec<ArrayView2<'_, T>> {
        self.fused.weights()
    }

    pub fn biases(&self) -> &[Vec<T>] {
        self.fused.biases()
    }

    /// W1ᵀ's row length: the hidden units padded to whole vectors.
    fn stride(&self) -> usize {
        stride(self.fused.sizes[1], self.fused.isa.lanes::<T>())
    }

    /// The input features of each part: whole cache lines of W1ᵀ.
    fn features(&self) -> Vec<Range<usize>> {
        split_columns(self.fused.sizes[0], 0, self.parts, rows_per_line::<T>(self.stride()))
    }

    /// How many input features (rows of W1ᵀ) each part holds.
    pub fn features_per_part(&self) -> Vec<usize> {
        self.features().iter().map(|f| f.len()).collect()
    }

    pub fn train_epoch(&mut self, data: &Epoch<T>, batch_size: usize, eta: f64) {
        let (isa, threads, parts, stride) = (self.fused.isa, self.threads, self.parts, self.stride());
        let sizes = self.fused.sizes.clone();
        let columns = self.features();
        let capacity = padded(batch_size.min(data.order.len()).max(1));
        let rest = self.rest_for(batch_size);
        let sums = if rest == Rest::Balanced { 0 } else { capacity * sizes[1] }; // sums its parts itself
        let shared = [Partials::new(parts, sums), Partials::new(parts, sums)];
        let rows = if rest == Rest::Whole { 0 } else { capacity };

        let len = sizes[0] * stride;
        // Cut into blocks as the tiles kernel cuts them, by the rows of a mini-batch.
        let blocked = rest != Rest::Balanced && tiles::block_samples::<T>(&sizes, capacity).is_some();
        self.transposed.reserve(len);
        self.spare.reserve(if blocked { len } else { 0 });
        let (wt, spare) = (self.transposed.values_mut(len), self.spare.values_mut(if blocked { len } else { 0 }));
        let (weights, biases) = self.fused.layers_mut();
        let ([w1, deeper_w @ ..], [b1, deeper_b @ ..]) = (weights, biases) else {
            unreachable!("`Fused::new` checked that there is at least one layer")
        };
        outer::transpose_into(w1.values(), sizes[1], sizes[0], wt, stride);
        let team = Team {
            sizes: &sizes, x: data.x_slice(), labels: data.labels, order: data.order, batch_size, eta, stride, capacity,
            columns: &columns, w1: SharedMatrix::new(wt, sizes[0], stride),
            w1_next: SharedMatrix::new(spare, if blocked { sizes[0] } else { 0 }, stride), blocked,
            shared: &shared, barrier: Barrier::new(threads), rest,
            acts: layer_rows(&sizes, rows), deltas: layer_rows(&sizes, rows),
            next: [TaskCounter::default(), TaskCounter::default()],
        };
        // Thread 0 trains the trainer's own b1 and deeper layers, the others copies.
        let mut copies: Vec<_> = (1..threads).map(|_| (b1.clone(), deeper_w.to_vec(), deeper_b.to_vec())).collect();
        std::thread::scope(|scope| {
            let team = &team;
            for (t, (b1, w, b)) in copies.iter_mut().enumerate() {
                let own = Own { index: t + 1, b1, weights: w, biases: b };
                std::thread::Builder::new()
                    .name(format!("nndl-team-{}", t + 1))
                    .spawn_scoped(scope, move || run(isa, team, own))
                    .expect("a thread of the team could not start");
            }
            let own = Own { index: 0, b1, weights: deeper_w, biases: deeper_b };
            run(isa, team, own);
        });
        self.meetings = team.barrier.rounds();
        // A blocked epoch leaves W1ᵀ in the buffer its last mini-batch updated.
        let odd = blocked && data.order.len().div_ceil(batch_size) % 2 == 1;
        let last = if odd { self.spare.values(len) } else { self.transposed.values(len) };
        outer::transpose_back(last, stride, w1.values_mut(), sizes[1], sizes[0]);
    }
}

/// The columns of each of `parts` parts of a row of `n_in`: the whole lines
/// (of `line` elements) after the first `head` elements split as evenly as
/// whole lines allow, the head in the first part and what is left of the last
/// line in the last. A part may be empty where there are fewer lines than parts.
pub fn split_columns(n_in: usize, head: usize, parts: usize, line: usize) -> Vec<Range<usize>> {
    let lines = n_in.saturating_sub(head) / line;
    let bound = |p: usize| match p {
        0 => 0,
        p if p == parts => n_in,
        p => head + p * lines / parts * line,
    };
    (0..parts).map(|p| bound(p)..bound(p + 1)).collect()
}

/// What every thread of the team reads: the epoch, the split, W1, the two
/// buffers of partial sums and the barrier.
pub struct Team<'a, T> {
    sizes: &'a [usize],
    x: &'a [T],
    labels: &'a [i64],
    order: &'a [i64],
    batch_size: usize,
    eta: f64,
    stride: usize,
    capacity: usize,
    columns: &'a [Range<usize>],
    w1: SharedMatrix<'a, T>,
    /// Where the epoch is blocked (`blocked_epoch`), the other W1ᵀ; else empty.
    w1_next: SharedMatrix<'a, T>,
    blocked: bool,
    shared: &'a [Partials<T>; 2],
    barrier: Barrier,
    rest: Rest,
    /// Each layer's activations and deltas of the mini-batch, (capacity, n),
    /// where the rest is shared by samples or balanced.
    acts: Vec<SharedRows<T>>,
    deltas: Vec<SharedRows<T>>,
    /// The next task of the balanced way's first and second halves.
    next: [TaskCounter; 2],
}

/// What one thread trains besides its columns of W1: its copy of b1 and of the deeper layers.
pub struct Own<'a, T> {
    index: usize,
    b1: &'a mut [T],
    weights: &'a mut [Matrix<T>],
    biases: &'a mut [Vec<T>],
}


/// One thread's epoch, in the instantiation for `isa`; a panic breaks the
/// barrier, so that the others panic too rather than wait for it forever.
fn run<T: Lane>(isa: Isa, team: &Team<T>, own: Own<T>) {
    let _guard = BreakOnPanic(&team.barrier);
    let _flush = FlushSubnormals::new();
    if team.rest == Rest::Balanced {
        dispatch!(isa, T, balanced_epoch(team: &Team<T>, own: Own<T>));
    } else if team.blocked {
        dispatch!(isa, T, blocked_epoch(team: &Team<T>, own: Own<T>));
    } else {
        dispatch!(isa, T, team_epoch(team: &Team<T>, own: Own<T>));
    }
}


/// One thread's share of the epoch.
///
/// Per mini-batch k each thread does the tasks of its own parts (`owned`): a
/// part's task is its update with the previous batch's delta1, then its
/// partial sums for batch k, so that its rows of W1ᵀ are written and read by
/// one thread between two barriers. Then the barrier, and the rest of the
/// mini-batch up to delta1: every thread all of it, or (`Rest::BySamples`)
/// its own sweeps of samples and a second barrier. Then every thread updates
/// its copies from the whole mini-batch. After the last batch one more round
/// of tasks does the last update alone.
///
/// # Safety
/// Only on a CPU with `V`'s features.
#[inline(always)]
unsafe fn team_epoch<T: Lane, V: Vector<Elem = T>>(team: &Team<T>, own: Own<T>) {
    let Own { index, b1, weights, biases } = own;
    let (sizes, cap, stride, x) = (team.sizes, team.capacity, team.stride, team.x);
    let (n0, hidden, parts) = (sizes[0], sizes[1], team.columns.len());
    let threads = team.barrier.threads();
    let mine = owned(index, threads, parts);
    let by_samples = team.rest == Rest::BySamples;
    // Private buffers, made once per epoch: the rows of X of this batch and
    // the last, by parity, and the layers' activations and deltas where each
    // thread does the rest whole.
    let mut rows = [vec![0usize; cap], vec![0usize; cap]];
    let ids: Vec<usize> = (0..cap).collect();
    let mut tile_sums = vec![T::zero(); 2 * SWEEP * stride];
    let mut minus_delta = vec![T::zero(); cap * stride];
    let mut deeper = Deeper::new::<V>(weights, cap);
    let mut pending: Option<usize> = None; // the padded size of the batch whose update is due
    let (own_acts, own_deltas) = if by_samples { (vec![], vec![]) } else { (layer_rows(sizes, cap), layer_rows(sizes, cap)) };
    let (acts, deltas) = if by_samples { (&team.acts, &team.deltas) } else { (&own_acts, &own_deltas) };
    // Slices of them, filled and emptied each mini-batch.
    let (mut my_acts, mut my_deltas) = (Vec::with_capacity(sizes.len()), Vec::with_capacity(sizes.len()));
    let (mut all_acts, mut all_deltas) = (Vec::with_capacity(sizes.len()), Vec::with_capacity(sizes.len()));

    let mut batches = team.order.chunks(team.batch_size);
    for k in 0.. {
        let batch = batches.next();
        let [even, odd] = &mut rows;
        let (now, before) = if k % 2 == 0 { (even, &*odd) } else { (odd, &*even) };
        let p = batch.map(|b| pad_rows(b, now));
        let shared = &team.shared[k % 2];
        for part in mine.clone() {
            let columns = &team.columns[part];
            if let Some(q) = pending {
                let last = Rows { data: x, width: n0, ids: &before[..q] };
                // SAFETY: this part's rows of W1ᵀ are this thread's alone until the barrier.
                let wt = unsafe { team.w1.rows_mut(columns) };
                unsafe { outer::update_range::<V>(wt, stride, last, &minus_delta[..q * stride], columns.clone()) };
            }
            if let Some(p) = p {
                let first = Rows { data: x, width: n0, ids: &now[..p] };
                // SAFETY: as above, and this part of the shared sums too.
                let (out, wt) = unsafe { (shared.part_mut(part, p * hidden), team.w1.rows(columns)) };
                let m = batch.map_or(0, |b| b.len());
                let ahead = |i| rows_ahead(x, n0, team.order, k * team.batch_size, i, m, team.batch_size);
                unsafe { tiles::forward_batch::<V>(wt, stride, first, columns.clone(), &mut tile_sums, out, ahead) };
            }
        }
        let (Some(batch), Some(p)) = (batch, p) else { break };
        team.barrier.wait();

        // Every layer but the updates: each thread its own whole sweeps of
        // the samples, or all of them.
        let samples = match by_samples {
            true => owned(index, threads, p / SWEEP),
            false => 0..p / SWEEP,
        };
        let samples = samples.start * SWEEP..samples.end * SWEEP;
        let m = batch.len();
        if !samples.is_empty() {
            // SAFETY: these rows are this thread's alone until the next barrier.
            my_acts.extend(acts.iter().map(|a| unsafe { a.rows_mut(samples.clone()) }));
            my_deltas.extend(deltas.iter().map(|d| unsafe { d.rows_mut(samples.clone()) }));
            let a1: &mut [T] = my_acts[0];
            let own_sums = samples.start * hidden..samples.end * hidden;
            for part in 0..parts {
                // SAFETY: written before the barrier; written again only after the next one.
                let sums = &unsafe { shared.part(part, p * hidden) }[own_sums.clone()];
                if part == 0 {
                    a1.copy_from_slice(sums);
                } else {
                    a1.iter_mut().zip(sums).for_each(|(a, &s)| *a += s);
                }
            }
            tiles::add_bias_and_sigmoid::<V>(a1, b1);
            let scale = T::of(team.eta / m as f64);
            let of_x = &now[samples.clone()];
            let m_here = m.saturating_sub(samples.start); // its samples before the padding
            let these = Batch { rows: of_x, ids: &ids[..of_x.len()], m: m_here, labels: team.labels, scale };
            unsafe { deeper_backward::<T, V, _>(sizes, weights, biases, &mut deeper, &mut my_acts, &mut my_deltas, &these) };
            my_acts.clear();
            my_deltas.clear();
        }
        if by_samples {
            team.barrier.wait();
        }

        // Every thread's updates of its own copies, from the whole mini-batch.
        // SAFETY: written before the barrier (or by this thread); written
        // again only after the next mini-batch's first barrier.
        all_acts.extend(acts.iter().map(|a| unsafe { a.rows(p) }));
        all_deltas.extend(deltas.iter().map(|d| unsafe { d.rows(p) }));
        unsafe { update_deeper::<T, V, _, _>(sizes, weights, biases, &mut deeper, &all_acts, &all_deltas, &ids[..p]) };
        outer::minus_padded(all_deltas[0], hidden, stride, &mut minus_delta);
        update_bias(b1, all_deltas[0]);
        all_acts.clear();
        all_deltas.clear();
        pending = Some(p);
    }
}

/// Sweeps of samples per task of the balanced way's first half, and tasks
/// of W1ᵀ's rows per thread in its second. With eight row tasks per thread
/// the epoch at batch 1000 was 20% slower than by samples on calm cores, with
/// two 5%: each task reads a run of every row of X, shorter with more tasks.
const SWEEPS_PER_TASK: usize = 4;
const ROW_TASKS_PER_THREAD: usize = 2;

/// One thread's share of the epoch the balanced way (`Rest::Balanced`).
///
/// Per mini-batch: tasks of `SWEEPS_PER_TASK` sweeps of samples, each the
/// first layer's sums of its samples over every part in order (the same
/// bits as the parts summed after the barrier), then the rest up to delta1;
/// the barrier; every thread the updates of its copies, then tasks of runs of
/// W1ᵀ's rows, each updated with all the samples in order; a second barrier,
/// after which every thread reads the whole of W1ᵀ again. A thread whose core
/// is slowed takes fewer tasks, where with fixed parts the others wait for it;
/// the price is that W1ᵀ's rows move between the cores.
///
/// # Safety
/// Only on a CPU with `V`'s features.
#[inline(always)]
unsafe fn balanced_epoch<T: Lane, V: Vector<Elem = T>>(team: &Team<T>, own: Own<T>) {
    let Own { index, b1, weights, biases } = own;
    let (sizes, cap, stride, x) = (team.sizes, team.capacity, team.stride, team.x);
    let (n0, hidden) = (sizes[0], sizes[1]);
    let threads = team.barrier.threads();
    let mut rows = vec![0usize; cap];
    let ids: Vec<usize> = (0..cap).collect();
    let mut tile_sums = vec![T::zero(); SWEEP * stride];
    let mut minus_delta = vec![T::zero(); cap * stride];
    let mut deeper = Deeper::new::<V>(weights, cap);
    let line = rows_per_line::<T>(stride);
    let row_runs = split_columns(n0, 0, (ROW_TASKS_PER_THREAD * threads).min(n0 / line).max(1), line);
    let (mut my_acts, mut my_deltas) = (Vec::with_capacity(sizes.len()), Vec::with_capacity(sizes.len()));
    let (mut all_acts, mut all_deltas) = (Vec::with_capacity(sizes.len()), Vec::with_capacity(sizes.len()));

    for (k, batch) in team.order.chunks(team.batch_size).enumerate() {
        let (m, p) = (batch.len(), pad_rows(batch, &mut rows));
        let tasks = (p / SWEEP).div_ceil(SWEEPS_PER_TASK);
        loop {
            let task = team.next[0].take();
            if task >= tasks {
                break;
            }
            let samples = task * SWEEPS_PER_TASK * SWEEP..((task + 1) * SWEEPS_PER_TASK * SWEEP).min(p);
            // SAFETY: a task's rows are its thread's alone until the barrier.
            my_acts.extend(team.acts.iter().map(|a| unsafe { a.rows_mut(samples.clone()) }));
            my_deltas.extend(team.deltas.iter().map(|d| unsafe { d.rows_mut(samples.clone()) }));
            let a1: &mut [T] = my_acts[0];
            let first = Rows { data: x, width: n0, ids: &rows[samples.clone()] };
            for i in (0..samples.len()).step_by(SWEEP) {
                let ahead = rows_ahead(x, n0, team.order, k * team.batch_size, samples.start + i, m, team.batch_size);
                for (part, columns) in team.columns.iter().enumerate() {
                    // SAFETY: W1ᵀ is written only between the two barriers.
                    let wt = unsafe { team.w1.rows(columns) };
                    unsafe { forward_range::<V>(wt, stride, first, i, columns.clone(), &mut tile_sums, Some(ahead)) };
                    for q in 0..SWEEP {
                        let (z, sums) = (&mut a1[(i + q) * hidden..][..hidden], &tile_sums[q * stride..][..hidden]);
                        if part == 0 {
                            z.copy_from_slice(sums);
                        } else {
                            z.iter_mut().zip(sums).for_each(|(a, &s)| *a += s);
                        }
                    }
                }
            }
            let scale = T::of(team.eta / m as f64);
            let these = Batch { rows: &rows[samples.clone()], ids: &ids[..samples.len()], m: m.saturating_sub(samples.start), labels: team.labels, scale };
            unsafe { from_sums::<T, V>(sizes, weights, biases, b1, &mut deeper, &mut my_acts, &mut my_deltas, &these) };
        }
        team.barrier.wait();
        if index == 0 {
            team.next[0].reset(); // taken again only after the second barrier
        }
        // SAFETY: written before the barrier; written again only after the second.
        all_acts.extend(team.acts.iter().map(|a| unsafe { a.rows(p) }));
        all_deltas.extend(team.deltas.iter().map(|d| unsafe { d.rows(p) }));
        unsafe { update_deeper::<T, V, _, _>(sizes, weights, biases, &mut deeper, &all_acts, &all_deltas, &ids[..p]) };
        outer::minus_padded(all_deltas[0], hidden, stride, &mut minus_delta);
        update_bias(b1, all_deltas[0]);
        all_acts.clear();
        all_deltas.clear();
        let input = Rows { data: x, width: n0, ids: &rows[..p] };
        loop {
            let task = team.next[1].take();
            let Some(features) = row_runs.get(task) else { break };
            // SAFETY: this run of W1ᵀ's rows is this task's alone until the barrier.
            let wt = unsafe { team.w1.rows_mut(features) };
            unsafe { outer::update_range::<V>(wt, stride, input, &minus_delta[..p * stride], features.clone()) };
        }
        team.barrier.wait();
        if index == 0 {
            team.next[1].reset(); // taken again only after the next first barrier
        }
    }
}

/// One thread's share of an epoch whose mini-batches are too big for L2, cut
/// into blocks as the tiles kernel cuts them (`tiles::blocks`), in the whole
/// or by-samples way.
///
/// Per block: each thread updates its parts of the next W1ᵀ with the
/// previous block's -delta1, whose rows of X its forward pass has just
/// brought in, then computes its partial sums for this block from W1ᵀ; the
/// barrier; the rest of the block up to delta1 (a second barrier where it is
/// shared by samples). After the mini-batch's last block, the last update
/// and every thread's updates of its copies; the next W1ᵀ, which started the
/// mini-batch as a copy of W1ᵀ, becomes W1ᵀ, each thread's rows by
/// themselves (the buffers swap by the mini-batch's parity). Each weight
/// takes the samples' terms one at a time in their order from its value at
/// the start of the mini-batch: the bits of `team_epoch`. The partial sums
/// are double-buffered by the block's parity, for the whole way's single
/// meeting.
///
/// # Safety
/// Only on a CPU with `V`'s features.
#[inline(always)]
unsafe fn blocked_epoch<T: Lane, V: Vector<Elem = T>>(team: &Team<T>, own: Own<T>) {
    let Own { index, b1, weights, biases } = own;
    let (sizes, cap, stride, x) = (team.sizes, team.capacity, team.stride, team.x);
    let (n0, hidden, parts) = (sizes[0], sizes[1], team.columns.len());
    let threads = team.barrier.threads();
    let mine = owned(index, threads, parts);
    let by_samples = team.rest == Rest::BySamples;
    let mut rows = vec![0usize; cap];
    let ids: Vec<usize> = (0..cap).collect();
    let mut tile_sums = vec![T::zero(); 2 * SWEEP * stride];
    let mut minus_delta = vec![T::zero(); cap * stride]; // a last, short mini-batch may be one block
    let mut deeper = Deeper::new::<V>(weights, cap);
    let (own_acts, own_deltas) = if by_samples { (vec![], vec![]) } else { (layer_rows(sizes, cap), layer_rows(sizes, cap)) };
    let (acts, deltas) = if by_samples { (&team.acts, &team.deltas) } else { (&own_acts, &own_deltas) };
    let (mut my_acts, mut my_deltas) = (Vec::with_capacity(sizes.len()), Vec::with_capacity(sizes.len()));
    let (mut all_acts, mut all_deltas) = (Vec::with_capacity(sizes.len()), Vec::with_capacity(sizes.len()));
    let mut round = 0; // blocks so far in the epoch: the parity of the partial sums

    for (k, batch) in team.order.chunks(team.batch_size).enumerate() {
        let (m, p) = (batch.len(), pad_rows(batch, &mut rows));
        let (w1, next) = if k % 2 == 0 { (&team.w1, &team.w1_next) } else { (&team.w1_next, &team.w1) };
        for part in mine.clone() {
            let columns = &team.columns[part];
            // SAFETY: this part's rows of both W1ᵀ are this thread's alone.
            unsafe { next.rows_mut(columns).copy_from_slice(w1.rows(columns)) };
        }
        let scale = T::of(team.eta / m as f64);
        let mut pending: Option<Range<usize>> = None;
        let size = tiles::block_samples::<T>(sizes, p).unwrap_or(p);
        for block in tiles::blocks(p, size).map(Some).chain([None]) {
            for part in mine.clone() {
                let columns = &team.columns[part];
                if let Some(last) = &pending {
                    let input = Rows { data: x, width: n0, ids: &rows[last.clone()] };
                    // SAFETY: as above.
                    let wt = unsafe { next.rows_mut(columns) };
                    unsafe { outer::update_range::<V>(wt, stride, input, &minus_delta[..last.len() * stride], columns.clone()) };
                }
                if let Some(block) = &block {
                    let input = Rows { data: x, width: n0, ids: &rows[block.clone()] };
                    // SAFETY: as above, and this part of this round's sums too.
                    let (out, wt) = unsafe { (team.shared[round % 2].part_mut(part, block.len() * hidden), w1.rows(columns)) };
                    let ahead = |i| rows_ahead(x, n0, team.order, k * team.batch_size, block.start + i, m, team.batch_size);
                    unsafe { tiles::forward_batch::<V>(wt, stride, input, columns.clone(), &mut tile_sums, out, ahead) };
                }
            }
            let Some(block) = block else { break };
            team.barrier.wait();

            let sweeps = block.len() / SWEEP;
            let mine_here = if by_samples { owned(index, threads, sweeps) } else { 0..sweeps };
            let samples = block.start + mine_here.start * SWEEP..block.start + mine_here.end * SWEEP;
            if !samples.is_empty() {
                // SAFETY: these rows are this thread's alone until the next barrier.
                my_acts.extend(acts.iter().map(|a| unsafe { a.rows_mut(samples.clone()) }));
                my_deltas.extend(deltas.iter().map(|d| unsafe { d.rows_mut(samples.clone()) }));
                let a1: &mut [T] = my_acts[0];
                let own_sums = (samples.start - block.start) * hidden..(samples.end - block.start) * hidden;
                for part in 0..parts {
                    // SAFETY: written before the barrier; written again only after the next one.
                    let sums = &unsafe { team.shared[round % 2].part(part, block.len() * hidden) }[own_sums.clone()];
                    if part == 0 {
                        a1.copy_from_slice(sums);
                    } else {
                        a1.iter_mut().zip(sums).for_each(|(a, &s)| *a += s);
                    }
                }
                let these = Batch { rows: &rows[samples.clone()], ids: &ids[..samples.len()], m: m.saturating_sub(samples.start), labels: team.labels, scale };
                unsafe { from_sums::<T, V>(sizes, weights, biases, b1, &mut deeper, &mut my_acts, &mut my_deltas, &these) };
            }
            if by_samples {
                team.barrier.wait();
            }
            // SAFETY: the block's deltas, written before the barrier (or by this
            // thread); written again only after the next mini-batch's first barrier.
            let delta1 = unsafe { deltas[0].rows_in(block.clone()) };
            outer::minus_padded(delta1, hidden, stride, &mut minus_delta);
            pending = Some(block);
            round += 1;
        }

        // SAFETY: as above.
        all_acts.extend(acts.iter().map(|a| unsafe { a.rows(p) }));
        all_deltas.extend(deltas.iter().map(|d| unsafe { d.rows(p) }));
        unsafe { update_deeper::<T, V, _, _>(sizes, weights, biases, &mut deeper, &all_acts, &all_deltas, &ids[..p]) };
        update_bias(b1, all_deltas[0]);
        all_acts.clear();
        all_deltas.clear();
    }
}

/// Some samples of a mini-batch from their first layer's sums, in
/// `my_acts[0]`, to delta1: b1, the sigmoid, the deeper layers and backprop
/// (`deeper_backward`); then the slices of the layers' rows are let go.
///
/// # Safety
/// Only on a CPU with `V`'s features.
#[allow(clippy::too_many_arguments)] // one thread's copies and buffers, kept apart
#[inline(always)]
unsafe fn from_sums<'a, T: Lane, V: Vector<Elem = T>>(
    sizes: &[usize],
    weights: &[Matrix<T>],
    biases: &[Vec<T>],
    b1: &[T],
    deeper: &mut Deeper<T>,
    my_acts: &mut Vec<&'a mut [T]>,
    my_deltas: &mut Vec<&'a mut [T]>,
    these: &Batch<T>,
) {
    tiles::add_bias_and_sigmoid::<V>(my_acts[0], b1);
    unsafe { deeper_backward::<T, V, _>(sizes, weights, biases, deeper, my_acts, my_deltas, these) };
    my_acts.clear();
    my_deltas.clear();
}

/// Each layer's rows of a mini-batch of `capacity`: activations or deltas.
fn layer_rows<T: Real>(sizes: &[usize], capacity: usize) -> Vec<SharedRows<T>> {
    sizes[1..].iter().map(|&n| SharedRows::new(capacity, n)).collect()
}

/// The parts thread `index` of `threads` does, for the whole epoch: a run of
/// consecutive parts, the runs as even as the count allows.
pub fn owned(index: usize, threads: usize, parts: usize) -> Range<usize> {
    index * parts / threads..(index + 1) * parts / threads
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    #[test]
    fn the_team_meets_twice_a_mini_batch_only_where_it_shares_the_rest() {
        let sizes = [64, 5, 3];
        let weights: Vec<Array2<f64>> = sizes.windows(2).map(|p| Array2::from_elem((p[1], p[0]), 0.01)).collect();
        let biases: Vec<Array2<f64>> = sizes[1..].iter().map(|&n| Array2::zeros((n, 1))).collect();
        let (w, b): (Vec<_>, Vec<_>) = (weights.iter().map(|a| a.view()).collect(), biases.iter().map(|a| a.view()).collect());
        let x = Array2::from_shape_fn((200, 64), |(i, j)| ((i * 7 + j) % 11) as f64 / 11.0);
        let labels: Vec<i64> = (0..200).map(|i| i % 3).collect();
        let order: Vec<i64> = (0..200).collect();
        // 20 mini-batches of 10 or 2 of 100; by samples from 100 on two threads
        for (rest, batch, meetings) in [
            (None, 10, 20),
            (None, 100, 4),
            (Some(Rest::Whole), 100, 2),
            (Some(Rest::BySamples), 10, 40),
            (Some(Rest::Balanced), 10, 40),
        ] {
            let mut team = FusedParallel::new(&w, &b, Some(Isa::Baseline), 2, Some(2)).unwrap();
            team.set_rest(rest);
            assert_eq!(team.threads(), 2);
            let epoch = Epoch::new(x.view(), &labels, &order, &sizes, batch).unwrap();
            team.train_epoch(&epoch, batch, 0.5);
            assert_eq!(team.meetings(), meetings, "{rest:?} at batch {batch}");
        }
    }

    #[test]
    fn every_part_has_one_owner() {
        assert_eq!(owned(0, 2, 2), 0..1);
        assert_eq!(owned(1, 2, 2), 1..2);
        assert_eq!((0..3).map(|t| owned(t, 3, 8)).collect::<Vec<_>>(), vec![0..2, 2..5, 5..8]);
        for (threads, parts) in [(1, 1), (1, 4), (2, 3), (3, 3), (4, 16), (3, 7)] {
            let runs: Vec<_> = (0..threads).map(|t| owned(t, threads, parts)).collect();
            assert_eq!((runs[0].start, runs[threads - 1].end), (0, parts));
            assert!(runs.windows(2).all(|w| w[0].end == w[1].start));
            assert!(runs.iter().all(|r| !r.is_empty()), "threads <= parts: each owns one at least");
        }
    }

    #[test]
    fn columns_fall_on_cache_lines_after_the_head() {
        // 784 float64 starting 48 bytes past a line: 2 elements, 97 whole lines, 6 left
        assert_eq!(split_columns(784, 2, 2, 8), vec![0..386, 386..784]);
        assert_eq!(split_columns(784, 0, 2, 8), vec![0..392, 392..784]);
        assert_eq!(split_columns(784, 0, 1, 8), vec![0..784]);
        // 784 float32 at 16 bytes: 12 elements, 48 lines, 4 left
        assert_eq!(split_columns(784, 12, 3, 16), vec![0..268, 268..524, 524..784]);
        // fewer lines than parts: empty parts, still covering the row in order
        assert_eq!(split_columns(20, 0, 4, 8), vec![0..0, 0..8, 8..8, 8..20]);
        for (n, head, parts) in [(50, 0, 3), (64, 3, 5), (784, 6, 7)] {
            let c = split_columns(n, head, parts, 8);
            assert_eq!((c[0].start, c[parts - 1].end), (0, n));
            assert!(c.windows(2).all(|w| w[0].end == w[1].start));
            assert!(c[1..].iter().all(|r| r.start == n || (r.start - head) % 8 == 0));
        }
    }
}
