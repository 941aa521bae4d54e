//! Loops the compiler vectorises for whichever CPU runs them.
//!
//! Every kernel is written once, generic over the element type, the number of
//! lanes `L` and whether a*b+c is one fused multiply-add, as `#[inline(always)]`
//! code; `fused` instantiates it inside functions compiled with
//! `#[target_feature]` for AVX-512, for AVX2 with FMA and for plain x86-64, and
//! picks one at run time from what the CPU reports (`Isa::detect`). Rust does not
//! reassociate floating-point sums, so a dot product keeps `L` partial sums per
//! sample in an array: lane l only ever adds elements l, l+L, l+2L, ..., which
//! LLVM maps to vector registers without changing the order of any addition.

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

    /// The widest set the running CPU supports.
    pub fn detect() -> Isa {
        Isa::ALL.into_iter().find(|isa| isa.supported()).unwrap_or(Isa::Baseline)
    }
}

/// a*b + c: one rounding (FMA) where the CPU has it, two elsewhere (a libm fma
/// call per element would be far slower than the separate multiply and add).
pub trait MulAdd {
    fn mul_add<T: Real>(a: T, b: T, c: T) -> T;
}

pub struct Fma;
pub struct Separate;

impl MulAdd for Fma {
    #[inline(always)]
    fn mul_add<T: Real>(a: T, b: T, c: T) -> T {
        a.mul_add(b, c)
    }
}

impl MulAdd for Separate {
    #[inline(always)]
    fn mul_add<T: Real>(a: T, b: T, c: T) -> T {
        a * b + c
    }
}

/// Samples per sweep over a weight row: every weight loaded feeds five
/// multiply-adds, and five 784-wide input rows (31 KB in f64) stay in L1.
pub const SWEEP: usize = 5;

#[inline(always)]
fn block<T, const L: usize>(s: &[T], k: usize) -> &[T; L] {
    s[k..k + L].try_into().expect("a whole block inside the row")
}

#[inline(always)]
fn block_mut<T, const L: usize>(s: &mut [T], k: usize) -> &mut [T; L] {
    (&mut s[k..k + L]).try_into().expect("a whole block inside the row")
}

/// The sum of the lanes, pairwise.
#[inline(always)]
fn lane_sum<T: Real, const L: usize>(mut lanes: [T; L]) -> T {
    let mut width = L;
    while width > 1 {
        width /= 2;
        for l in 0..width {
            lanes[l] = lanes[l] + lanes[l + width];
        }
    }
    lanes[0]
}

/// The five dot products w . x_q in one sweep over w.
#[inline(always)]
pub fn dot5<T: Real, F: MulAdd, const L: usize>(w: &[T], x: [&[T]; SWEEP]) -> [T; SWEEP] {
    let n = w.len();
    let x = x.map(|row| &row[..n]);
    let full = n - n % L;
    let mut acc = [[T::zero(); L]; SWEEP];
    let mut k = 0;
    while k < full {
        let wb = block::<T, L>(w, k);
        for q in 0..SWEEP {
            let xb = block::<T, L>(x[q], k);
            for l in 0..L {
                acc[q][l] = F::mul_add(wb[l], xb[l], acc[q][l]);
            }
        }
        k += L;
    }
    let mut out = [T::zero(); SWEEP];
    for q in 0..SWEEP {
        let mut s = lane_sum(acc[q]);
        for k in full..n {
            s = F::mul_add(w[k], x[q][k], s);
        }
        out[q] = s;
    }
    out
}

/// w -= sum_q d_q x_q, in one sweep over w.
#[inline(always)]
pub fn sub_outer5<T: Real, F: MulAdd, const L: usize>(w: &mut [T], d: [T; SWEEP], x: [&[T]; SWEEP]) {
    let n = w.len();
    let x = x.map(|row| &row[..n]);
    let minus = d.map(|v| -v);
    let full = n - n % L;
    let mut k = 0;
    while k < full {
        let wb = block_mut::<T, L>(w, k);
        for q in 0..SWEEP {
            let xb = block::<T, L>(x[q], k);
            for l in 0..L {
                wb[l] = F::mul_add(minus[q], xb[l], wb[l]);
            }
        }
        k += L;
    }
    for k in full..n {
        for q in 0..SWEEP {
            w[k] = F::mul_add(minus[q], x[q][k], w[k]);
        }
    }
}

/// o_q += d_q w for the five rows o_q, in one sweep over w.
#[inline(always)]
pub fn add_outer5<T: Real, F: MulAdd, const L: usize>(
    w: &[T],
    d: [T; SWEEP],
    o: &mut [&mut [T]; SWEEP],
) {
    let n = w.len();
    let full = n - n % L;
    let mut k = 0;
    while k < full {
        let wb = block::<T, L>(w, k);
        for q in 0..SWEEP {
            let ob = block_mut::<T, L>(o[q], k);
            for l in 0..L {
                ob[l] = F::mul_add(d[q], wb[l], ob[l]);
            }
        }
        k += L;
    }
    for k in full..n {
        for q in 0..SWEEP {
            o[q][k] = F::mul_add(d[q], w[k], o[q][k]);
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
    const LN2_HI: f64 = 0.693_147_180_369_123_816_49; // ln 2 to 32 bits: n * LN2_HI is exact
    const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
    let x = if x < -708.0 { -708.0 } else if x > 709.0 { 709.0 } else { x };
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
    const LN2_HI: f32 = 0.693_359_375;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let x = if x < -87.0 { -87.0 } else if x > 88.0 { 88.0 } else { x };
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
            let got = dot5::<f64, Fma, 8>(&r[0], x);
            for q in 0..SWEEP {
                let want: f64 = r[0].iter().zip(x[q]).map(|(a, b)| a * b).sum();
                assert!((got[q] - want).abs() <= 1e-13 * (1.0 + want.abs()), "n={n} q={q}");
            }
        }
    }

    #[test]
    fn outer_products_add_and_subtract_every_row() {
        let n = 37;
        let r = rows(n, 3);
        let d = [0.5, -1.0, 2.0, 0.25, 3.0];
        let x = [&r[1][..], &r[2], &r[3], &r[4], &r[5]];
        let mut w = r[0].clone();
        sub_outer5::<f64, Separate, 8>(&mut w, d, x);
        let mut o: Vec<Vec<f64>> = (0..SWEEP).map(|_| vec![1.0; n]).collect();
        {
            let [a, b, c, e, f] = &mut o[..] else { unreachable!() };
            add_outer5::<f64, Fma, 4>(&r[0], d, &mut [&mut a[..], b, c, e, f]);
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
