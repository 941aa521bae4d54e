//! The vector loops of the fused kernel, for whichever CPU runs them.
//!
//! Every kernel is written once, generic over a `Vector` (a register of f64 or
//! f32 lanes: AVX-512, AVX2 with FMA, or one scalar), as `#[inline(always)]`
//! code; `fused` instantiates it inside functions compiled with
//! `#[target_feature]` for each instruction set and picks one at run time from
//! what the CPU reports (`Isa::detect`). The vectors are explicit because Rust
//! does not reassociate floating-point sums: left to itself LLVM cannot split a
//! dot product into vector partial sums, and its straight-line vectoriser
//! packed the five samples of a sweep across lanes instead. The sigmoid is a
//! plain loop over a run of values, which LLVM vectorises by itself once exp
//! is arithmetic rather than a libm call.

use num_traits::Zero;

use crate::real::Real;

/// The instruction sets the fused kernel is compiled for, widest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    Avx512,
    Avx2Fma,
    Baseline,
}

impl Isa {
    pub const ALL: [Isa; 3] = [Isa::Avx512, Isa::Avx2Fma, Isa::Baseline];

    pub fn name(self) -> &'static str {
        match self {
            Isa::Avx512 => "avx512",
            Isa::Avx2Fma => "avx2+fma",
            Isa::Baseline => "x86-64",
        }
    }

    pub fn from_name(name: &str) -> Option<Isa> {
        Isa::ALL.into_iter().find(|isa| isa.name() == name)
    }

    /// Whether the running CPU can execute code compiled for this set.
    pub fn supported(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            match self {
                Isa::Avx512 => {
                    is_x86_feature_detected!("avx512f")
                        && is_x86_feature_detected!("avx512vl")
                        && is_x86_feature_detected!("avx512dq")
                        && is_x86_feature_detected!("fma")
                }
                Isa::Avx2Fma => is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
                Isa::Baseline => true,
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            self == Isa::Baseline
        }
    }

    /// Elements of type T in one of this set's vector registers.
    pub fn lanes<T>(self) -> usize {
        match self {
            Isa::Avx512 => 64 / std::mem::size_of::<T>(),
            Isa::Avx2Fma => 32 / std::mem::size_of::<T>(),
            Isa::Baseline => 1,
        }
    }

    /// The widest set the running CPU supports.
    pub fn detect() -> Isa {
        Isa::ALL.into_iter().find(|isa| isa.supported()).unwrap_or(Isa::Baseline)
    }
}

/// A vector register of `LANES` elements and the few operations the kernels
/// need. The methods wrap `std::arch` intrinsics and are inlined into the
/// `#[target_feature]` functions of `fused`, where the intrinsics' features are
/// enabled; `Scalar` is the one-lane version for CPUs without AVX2.
///
/// # Safety
/// `load` and `store` touch `LANES` elements from the pointer; the intrinsic
/// versions may only run on a CPU that has their features (`Isa::supported`).
#[allow(clippy::missing_safety_doc)] // the trait's Safety section covers every method
pub trait Vector: Copy {
    type Elem: Real;
    const LANES: usize;
    /// The vector registers of the instruction set: how large a tile of
    /// accumulators the kernels may keep (`tiles::tile_vectors`).
    const REGISTERS: usize;
    unsafe fn splat(v: Self::Elem) -> Self;
    unsafe fn load(p: *const Self::Elem) -> Self;
    unsafe fn store(self, p: *mut Self::Elem);
    /// a * b + c, one fused multiply-add where the CPU has it.
    unsafe fn mul_add(a: Self, b: Self, c: Self) -> Self;
    unsafe fn sum(self) -> Self::Elem;
}

#[derive(Clone, Copy)]
pub struct Scalar<T>(T);

impl<T: Real> Vector for Scalar<T> {
    type Elem = T;
    const LANES: usize = 1;
    const REGISTERS: usize = 16;
    #[inline(always)]
    unsafe fn splat(v: T) -> Self {
        Scalar(v)
    }
    #[inline(always)]
    unsafe fn load(p: *const T) -> Self {
        Scalar(unsafe { *p })
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut T) {
        unsafe { *p = self.0 }
    }
    #[inline(always)]
    unsafe fn mul_add(a: Self, b: Self, c: Self) -> Self {
        Scalar(a.0 * b.0 + c.0) // a libm fma call per element would be far slower
    }
    #[inline(always)]
    unsafe fn sum(self) -> T {
        self.0
    }
}

macro_rules! vector {
    ($name:ident, $reg:ty, $t:ty, $lanes:literal, $registers:literal, $set1:ident, $loadu:ident, $storeu:ident,
     $fmadd:ident, $sum:expr) => {
        #[cfg(target_arch = "x86_64")]
        #[derive(Clone, Copy)]
        pub struct $name($reg);

        #[cfg(target_arch = "x86_64")]
        impl Vector for $name {
            type Elem = $t;
            const LANES: usize = $lanes;
            const REGISTERS: usize = $registers;
            #[inline(always)]
            unsafe fn splat(v: $t) -> Self {
                $name(unsafe { arch::$set1(v) })
            }
            #[inline(always)]
            unsafe fn load(p: *const $t) -> Self {
                $name(unsafe { arch::$loadu(p) })
            }
            #[inline(always)]
            unsafe fn store(self, p: *mut $t) {
                unsafe { arch::$storeu(p, self.0) }
            }
            #[inline(always)]
            unsafe fn mul_add(a: Self, b: Self, c: Self) -> Self {
                $name(unsafe { arch::$fmadd(a.0, b.0, c.0) })
            }
            #[inline(always)]
            unsafe fn sum(self) -> $t {
                let lanes: [$t; $lanes] = unsafe { std::mem::transmute(self.0) };
                $sum(lanes)
            }
        }
    };
}

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64 as arch;

vector!(F64x8, arch::__m512d, f64, 8, 32, _mm512_set1_pd, _mm512_loadu_pd, _mm512_storeu_pd,
        _mm512_fmadd_pd, lane_sum::<f64, 8>);
vector!(F32x16, arch::__m512, f32, 16, 32, _mm512_set1_ps, _mm512_loadu_ps, _mm512_storeu_ps,
        _mm512_fmadd_ps, lane_sum::<f32, 16>);
vector!(F64x4, arch::__m256d, f64, 4, 16, _mm256_set1_pd, _mm256_loadu_pd, _mm256_storeu_pd,
        _mm256_fmadd_pd, lane_sum::<f64, 4>);
vector!(F32x8, arch::__m256, f32, 8, 16, _mm256_set1_ps, _mm256_loadu_ps, _mm256_storeu_ps,
        _mm256_fmadd_ps, lane_sum::<f32, 8>);

/// Samples per sweep over a weight row: every weight loaded feeds five
/// multiply-adds, and five 784-wide input rows (31 KB in f64) stay in L1.
pub const SWEEP: usize = 5;

/// The sum of the lanes, pairwise.
#[inline(always)]
fn lane_sum<T: Real, const L: usize>(mut lanes: [T; L]) -> T {
    let mut width = L;
    while width > 1 {
        width /= 2;
        for l in 0..width {
            lanes[l] += lanes[l + width];
        }
    }
    lanes[0]
}

/// The five dot products w . x_q in one sweep over w.
///
/// # Safety
/// Only on a CPU with `V`'s features.
#[inline(always)]
pub unsafe fn dot5<V: Vector>(w: &[V::Elem], x: [&[V::Elem]; SWEEP]) -> [V::Elem; SWEEP] {
    let n = w.len();
    let x = x.map(|row| &row[..n]); // every row as long as w: the loads below stay inside
    let full = n - n % V::LANES;
    let mut acc = [unsafe { V::splat(V::Elem::zero()) }; SWEEP];
    let mut k = 0;
    while k < full {
        unsafe {
            let wv = V::load(w.as_ptr().add(k));
            for q in 0..SWEEP {
                acc[q] = V::mul_add(wv, V::load(x[q].as_ptr().add(k)), acc[q]);
            }
        }
        k += V::LANES;
    }
    let mut out = [V::Elem::zero(); SWEEP];
    for q in 0..SWEEP {
        let mut s = unsafe { acc[q].sum() };
        for k in full..n {
            s += w[k] * x[q][k];
        }
        out[q] = s;
    }
    out
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
    let full = n - n % V::LANES;
    let zero = unsafe { V::splat(V::Elem::zero()) };
    let (mut a0, mut a1) = ([zero; SWEEP], [zero; SWEEP]);
    let mut k = 0;
    while k < full {
        unsafe {
            let (v0, v1) = (V::load(w0.as_ptr().add(k)), V::load(w1.as_ptr().add(k)));
            for q in 0..SWEEP {
                let xv = V::load(x[q].as_ptr().add(k));
                a0[q] = V::mul_add(v0, xv, a0[q]);
                a1[q] = V::mul_add(v1, xv, a1[q]);
            }
        }
        k += V::LANES;
    }
    let mut out = [[V::Elem::zero(); SWEEP]; 2];
    for q in 0..SWEEP {
        let (mut s0, mut s1) = unsafe { (a0[q].sum(), a1[q].sum()) };
        for k in full..n {
            s0 += w0[k] * x[q][k];
            s1 += w1[k] * x[q][k];
        }
        out[0][q] = s0;
        out[1][q] = s1;
    }
    out
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
    let full = n - n % V::LANES;
    let mut k = 0;
    while k < full {
        unsafe {
            let (p0, p1) = (w0.as_mut_ptr().add(k), w1.as_mut_ptr().add(k));
            let (mut v0, mut v1) = (V::load(p0), V::load(p1));
            for q in 0..SWEEP {
                let xv = V::load(x[q].as_ptr().add(k));
                v0 = V::mul_add(minus[0][q], xv, v0);
                v1 = V::mul_add(minus[1][q], xv, v1);
            }
            v0.store(p0);
            v1.store(p1);
        }
        k += V::LANES;
    }
    for k in full..n {
        for q in 0..SWEEP {
            w0[k] -= d[0][q] * x[q][k];
            w1[k] -= d[1][q] * x[q][k];
        }
    }
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
    let full = n - n % V::LANES;
    let mut k = 0;
    while k < full {
        unsafe {
            let p = w.as_mut_ptr().add(k);
            let mut wv = V::load(p);
            for q in 0..SWEEP {
                wv = V::mul_add(minus[q], V::load(x[q].as_ptr().add(k)), wv);
            }
            wv.store(p);
        }
        k += V::LANES;
    }
    for k in full..n {
        for q in 0..SWEEP {
            w[k] -= d[q] * x[q][k];
        }
    }
}

/// o_q += d_q w for the five rows o_q, in one sweep over w.
///
/// # Safety
/// Only on a CPU with `V`'s features.
#[inline(always)]
pub unsafe fn add_outer5<V: Vector>(w: &[V::Elem], d: [V::Elem; SWEEP], o: &mut [&mut [V::Elem]; SWEEP]) {
    let n = w.len();
    for row in o.iter() {
        assert!(row.len() >= n, "output rows as long as w");
    }
    let dv = d.map(|v| unsafe { V::splat(v) });
    let full = n - n % V::LANES;
    let mut k = 0;
    while k < full {
        unsafe {
            let wv = V::load(w.as_ptr().add(k));
            for q in 0..SWEEP {
                let p = o[q].as_mut_ptr().add(k);
                V::mul_add(dv[q], wv, V::load(p)).store(p);
            }
        }
        k += V::LANES;
    }
    for k in full..n {
        for q in 0..SWEEP {
            o[q][k] += d[q] * w[k];
        }
    }
}

/// z <- 1 / (1 + e^-z) over a run of values, with an exp the compiler vectorises.
#[inline(always)]
pub fn sigmoid_in_place<T: Real>(z: &mut [T]) {
    for v in z.iter_mut() {
        *v = T::one() / (T::one() + (-*v).exp_vectorisable());
    }
}

/// exp(x) within about 1 ulp for x in [-708, 709], clamped outside it (which
/// moves a sigmoid by less than 1e-307). x = n ln2 + r with |r| <= ln2/2; e^r
/// by Horner's rule on its Taylor series to r^13 (the remainder is below 5e-18
/// of the result); 2^n built in the exponent bits. Adding 1.5 * 2^52 rounds
/// x/ln2 to an integer n and leaves n in the low bits, so nothing converts a
/// float to an integer (which AVX2 cannot do in vectors).
#[inline(always)]
pub fn exp64(x: f64) -> f64 {
    const ROUND: f64 = 6755399441055744.0; // 1.5 * 2^52
    const LN2_HI: f64 = 0.693_147_180_369_123_8; // ln 2 to 32 bits: n * LN2_HI is exact
    const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
    let x = x.clamp(-708.0, 709.0); // NaN stays NaN
    let t = x * std::f64::consts::LOG2_E + ROUND;
    let n = t - ROUND;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let mut p = 1.0 / 6_227_020_800.0; // 1/13!
    for c in [
        1.0 / 479_001_600.0,
        1.0 / 39_916_800.0,
        1.0 / 3_628_800.0,
        1.0 / 362_880.0,
        1.0 / 40_320.0,
        1.0 / 5_040.0,
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
        1.0,
        1.0,
    ] {
        p = p * r + c;
    }
    p * f64::from_bits(t.to_bits().wrapping_add(1023) << 52)
}

/// exp(x) in f32 within 2 ulp for x in [-87, 88], clamped outside (a sigmoid
/// moves by less than 1e-38): as `exp64`, to r^7.
#[inline(always)]
pub fn exp32(x: f32) -> f32 {
    const ROUND: f32 = 12_582_912.0; // 1.5 * 2^23
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let x = x.clamp(-87.0, 88.0);
    let t = x * std::f32::consts::LOG2_E + ROUND;
    let n = t - ROUND;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let mut p = 1.0 / 5_040.0;
    for c in [1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0] {
        p = p * r + c;
    }
    p * f32::from_bits(t.to_bits().wrapping_add(127) << 23)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp64_is_within_two_ulp_of_libm() {
        let mut x: f64 = -708.0;
        while x < 709.0 {
            let (want, got) = (x.exp(), exp64(x));
            assert!(((got - want) / want).abs() < 4.5e-16, "exp64({x}) = {got}, libm {want}");
            x += 0.0137;
        }
        assert!(exp64(f64::NAN).is_nan());
        assert!(exp64(-1e4) > 0.0 && exp64(-1e4) < 1e-307);
    }

    #[test]
    fn exp32_is_within_three_ulp_of_libm() {
        let mut x = -87.0f32;
        while x < 88.0 {
            let (want, got) = ((x as f64).exp(), exp32(x) as f64);
            assert!(((got - want) / want).abs() < 3.6e-7, "exp32({x}) = {got}, exact {want}");
            x += 0.0071;
        }
    }

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
    fn outer_products_add_and_subtract_every_row() {
        let n = 37;
        let r = rows(n, 3);
        let d = [0.5, -1.0, 2.0, 0.25, 3.0];
        let x = [&r[1][..], &r[2], &r[3], &r[4], &r[5]];
        let mut w = r[0].clone();
        unsafe { sub_outer5::<Scalar<f64>>(&mut w, d, x) };
        let mut o: Vec<Vec<f64>> = (0..SWEEP).map(|_| vec![1.0; n]).collect();
        {
            let [a, b, c, e, f] = &mut o[..] else { unreachable!() };
            unsafe { add_outer5::<Scalar<f64>>(&r[0], d, &mut [&mut a[..], b, c, e, f]) };
        }
        for k in 0..n {
            let want: f64 = r[0][k] - (0..SWEEP).map(|q| d[q] * x[q][k]).sum::<f64>();
            assert!((w[k] - want).abs() < 1e-14);
            for q in 0..SWEEP {
                assert!((o[q][k] - (1.0 + d[q] * r[0][k])).abs() < 1e-15);
            }
        }
    }

    #[test]
    fn detection_picks_a_supported_set() {
        assert!(Isa::detect().supported());
        assert!(Isa::Baseline.supported());
        assert_eq!(Isa::from_name(Isa::detect().name()), Some(Isa::detect()));
    }
}
