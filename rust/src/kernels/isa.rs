//! The instruction sets the kernels are compiled for, which of them the CPU
//! runs, and the one macro that picks a kernel's instantiation for the set.

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

/// Runs `$($kernel)::+::<$t, V>(args)` with V the vector of `$t` for the instruction
/// set `$isa`, from inside a function compiled for that set (`#[target_feature]`),
/// so that the kernel's `#[inline(always)]` code is compiled with its
/// intrinsics enabled; the scalar lane where the set is the baseline.
///
/// `$t` names the element type as the caller's code does (a generic parameter
/// bound by `Lane`, or f64 or f32), and the arguments are listed with their
/// types: the instantiations are functions of their own. The caller must have
/// checked `$isa.supported()`; every strategy does when it is built.
macro_rules! dispatch {
    ($isa:expr, $t:ident, $($kernel:ident)::+($($arg:ident: $ty:ty),* $(,)?)) => {{
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx2,fma")]
        fn avx512<$t: $crate::kernels::vector::Lane>($($arg: $ty),*) {
            // SAFETY: this function only runs where AVX-512 was detected.
            unsafe { $($kernel)::+::<$t, <$t as $crate::kernels::vector::Lane>::Avx512>($($arg),*) }
        }

        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        fn avx2<$t: $crate::kernels::vector::Lane>($($arg: $ty),*) {
            // SAFETY: this function only runs where AVX2 and FMA were detected.
            unsafe { $($kernel)::+::<$t, <$t as $crate::kernels::vector::Lane>::Avx2>($($arg),*) }
        }

        match $isa {
            // SAFETY: the strategy checked, when it was built, that the CPU supports `$isa`.
            #[cfg(target_arch = "x86_64")]
            $crate::kernels::isa::Isa::Avx512 => unsafe { avx512::<$t>($($arg),*) },
            #[cfg(target_arch = "x86_64")]
            $crate::kernels::isa::Isa::Avx2Fma => unsafe { avx2::<$t>($($arg),*) },
            // SAFETY: one scalar lane runs anywhere.
            _ => unsafe { $($kernel)::+::<$t, $crate::kernels::vector::Scalar<$t>>($($arg),*) },
        }
    }};
}

pub(crate) use dispatch;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection_picks_a_supported_set() {
        assert!(Isa::detect().supported());
        assert!(Isa::Baseline.supported());
        assert_eq!(Isa::from_name(Isa::detect().name()), Some(Isa::detect()));
    }
}
