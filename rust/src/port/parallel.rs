//! The per-sample port with the samples of each mini-batch spread over rayon's
//! threads, as the original experiment tried. Each sample's (nabla_b, nabla_w)
//! comes back in sample order (`collect` keeps it) and is summed in that order,
//! exactly as the sequential port sums them: the result is the same bits
//! whatever the thread count.

use rayon::prelude::*;
use rayon::ThreadPool;

use super::network::{zero_vec_like, Gradients, Network};
use crate::data::Epoch;
use crate::real::Real;

/// A pool of exactly `threads` workers, kept for the trainer's lifetime.
pub fn pool(threads: usize) -> Result<ThreadPool, String> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("nndl-rayon-{i}"))
        .build()
        .map_err(|e| format!("cannot start {threads} rayon threads: {e}"))
}

pub fn train_epoch<T: Real>(
    net: &mut Network<T>,
    data: &Epoch<T>,
    batch_size: usize,
    eta: f64,
    pool: &ThreadPool,
) {
    for mini_batch in data.order.chunks(batch_size) {
        update_mini_batch(net, data, mini_batch, T::of(eta), pool);
    }
}

pub fn update_mini_batch<T: Real>(
    net: &mut Network<T>,
    data: &Epoch<T>,
    mini_batch_indices: &[i64],
    eta: T,
    pool: &ThreadPool,
) {
    let shared: &Network<T> = net;
    let per_sample: Vec<Gradients<T>> = pool.install(|| {
        mini_batch_indices
            .par_iter()
            .map(|&i| {
                let (x, label) = data.sample(i);
                shared.backprop(x, label)
            })
            .collect()
    });
    let mut nabla_b = zero_vec_like(&net.biases);
    let mut nabla_w = zero_vec_like(&net.weights);
    for (delta_nabla_b, delta_nabla_w) in &per_sample {
        for (nb, dnb) in nabla_b.iter_mut().zip(delta_nabla_b) {
            *nb += dnb;
        }
        for (nw, dnw) in nabla_w.iter_mut().zip(delta_nabla_w) {
            *nw += dnw;
        }
    }
    net.apply(&nabla_b, &nabla_w, mini_batch_indices.len(), eta);
}
