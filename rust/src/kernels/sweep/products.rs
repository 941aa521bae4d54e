//! The sweep's vector loops: the dot products and outer products of five
//! samples with one weight row or two, in one pass over the row. Each is
//! written once for the whole vectors and the row's tail (`along!`).

use num_traits::Zero;

use crate::kernels::layout::SWEEP;
use crate::kernels::vector::Vector;

// Each kernel's step over one vector is written once, for `lanes` either
// `V::LANES` (the whole vectors: a constant, so `load_n` and `store_n` fold to
// plain loads and stores) or the fewer left at the row's tail (masked), and
// `along!` lays it out as two loops, the whole vectors and then the tail.
// Measured in one process against the two forms written out by hand,
// interleaved, it runs the same (-3% to +1.5%). Two other folds lost, and are not used: one loop
// with the lane count computed per step (`(n - k).min(V::LANES)`, the masked
// tail inside the loop) made AVX2 epochs up to 1.5x slower (a sweep at batch
// 10, [784, 30, 10], f32 18.8 -> 24-28 ms), and a closure passed to a helper
// function, which LLVM left out of line, 25-60x; hence a macro.

/// Runs `$step(k, lanes)` for the vectors along a row of `$n`: every whole
/// vector with `lanes` = `V::LANES`, then the tail, if any, with the rest.
macro_rules! along {
    ($v:ty, $n:expr, |$k:ident, $lanes:ident| $step:block) => {{
        let n = $n;
        let full = n - n % <$v>::LANES;
        let mut $k = 0;
        while $k < full {
            let $lanes = <$v>::LANES;
            $step
            $k += <$v>::LANES;
        }
        if full < n {
            let ($k, $lanes) = (full, n - full);
            $step
        }
    }};
}

/// The five dot products w . x_q in one sweep over w.
///
/// # Safety
/// Only on a CPU with `V`'s features.
#[inline(always)]
pub unsafe fn dot5<V: Vector>(w: &[V::Elem], x: [&[V::Elem]; SWEEP]) -> [V::Elem; SWEEP] {
    let n = w.len();
    let x = x.map(|row| &row[..n]); // every row as long as w: the loads below stay inside
    let mut acc = [unsafe { V::splat(V::Elem::zero()) }; SWEEP];
    along!(V, n, |k, lanes| {
        unsafe {
            let wv = V::load_n(w.as_ptr().add(k), lanes);
            for q in 0..SWEEP {
                acc[q] = V::mul_add(wv, V::load_n(x[q].as_ptr().add(k), lanes), acc[q]);
            }
        }
    });
    acc.map(|a| unsafe { a.sum() })
}

/// The dot products of two weight rows with the same five samples, in one
/// sweep: each input loaded feeds two multiply-adds (7 loads per 10 FMAs
/// instead of 6 per 5), which is what bounds these loops.
///
/// # Safety
/// Only on a CPU with `V`'s features.
#[inline(always)]
pub unsafe fn dot5x2<V: Vector>(
    w0: &[V::Elem],
    w1: &[V::Elem],
    x: [&[V::Elem]; SWEEP],
) -> [[V::Elem; SWEEP]; 2] {
    let n = w0.len();
    let w1 = &w1[..n];
    let x = x.map(|row| &row[..n]);
    let zero = unsafe { V::splat(V::Elem::zero()) };
    let (mut a0, mut a1) = ([zero; SWEEP], [zero; SWEEP]);
    along!(V, n, |k, lanes| {
        unsafe {
            let (v0, v1) = (V::load_n(w0.as_ptr().add(k), lanes), V::load_n(w1.as_ptr().add(k), lanes));
            for q in 0..SWEEP {
                let xv = V::load_n(x[q].as_ptr().add(k), lanes);
                a0[q] = V::mul_add(v0, xv, a0[q]);
                a1[q] = V::mul_add(v1, xv, a1[q]);
            }
        }
    });
    [a0.map(|a| unsafe { a.sum() }), a1.map(|a| unsafe { a.sum() })]
}

/// w0 -= sum_q d0_q x_q and w1 -= sum_q d1_q x_q in one sweep, sharing the loads of x.
///
/// # Safety
/// Only on a CPU with `V`'s features.
#[inline(always)]
pub unsafe fn sub_outer5x2<V: Vector>(
    w0: &mut [V::Elem],
    w1: &mut [V::Elem],
    d: [[V::Elem; SWEEP]; 2],
    x: [&[V::Elem]; SWEEP],
) {
    let n = w0.len();
    let w1 = &mut w1[..n];
    let x = x.map(|row| &row[..n]);
    let minus = d.map(|row| row.map(|v| unsafe { V::splat(-v) }));
    along!(V, n, |k, lanes| {
        unsafe {
            let (p0, p1) = (w0.as_mut_ptr().add(k), w1.as_mut_ptr().add(k));
            let (mut v0, mut v1) = (V::load_n(p0, lanes), V::load_n(p1, lanes));
            for q in 0..SWEEP {
                let xv = V::load_n(x[q].as_ptr().add(k), lanes);
                v0 = V::mul_add(minus[0][q], xv, v0);
                v1 = V::mul_add(minus[1][q], xv, v1);
            }
            v0.store_n(p0, lanes);
            v1.store_n(p1, lanes);
        }
    });
}

/// w -= sum_q d_q x_q, in one sweep over w.
///
/// # Safety
/// Only on a CPU with `V`'s features.
#[inline(always)]
pub unsafe fn sub_outer5<V: Vector>(w: &mut [V::Elem], d: [V::Elem; SWEEP], x: [&[V::Elem]; SWEEP]) {
    let n = w.len();
    let x = x.map(|row| &row[..n]);
    let minus = d.map(|v| unsafe { V::splat(-v) });
    along!(V, n, |k, lanes| {
        unsafe {
            let p = w.as_mut_ptr().add(k);
            let mut wv = V::load_n(p, lanes);
            for q in 0..SWEEP {
                wv = V::mul_add(minus[q], V::load_n(x[q].as_ptr().add(k), lanes), wv);
            }
            wv.store_n(p, lanes);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::isa::Isa;
    use crate::kernels::vector::Scalar;
    #[cfg(target_arch = "x86_64")]
    use crate::kernels::vector::{F64x4, F64x8};

    fn rows(n: usize, seed: u64) -> Vec<Vec<f64>> {
        let mut state = seed;
        (0..SWEEP + 1)
            .map(|_| {
                (0..n)
                    .map(|_| {
                        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                        (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn dot5_equals_plain_dot_products_for_every_tail_length() {
        for n in [0, 1, 7, 8, 9, 31, 784] {
            let r = rows(n, n as u64);
            let x = [&r[1][..], &r[2], &r[3], &r[4], &r[5]];
            let mut results = vec![unsafe { dot5::<Scalar<f64>>(&r[0], x) }];
            #[cfg(target_arch = "x86_64")]
            {
                if Isa::Avx2Fma.supported() {
                    results.push(unsafe { dot5::<F64x4>(&r[0], x) });
                }
                if Isa::Avx512.supported() {
                    results.push(unsafe { dot5::<F64x8>(&r[0], x) });
                }
            }
            for got in results {
                for q in 0..SWEEP {
                    let want: f64 = r[0].iter().zip(x[q]).map(|(a, b)| a * b).sum();
                    assert!((got[q] - want).abs() <= 1e-13 * (1.0 + want.abs()), "n={n} q={q}");
                }
            }
        }
    }

    #[test]
    fn paired_rows_equal_single_rows() {
        for n in [3, 8, 37, 784] {
            let r = rows(n, 7 + n as u64);
            let w1: Vec<f64> = r[0].iter().map(|v| 0.5 - v).collect();
            let x = [&r[1][..], &r[2], &r[3], &r[4], &r[5]];
            let pair = unsafe { dot5x2::<Scalar<f64>>(&r[0], &w1, x) };
            assert_eq!(pair[0], unsafe { dot5::<Scalar<f64>>(&r[0], x) });
            assert_eq!(pair[1], unsafe { dot5::<Scalar<f64>>(&w1, x) });
            let d = [[0.5, -1.0, 2.0, 0.25, 3.0], [1.5, 0.0, -2.0, 0.75, -3.0]];
            let (mut a0, mut a1) = (r[0].clone(), w1.clone());
            unsafe { sub_outer5x2::<Scalar<f64>>(&mut a0, &mut a1, d, x) };
            let (mut b0, mut b1) = (r[0].clone(), w1.clone());
            unsafe {
                sub_outer5::<Scalar<f64>>(&mut b0, d[0], x);
                sub_outer5::<Scalar<f64>>(&mut b1, d[1], x);
            }
            assert_eq!((a0, a1), (b0, b1));
        }
    }

    #[test]
    fn outer_products_subtract_from_every_element() {
        let n = 37;
        let r = rows(n, 3);
        let d = [0.5, -1.0, 2.0, 0.25, 3.0];
        let x = [&r[1][..], &r[2], &r[3], &r[4], &r[5]];
        let mut w = r[0].clone();
        unsafe { sub_outer5::<Scalar<f64>>(&mut w, d, x) };
        for k in 0..n {
            let want: f64 = r[0][k] - (0..SWEEP).map(|q| d[q] * x[q][k]).sum::<f64>();
            assert!((w[k] - want).abs() < 1e-14);
        }
    }
}
