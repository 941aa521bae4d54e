//! The fused epoch allocates nothing once its buffers exist: counted by a
//! global allocator, an epoch of 10 mini-batches and one of 100 allocate the same.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use common::problem;
use nndl_bench_rust::data::Epoch;
use nndl_bench_rust::kernels::{Fused, Kernel};

struct Counting;
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn fused_epochs_allocate_nothing_per_mini_batch() {
    let sizes = [784, 30, 10];
    let p = problem(&sizes, 1000, 9);
    let w: Vec<_> = p.weights.iter().map(|w| w.view()).collect();
    let b: Vec<_> = p.biases.iter().map(|b| b.view()).collect();
    // At batch 200 the tiles kernel cuts each mini-batch (1.25 MB of rows) into blocks.
    for (kernel, batch) in Kernel::ALL.into_iter().map(|k| (k, 10)).chain([(Kernel::Tiles, 200)]) {
        let mut fused = Fused::new(&w, &b, None, None).unwrap();
        fused.set_kernel(kernel);
        let epoch = |n: usize| Epoch::new(p.x.view(), &p.labels, &p.order[..n], &sizes, batch).unwrap();
        let (short, long) = (epoch((batch * 10).min(400)), epoch(1000));
        fused.train_epoch(&short, batch, 3.0); // makes the buffers
        let mut counts = vec![];
        for data in [&short, &long] {
            let before = ALLOCATIONS.load(Ordering::Relaxed);
            fused.train_epoch(data, batch, 3.0);
            counts.push(ALLOCATIONS.load(Ordering::Relaxed) - before);
        }
        assert_eq!(counts, vec![0, 0], "{kernel:?} at batch {batch}");
    }
}
