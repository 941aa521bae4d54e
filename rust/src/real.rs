//! The element types every strategy runs in: f64 and f32.

use std::fmt::Debug;
use std::ops::{AddAssign, MulAssign, SubAssign};

use ndarray::{LinalgScalar, ScalarOperand};
use num_traits::Float;

pub trait Real:
    LinalgScalar
    + Float
    + ScalarOperand
    + AddAssign
    + SubAssign
    + MulAssign
    + Debug
    + Default
    + Send
    + Sync
    + 'static
{
    /// The nearest value of this type: how eta and 1/m enter the arithmetic.
    fn of(x: f64) -> Self;
}

impl Real for f64 {
    fn of(x: f64) -> Self {
        x
    }
}

impl Real for f32 {
    fn of(x: f64) -> Self {
        x as f32
    }
}

/// The book's activation, 1 / (1 + e^-z).
pub fn sigmoid<T: Real>(z: T) -> T {
    T::one() / (T::one() + (-z).exp())
}

/// sigma'(z) = sigma(z) (1 - sigma(z)), as `network.py` computes it.
pub fn sigmoid_prime<T: Real>(z: T) -> T {
    let s = sigmoid(z);
    s * (T::one() - s)
}
