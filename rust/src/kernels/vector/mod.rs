//! The registers the kernels compute in, for whichever CPU runs them: the
//! `Vector` trait and its AVX-512, AVX2 and scalar forms, the element types
//! they hold (`Lane`, with an exp the compiler vectorises), the guard that
//! flushes subnormal numbers to zero, and the prefetch hint.
//!
//! Every kernel is written once, generic over a `Vector` (a register of f64 or
//! f32 lanes: AVX-512, AVX2 with FMA, or one scalar), as `#[inline(always)]`
//! code, and instantiated inside functions compiled with `#[target_feature]`
//! for each instruction set (`isa::dispatch`), one of which runs, picked from
//! what the CPU reports (`Isa::detect`). The vectors are explicit because Rust
//! does not reassociate floating-point sums: left to itself LLVM cannot split a
//! dot product into vector partial sums, and its straight-line vectoriser
//! packed the five samples of a sweep across lanes instead. The sigmoid is a
//! plain loop over a run of values, which LLVM vectorises by itself once exp
//! is arithmetic rather than a libm call.

mod exp;

pub use self::exp::{exp32, exp64};

use crate::real::Real;

/// The element types the vectors hold, f64 and f32: each with its vector for
/// every instruction set, and an exp in arithmetic the compiler can vectorise
/// (no libm call).
pub trait Lane: Real {
    /// The AVX-512 register of this type.
    #[cfg(target_arch = "x86_64")]
    type Avx512: Vector<Elem = Self>;
    /// The AVX2 register of this type.
    #[cfg(target_arch = "x86_64")]
    type Avx2: Vector<Elem = Self>;
    /// e^x, see `exp64`; `fused`: its polynomial in fused multiply-adds.
    fn exp_vectorisable(self, fused: bool) -> Self;
}

impl Lane for f64 {
    #[cfg(target_arch = "x86_64")]
    type Avx512 = F64x8;
    #[cfg(target_arch = "x86_64")]
    type Avx2 = F64x4;
    #[inline(always)]
    fn exp_vectorisable(self, fused: bool) -> Self {
        exp64(self, fused)
    }
}

impl Lane for f32 {
    #[cfg(target_arch = "x86_64")]
    type Avx512 = F32x16;
    #[cfg(target_arch = "x86_64")]
    type Avx2 = F32x8;
    #[inline(always)]
    fn exp_vectorisable(self, fused: bool) -> Self {
        exp32(self, fused)
    }
}

/// A vector register of `LANES` elements and the few operations the kernels
/// need. The methods wrap `std::arch` intrinsics and are inlined into the
/// `#[target_feature]` functions of `isa::dispatch`, where the intrinsics' features are
/// enabled; `Scalar` is the one-lane version for CPUs without AVX2.
///
/// # Safety
/// `load` and `store` touch `LANES` elements from the pointer; the intrinsic
/// versions may only run on a CPU that has their features (`Isa::supported`).
#[allow(clippy::missing_safety_doc)] // the trait's Safety section covers every method
pub trait Vector: Copy {
    type Elem: Lane;
    const LANES: usize;
    /// The vector registers of the instruction set: how large a tile of
    /// accumulators the kernels may keep (`layout::tile_vectors`).
    const REGISTERS: usize;
    /// Whether `mul_add` is one instruction: where it is, the sigmoid's exp
    /// takes its polynomial in fused multiply-adds too.
    const FUSED: bool;
    unsafe fn splat(v: Self::Elem) -> Self;
    unsafe fn load(p: *const Self::Elem) -> Self;
    unsafe fn store(self, p: *mut Self::Elem);
    /// The first `n` (fewer than `LANES`) elements from p, zeros in the other
    /// lanes; the elements past them are not read (masked, without faults).
    unsafe fn load_first(p: *const Self::Elem, n: usize) -> Self;
    /// Stores the first `n` (fewer than `LANES`) lanes, leaving the rest of memory alone.
    unsafe fn store_first(self, p: *mut Self::Elem, n: usize);
    /// a * b + c, one fused multiply-add where the CPU has it.
    unsafe fn mul_add(a: Self, b: Self, c: Self) -> Self;
    unsafe fn sum(self) -> Self::Elem;

    /// The first `n` (at most `LANES`) elements from p: `load` when n is
    /// `LANES`, else `load_first`. Called with n a constant, as for whole
    /// vectors, the test folds away.
    #[inline(always)]
    unsafe fn load_n(p: *const Self::Elem, n: usize) -> Self {
        if n == Self::LANES {
            unsafe { Self::load(p) }
        } else {
            unsafe { Self::load_first(p, n) }
        }
    }

    /// Stores the first `n` (at most `LANES`) lanes, as `load_n` loads them.
    #[inline(always)]
    unsafe fn store_n(self, p: *mut Self::Elem, n: usize) {
        if n == Self::LANES {
            unsafe { self.store(p) }
        } else {
            unsafe { self.store_first(p, n) }
        }
    }
}

#[derive(Clone, Copy)]
pub struct Scalar<T>(T);

impl<T: Lane> Vector for Scalar<T> {
    type Elem = T;
    const LANES: usize = 1;
    const REGISTERS: usize = 16;
    const FUSED: bool = false;
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
    unsafe fn load_first(_p: *const T, _n: usize) -> Self {
        Scalar(T::zero()) // n < 1: nothing to read
    }
    #[inline(always)]
    unsafe fn store_first(self, _p: *mut T, _n: usize) {}
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
     $fmadd:ident, $sum:expr, $load_first:expr, $store_first:expr) => {
        #[cfg(target_arch = "x86_64")]
        #[derive(Clone, Copy)]
        pub struct $name($reg);

        #[cfg(target_arch = "x86_64")]
        impl Vector for $name {
            type Elem = $t;
            const LANES: usize = $lanes;
            const REGISTERS: usize = $registers;
            const FUSED: bool = true;
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
            unsafe fn load_first(p: *const $t, n: usize) -> Self {
                debug_assert!(n < $lanes);
                $name(unsafe { ($load_first)(p, n) })
            }
            #[inline(always)]
            unsafe fn store_first(self, p: *mut $t, n: usize) {
                debug_assert!(n < $lanes);
                unsafe { ($store_first)(p, n, self.0) }
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

// Masks for the first n lanes: AVX-512's are bits, AVX2's a vector of -1s
// and 0s read from a run of -1s followed by 0s.
#[cfg(target_arch = "x86_64")]
static MINUS_ONES_THEN_ZEROS: [i32; 16] = [-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0];

#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn avx2_mask_f32(n: usize) -> arch::__m256i {
    unsafe { arch::_mm256_loadu_si256(MINUS_ONES_THEN_ZEROS.as_ptr().add(8 - n) as *const arch::__m256i) }
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn avx2_mask_f64(n: usize) -> arch::__m256i {
    // two 32-bit -1s per 64-bit lane
    unsafe { arch::_mm256_loadu_si256(MINUS_ONES_THEN_ZEROS.as_ptr().add(8 - 2 * n) as *const arch::__m256i) }
}

vector!(F64x8, arch::__m512d, f64, 8, 32, _mm512_set1_pd, _mm512_loadu_pd, _mm512_storeu_pd,
        _mm512_fmadd_pd, lane_sum::<f64, 8>,
        |p, n: usize| arch::_mm512_maskz_loadu_pd(((1u32 << n) - 1) as u8, p),
        |p, n: usize, v| arch::_mm512_mask_storeu_pd(p, ((1u32 << n) - 1) as u8, v));
vector!(F32x16, arch::__m512, f32, 16, 32, _mm512_set1_ps, _mm512_loadu_ps, _mm512_storeu_ps,
        _mm512_fmadd_ps, lane_sum::<f32, 16>,
        |p, n: usize| arch::_mm512_maskz_loadu_ps(((1u32 << n) - 1) as u16, p),
        |p, n: usize, v| arch::_mm512_mask_storeu_ps(p, ((1u32 << n) - 1) as u16, v));
vector!(F64x4, arch::__m256d, f64, 4, 16, _mm256_set1_pd, _mm256_loadu_pd, _mm256_storeu_pd,
        _mm256_fmadd_pd, lane_sum::<f64, 4>,
        |p, n| arch::_mm256_maskload_pd(p, avx2_mask_f64(n)),
        |p, n, v| arch::_mm256_maskstore_pd(p, avx2_mask_f64(n), v));
vector!(F32x8, arch::__m256, f32, 8, 16, _mm256_set1_ps, _mm256_loadu_ps, _mm256_storeu_ps,
        _mm256_fmadd_ps, lane_sum::<f32, 8>,
        |p, n| arch::_mm256_maskload_ps(p, avx2_mask_f32(n)),
        |p, n, v| arch::_mm256_maskstore_ps(p, avx2_mask_f32(n), v));

/// Flushes subnormal results to zero and reads subnormal inputs as zero on
/// this thread (SSE/AVX's FTZ and DAZ) while it lives, then restores the
/// thread's previous mode.
///
/// Once the book's N(0, 1) initialisation saturates a sigmoid, its delta
/// underflows: the outer products that update W1 then make subnormal numbers,
/// which this CPU's FMAs take a slow path for, and float32 epochs of
/// synthetic digits ran 2x slower than on dense random data. A subnormal is
/// below 2.3e-308 (float64) or 1.2e-38 (float32), far under the 1e-9 and
/// 2e-4 to which the kernels must match the reference; XLA's CPU code, which
/// JAX runs, flushes them the same way.
/// What `choices()` reports of subnormal numbers.
pub const SUBNORMALS: &str = "flushed to zero (FTZ and DAZ)";

pub struct FlushSubnormals {
    #[cfg(target_arch = "x86_64")]
    saved: u32,
}

#[cfg(target_arch = "x86_64")]
const FTZ_DAZ: u32 = (1 << 15) | (1 << 6);

impl FlushSubnormals {
    #[allow(clippy::new_without_default)] // a guard: made where its scope starts
    pub fn new() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            let mut saved: u32 = 0;
            // SAFETY: stmxcsr stores the 32-bit control register at the pointer;
            // ldmxcsr loads a value with only the FTZ and DAZ bits changed.
            unsafe {
                std::arch::asm!("stmxcsr [{}]", in(reg) &mut saved, options(nostack));
                let flushing = saved | FTZ_DAZ;
                // not `readonly`: the asm then orders the loads and stores around it
                std::arch::asm!("ldmxcsr [{}]", in(reg) &flushing, options(nostack));
            }
            FlushSubnormals { saved }
        }
        #[cfg(not(target_arch = "x86_64"))]
        FlushSubnormals {}
    }
}

impl Drop for FlushSubnormals {
    fn drop(&mut self) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: restores the value read in `new`.
        unsafe {
            std::arch::asm!("ldmxcsr [{}]", in(reg) &self.saved, options(nostack));
        }
    }
}

/// Asks for the cache line holding `p` in L2, ahead of its use; never faults.
#[inline(always)]
pub fn prefetch_l2<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint: it reads nothing and cannot fault.
    unsafe {
        arch::_mm_prefetch::<{ arch::_MM_HINT_T1 }>(p as *const i8)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

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

/// z <- 1 / (1 + e^-z) over a run of values, with an exp the compiler
/// vectorises; its polynomial in fused multiply-adds where `V` has them, as
/// LLVM contracts Numba's. In separate products and sums, the float64
/// polynomial was a chain of 26 dependent operations per vector, and the
/// first layer's sigmoid took a sizeable share of what follows that layer.
#[inline(always)]
pub fn sigmoid_in_place<V: Vector>(z: &mut [V::Elem]) {
    for v in z.iter_mut() {
        let one = <V::Elem as num_traits::One>::one();
        *v = one / (one + (-*v).exp_vectorisable(V::FUSED));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnormals_are_flushed_while_the_guard_lives_and_only_then() {
        use std::hint::black_box;
        // black_box on every operand: the compiler must not compute a product once for all
        let product = || black_box(f64::MIN_POSITIVE) * black_box(0.5);
        assert!(product() > 0.0, "subnormal results exist by default");
        let subnormal = black_box(f32::MIN_POSITIVE / 16.0);
        {
            let _flush = FlushSubnormals::new();
            assert_eq!(product(), 0.0);
            assert_eq!(black_box(subnormal) * black_box(1.0f32), 0.0, "subnormal inputs read as zero");
        }
        assert!(product() > 0.0, "the thread's mode is restored");
    }
}
