//! The team kernel against the single-thread fused kernel and the port: the
//! same bits on any thread count for a given number of parts, the sweep
//! kernel's bits with one part, and the port's result.

mod common;

use common::{problem, relative_gap, Problem};
use ndarray::{Array2, ArrayView2};
use nndl_bench_rust::data::Epoch;
use nndl_bench_rust::kernels::{Fused, Kernel};
use nndl_bench_rust::port::Network;
use nndl_bench_rust::kernels::isa::Isa;
use nndl_bench_rust::kernels::team::{FusedParallel, Rest};

fn views(arrays: &[Array2<f64>]) -> Vec<ArrayView2<'_, f64>> {
    arrays.iter().map(|a| a.view()).collect()
}

fn columns(biases: &[Vec<f64>]) -> Vec<Array2<f64>> {
    biases.iter().map(|b| Array2::from_shape_vec((b.len(), 1), b.clone()).unwrap()).collect()
}

type Params = (Vec<Array2<f64>>, Vec<Array2<f64>>);

fn after_epoch(p: &Problem, sizes: &[usize], isa: Isa, threads: usize, parts: usize, batch_size: usize) -> Params {
    let mut team = FusedParallel::new(&views(&p.weights), &views(&p.biases), Some(isa), threads, Some(parts)).unwrap();
    team.train_epoch(&Epoch::new(p.x.view(), &p.labels, &p.order, sizes, batch_size).unwrap(), batch_size, 3.0);
    (team.weights().iter().map(|w| w.to_owned()).collect(), columns(team.biases()))
}

fn rest_epoch(p: &Problem, sizes: &[usize], isa: Isa, threads: usize, parts: usize, rest: Rest, batch_size: usize) -> Params {
    let mut team = FusedParallel::new(&views(&p.weights), &views(&p.biases), Some(isa), threads, Some(parts)).unwrap();
    team.set_rest(Some(rest));
    team.train_epoch(&Epoch::new(p.x.view(), &p.labels, &p.order, sizes, batch_size).unwrap(), batch_size, 3.0);
    (team.weights().iter().map(|w| w.to_owned()).collect(), columns(team.biases()))
}

#[test]
fn one_part_gives_the_tiles_kernels_bits_and_more_parts_the_same_bits_on_any_thread_count() {
    // Hidden widths that are not whole vectors (padded rows of W1ᵀ), and 50
    // inputs: parts of unequal length.
    for sizes in [vec![784, 13, 10], vec![64, 17, 9, 4], vec![50, 7, 5, 3]] {
        let p = problem(&sizes, 83, 6);
        for isa in Isa::ALL.into_iter().filter(|isa| isa.supported()) {
            for batch_size in [1, 7, 10, 64] {
                let mut fused = Fused::new(&views(&p.weights), &views(&p.biases), Some(isa), None).unwrap();
                fused.set_kernel(Kernel::Tiles);
                fused.train_epoch(&Epoch::new(p.x.view(), &p.labels, &p.order, &sizes, batch_size).unwrap(), batch_size, 3.0);
                let tiles: Params = (fused.weights().iter().map(|w| w.to_owned()).collect(), columns(fused.biases()));
                let what = format!("{sizes:?} {isa:?} batch {batch_size}");
                assert!(after_epoch(&p, &sizes, isa, 1, 1, batch_size) == tiles, "{what}, one part");
                for parts in [2, 3, 4] {
                    let want = after_epoch(&p, &sizes, isa, 1, parts, batch_size);
                    // other sums' grouping: rounding apart, growing over 83 steps at batch 1
                    let gap = relative_gap(&want.0, &tiles.0);
                    assert!(gap < 1e-10, "{what}, {parts} parts: {gap}");
                    for threads in 2..=parts {
                        let got = after_epoch(&p, &sizes, isa, threads, parts, batch_size);
                        assert!(got == want, "{what}, {parts} parts on {threads} threads");
                    }
                }
            }
        }
    }
}

#[test]
fn a_mini_batch_cut_into_blocks_gives_the_bits_of_one_pass() {
    // 784 float64 inputs: a mini-batch of 200 (1.25 MB of rows) goes through
    // the tiles kernel in blocks of 60; a last one of 150 (0.94 MB) in one
    // pass, as does the team with one part, which the tiles kernel matches
    // bit for bit. Batch 190 ends in a block of two sweeps, fewer than three
    // threads; odd and even counts of mini-batches leave W1ᵀ in either buffer.
    for (n, batch) in [(550, 200), (400, 200), (610, 190)] {
        for sizes in [vec![784, 13, 10], vec![784, 17, 9, 4]] {
            let p = problem(&sizes, n, 9);
            let epoch = Epoch::new(p.x.view(), &p.labels, &p.order, &sizes, batch).unwrap();
            let mut net = Network::new(p.weights.clone(), p.biases.clone()).unwrap();
            net.train_epoch(&epoch, batch, 3.0);
            for isa in Isa::ALL.into_iter().filter(|isa| isa.supported()) {
                let what = format!("{n} samples, batch {batch}, {sizes:?} {isa:?}");
                let mut fused = Fused::new(&views(&p.weights), &views(&p.biases), Some(isa), None).unwrap();
                fused.set_kernel(Kernel::Tiles);
                assert_eq!(fused.block_samples(batch), Some(60));
                fused.train_epoch(&epoch, batch, 3.0);
                let tiles: Params = (fused.weights().iter().map(|w| w.to_owned()).collect(), columns(fused.biases()));
                assert!(after_epoch(&p, &sizes, isa, 1, 1, batch) == tiles, "{what}");
                let gap = relative_gap(&tiles.0, &net.weights).max(relative_gap(&tiles.1, &net.biases));
                assert!(gap < 1e-12, "{what}: {gap}");
                // The balanced way does not cut the mini-batch: the blocked
                // team, whole or by samples, on any thread count, gives its bits.
                for parts in [1, 2, 3] {
                    let want = rest_epoch(&p, &sizes, isa, parts, parts, Rest::Balanced, batch);
                    for threads in 1..=parts {
                        for rest in [Rest::Whole, Rest::BySamples] {
                            let got = rest_epoch(&p, &sizes, isa, threads, parts, rest, batch);
                            assert!(got == want, "{what}, {parts} parts, {threads} threads, {rest:?}");
                        }
                    }
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
    for (threads, parts) in [(2, 2), (3, 4)] {
        let (w, b) = after_epoch(&p, &sizes, Isa::detect(), threads, parts, 10);
        assert!(relative_gap(&w, &net.weights) < 1e-12 && relative_gap(&b, &net.biases) < 1e-12);
    }
}

#[test]
fn parts_are_capped_by_the_lines_of_a_row_and_threads_by_the_parts() {
    // One lane: rows of W1ᵀ of 5 float64, 40 bytes, so 8 rows make whole lines
    // and 20 inputs two parts at most.
    let p = problem(&[20, 5, 3], 10, 8);
    let new = |threads, parts| FusedParallel::new(&views(&p.weights), &views(&p.biases), Some(Isa::Baseline), threads, parts);
    let team = new(8, None).unwrap();
    assert_eq!((team.threads(), team.parts()), (2, 2));
    assert_eq!(team.features_per_part(), vec![8, 12]);
    let team = new(2, Some(1)).unwrap();
    assert_eq!((team.threads(), team.parts(), team.features_per_part()), (1, 1, vec![20]));
    assert!(new(0, None).is_err() && new(1, Some(0)).is_err());
}
