//! Every strategy against the port, from the same parameters and order.

mod common;

use common::{problem, relative_gap, Problem};
use ndarray::{Array2, ArrayView2};
use nndl_bench_rust::data::Epoch;
use nndl_bench_rust::kernels::{Fused, Kernel};
use nndl_bench_rust::port::Network;
use nndl_bench_rust::kernels::isa::Isa;
use nndl_bench_rust::port::{batched, parallel};

const SIZES: [usize; 4] = [64, 17, 9, 4];

fn epoch<'a>(p: &'a Problem) -> Epoch<'a, f64> {
    Epoch::new(p.x.view(), &p.labels, &p.order, &SIZES, 10).expect("a valid problem")
}

fn port_after_epoch(p: &Problem, batch_size: usize) -> Network<f64> {
    let mut net = Network::new(p.weights.clone(), p.biases.clone()).unwrap();
    net.train_epoch(&epoch(p), batch_size, 3.0);
    net
}

#[test]
fn batched_matches_the_port() {
    let p = problem(&SIZES, 203, 1);
    let want = port_after_epoch(&p, 10);
    let mut net = Network::new(p.weights.clone(), p.biases.clone()).unwrap();
    batched::train_epoch(&mut net, &epoch(&p), 10, 3.0);
    assert!(relative_gap(&net.weights, &want.weights) < 1e-12);
    assert!(relative_gap(&net.biases, &want.biases) < 1e-12);
}

#[test]
fn rayon_gives_the_ports_bits_on_any_thread_count() {
    let p = problem(&SIZES, 203, 2);
    let want = port_after_epoch(&p, 10);
    for threads in [1, 2, 3] {
        let pool = parallel::pool(threads).unwrap();
        let mut net = Network::new(p.weights.clone(), p.biases.clone()).unwrap();
        parallel::train_epoch(&mut net, &epoch(&p), 10, 3.0, &pool);
        assert_eq!(net.weights, want.weights, "{threads} threads");
        assert_eq!(net.biases, want.biases, "{threads} threads");
    }
}

fn fused_after_epoch(p: &Problem, isa: Isa, kernel: Kernel, batch_size: usize) -> Fused<f64> {
    let w: Vec<ArrayView2<f64>> = p.weights.iter().map(|w| w.view()).collect();
    let b: Vec<ArrayView2<f64>> = p.biases.iter().map(|b| b.view()).collect();
    let mut fused = Fused::new(&w, &b, Some(isa), None).unwrap();
    fused.set_kernel(kernel);
    fused.train_epoch(&epoch(p), batch_size, 3.0);
    fused
}

fn fused_params(f: &Fused<f64>) -> (Vec<Array2<f64>>, Vec<Array2<f64>>) {
    let w = f.weights().iter().map(|w| w.to_owned()).collect();
    let b = f.biases().iter().map(|b| Array2::from_shape_vec((b.len(), 1), b.clone()).unwrap()).collect();
    (w, b)
}

#[test]
fn fused_matches_the_port_on_every_instruction_set_and_kernel() {
    let p = problem(&SIZES, 203, 3); // 20 batches of 10, then 3
    for batch_size in [10, 7, 64] {
        let want = port_after_epoch(&p, batch_size);
        for isa in Isa::ALL.into_iter().filter(|isa| isa.supported()) {
            for kernel in Kernel::ALL {
                let fused = fused_after_epoch(&p, isa, kernel, batch_size);
                assert_eq!(fused.kernel_for(batch_size), kernel);
                let (w, b) = fused_params(&fused);
                let gap = relative_gap(&w, &want.weights).max(relative_gap(&b, &want.biases));
                assert!(gap < 1e-12, "{isa:?} {kernel:?} batch {batch_size}: {gap}");
            }
        }
    }
}

#[test]
fn fused_follows_the_inputs_alignment() {
    // The same X starting 0..8 elements past a cache line: same result every time.
    let p = problem(&[128, 12, 5], 60, 4);
    let want = {
        let mut net = Network::new(p.weights.clone(), p.biases.clone()).unwrap();
        net.train_epoch(&Epoch::new(p.x.view(), &p.labels, &p.order, &[128, 12, 5], 10).unwrap(), 10, 3.0);
        net
    };
    let mut storage = vec![0.0f64; p.x.len() + 16];
    for shift in 0..8 {
        let start = (storage.as_ptr() as usize / 8).wrapping_neg() % 8 + shift;
        let slice = &mut storage[start..start + p.x.len()];
        slice.copy_from_slice(p.x.as_slice().unwrap());
        let x = ArrayView2::from_shape(p.x.dim(), &*slice).unwrap();
        let w: Vec<_> = p.weights.iter().map(|w| w.view()).collect();
        let b: Vec<_> = p.biases.iter().map(|b| b.view()).collect();
        let mut fused = Fused::new(&w, &b, None, None).unwrap();
        fused.train_epoch(&Epoch::new(x, &p.labels, &p.order, &[128, 12, 5], 10).unwrap(), 10, 3.0);
        let (w, _) = fused_params(&fused);
        assert!(relative_gap(&w, &want.weights) < 1e-12, "shift {shift}");
    }
}

#[test]
fn bad_inputs_are_errors_not_panics() {
    let p = problem(&SIZES, 20, 5);
    let bad_order = vec![0, 20];
    assert!(Epoch::new(p.x.view(), &p.labels, &bad_order, &SIZES, 10).unwrap_err().contains("20"));
    let bad_labels = vec![4; 20];
    assert!(Epoch::new(p.x.view(), &bad_labels, &p.order, &SIZES, 10).unwrap_err().contains("label 4"));
    assert!(Epoch::new(p.x.view(), &p.labels[..3], &p.order, &SIZES, 10).is_err());
    assert!(Epoch::new(p.x.view(), &p.labels, &p.order, &[63, 4], 10).is_err());
    assert!(Epoch::new(p.x.view(), &p.labels, &p.order, &SIZES, 0).is_err());
    assert!(Epoch::new(p.x.t(), &p.labels, &p.order, &[20, 4], 10).is_err()); // not C-contiguous
    let mut short = p.biases.clone();
    short.pop();
    assert!(Network::new(p.weights.clone(), short).is_err());
}
