//! A small seeded problem shared by the integration tests.

use ndarray::Array2;

pub struct Problem {
    pub weights: Vec<Array2<f64>>,
    pub biases: Vec<Array2<f64>>,
    pub x: Array2<f64>,
    pub labels: Vec<i64>,
    pub order: Vec<i64>,
}

struct Lcg(u64);

impl Lcg {
    fn uniform(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// `n` samples for a network of `sizes`, weights in [-1, 1), inputs in [0, 1),
/// and a shuffled order of every sample.
pub fn problem(sizes: &[usize], n: usize, seed: u64) -> Problem {
    let mut rng = Lcg(seed);
    let mut matrix = |r: usize, c: usize, scale: f64, shift: f64| {
        Array2::from_shape_fn((r, c), |_| scale * rng.uniform() - shift)
    };
    let weights: Vec<_> = sizes.windows(2).map(|p| matrix(p[1], p[0], 2.0, 1.0)).collect();
    let biases: Vec<_> = sizes[1..].iter().map(|&o| matrix(o, 1, 2.0, 1.0)).collect();
    let x = matrix(n, sizes[0], 1.0, 0.0);
    let n_out = *sizes.last().unwrap() as u64;
    let mut rng = Lcg(seed ^ 0x9e37);
    let labels = (0..n).map(|_| (rng.uniform() * n_out as f64) as i64).collect();
    let mut order: Vec<i64> = (0..n as i64).collect();
    for i in (1..n).rev() {
        let j = (rng.uniform() * (i + 1) as f64) as usize;
        order.swap(i, j);
    }
    Problem { weights, biases, x, labels, order }
}

#[allow(dead_code)] // not every test binary compares parameters
/// The largest difference between two lists of arrays, relative to the largest value.
pub fn relative_gap<T: Into<f64> + Copy>(a: &[Array2<T>], b: &[Array2<f64>]) -> f64 {
    let mut gap: f64 = 0.0;
    let mut scale: f64 = 0.0;
    for (x, y) in a.iter().zip(b) {
        assert_eq!(x.dim(), y.dim());
        for (&u, &v) in x.iter().zip(y) {
            gap = gap.max((u.into() - v).abs());
            scale = scale.max(v.abs());
        }
    }
    gap / scale
}
