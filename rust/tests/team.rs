//! The team kernel against the single-thread fused kernel and the port: the
//! same bits as the sweep kernel on any thread count, and the port's result.

mod common;

use common::{problem, relative_gap, Problem};
use ndarray::{Array2, ArrayView2};
use nndl_bench_rust::data::Epoch;
use nndl_bench_rust::fused::Fused;
use nndl_bench_rust::port::Network;
use nndl_bench_rust::simd::Isa;
use nndl_bench_rust::team::FusedParallel;

fn views(arrays: &[Array2<f64>]) -> Vec<ArrayView2<'_, f64>> {
    arrays.iter().map(|a| a.view()).collect()
}

fn columns(biases: &[Vec<f64>]) -> Vec<Array2<f64>> {
    biases.iter().map(|b| Array2::from_shape_vec((b.len(), 1), b.clone()).unwrap()).collect()
}

fn after_epoch(p: &Problem, sizes: &[usize], isa: Isa, threads: usize, batch_size: usize) -> (Vec<Array2<f64>>, Vec<Array2<f64>>) {
    let mut team = FusedParallel::new(&views(&p.weights), &views(&p.biases), Some(isa), threads).unwrap();
    team.train_epoch(&Epoch::new(p.x.view(), &p.labels, &p.order, sizes, batch_size).unwrap(), batch_size, 3.0);
    (team.weights().iter().map(|w| w.to_owned()).collect(), columns(team.biases()))
}

#[test]
fn every_thread_count_gives_the_sweep_kernels_bits() {
    // 784 inputs: whole cache lines, so the first layer takes the aligned path too.
    for sizes in [vec![784, 13, 10], vec![64, 17, 9, 4], vec![50, 7, 5, 3]] {
        let p = problem(&sizes, 83, 6);
        for isa in Isa::ALL.into_iter().filter(|isa| isa.supported()) {
            for batch_size in [1, 7, 10, 64] {
                let mut fused = Fused::new(&views(&p.weights), &views(&p.biases), Some(isa), Some(usize::MAX)).unwrap();
                fused.train_epoch(&Epoch::new(p.x.view(), &p.labels, &p.order, &sizes, batch_size).unwrap(), batch_size, 3.0);
                let want_w: Vec<_> = fused.weights().iter().map(|w| w.to_owned()).collect();
                let want_b = columns(fused.biases());
                for threads in [1, 2, 3, 4] {
                    let (w, b) = after_epoch(&p, &sizes, isa, threads, batch_size);
                    assert!(w == want_w && b == want_b, "{sizes:?} {isa:?} batch {batch_size}, {threads} threads");
                }
            }
        }
    }
}

#[test]
fn the_team_matches_the_port() {
    let sizes = [64, 17, 9, 4];
    let p = problem(&sizes, 203, 7); // 20 batches of 10, then 3
    let mut net = Network::new(p.weights.clone(), p.biases.clone()).unwrap();
    net.train_epoch(&Epoch::new(p.x.view(), &p.labels, &p.order, &sizes, 10).unwrap(), 10, 3.0);
    let (w, b) = after_epoch(&p, &sizes, Isa::detect(), 2, 10);
    assert!(relative_gap(&w, &net.weights) < 1e-12 && relative_gap(&b, &net.biases) < 1e-12);
}

#[test]
fn threads_are_capped_by_the_hidden_units_and_split_evenly() {
    let p = problem(&[20, 5, 3], 10, 8);
    let team = FusedParallel::new(&views(&p.weights), &views(&p.biases), None, 8).unwrap();
    assert_eq!(team.threads(), 5);
    assert_eq!(team.rows_per_thread(), vec![1; 5]);
    let team = FusedParallel::new(&views(&p.weights), &views(&p.biases), None, 2).unwrap();
    assert_eq!(team.rows_per_thread(), vec![3, 2]);
    assert!(FusedParallel::new(&views(&p.weights), &views(&p.biases), None, 0).is_err());
}
