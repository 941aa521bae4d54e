//! The CBLAS functions ndarray calls, over the OpenBLAS NumPy runs.
//!
//! ndarray's `blas` feature calls `cblas_sgemm`, `cblas_dgemm`, `cblas_cgemm`,
//! `cblas_zgemm`, `cblas_sgemv`, `cblas_dgemv`, `cblas_sdot` and `cblas_ddot`
//! through the `cblas-sys` crate, with 32-bit `c_int` dimensions, and leaves
//! the library that defines them to the final link. NumPy's wheels carry an
//! OpenBLAS (scipy_openblas) built for 64-bit integers (ILP64) whose symbols
//! are renamed, `scipy_` before and `64_` after (`scipy_cblas_dgemm64_`), so
//! that it cannot clash with another BLAS in the process. The functions here
//! have cblas-sys's names and signatures and forward to those, the dimensions
//! widened to `i64`; build.rs links the very file NumPy loads, so the dynamic
//! loader maps it once and both sides share one OpenBLAS: one thread pool,
//! one choice of kernels.
//!
//! Enums (layout, transposes) stay C `int`s in the ILP64 build; only the
//! `blasint` arguments (sizes, leading dimensions, increments) are 64-bit.

#![allow(clippy::too_many_arguments)]

use cblas_sys::{c_double_complex, c_float_complex, CBLAS_LAYOUT, CBLAS_TRANSPOSE};
use std::os::raw::{c_double, c_float, c_int, c_void};

/// `blasint` of the ILP64 build.
type Int = i64;

extern "C" {
    #[link_name = "scipy_cblas_sgemm64_"]
    fn sgemm64(
        layout: CBLAS_LAYOUT, transa: CBLAS_TRANSPOSE, transb: CBLAS_TRANSPOSE, m: Int, n: Int, k: Int,
        alpha: c_float, a: *const c_float, lda: Int, b: *const c_float, ldb: Int,
        beta: c_float, c: *mut c_float, ldc: Int,
    );
    #[link_name = "scipy_cblas_dgemm64_"]
    fn dgemm64(
        layout: CBLAS_LAYOUT, transa: CBLAS_TRANSPOSE, transb: CBLAS_TRANSPOSE, m: Int, n: Int, k: Int,
        alpha: c_double, a: *const c_double, lda: Int, b: *const c_double, ldb: Int,
        beta: c_double, c: *mut c_double, ldc: Int,
    );
    #[link_name = "scipy_cblas_cgemm64_"]
    fn cgemm64(
        layout: CBLAS_LAYOUT, transa: CBLAS_TRANSPOSE, transb: CBLAS_TRANSPOSE, m: Int, n: Int, k: Int,
        alpha: *const c_float_complex, a: *const c_float_complex, lda: Int, b: *const c_float_complex, ldb: Int,
        beta: *const c_float_complex, c: *mut c_float_complex, ldc: Int,
    );
    #[link_name = "scipy_cblas_zgemm64_"]
    fn zgemm64(
        layout: CBLAS_LAYOUT, transa: CBLAS_TRANSPOSE, transb: CBLAS_TRANSPOSE, m: Int, n: Int, k: Int,
        alpha: *const c_double_complex, a: *const c_double_complex, lda: Int, b: *const c_double_complex, ldb: Int,
        beta: *const c_double_complex, c: *mut c_double_complex, ldc: Int,
    );
    #[link_name = "scipy_cblas_sgemv64_"]
    fn sgemv64(
        layout: CBLAS_LAYOUT, transa: CBLAS_TRANSPOSE, m: Int, n: Int, alpha: c_float, a: *const c_float, lda: Int,
        x: *const c_float, incx: Int, beta: c_float, y: *mut c_float, incy: Int,
    );
    #[link_name = "scipy_cblas_dgemv64_"]
    fn dgemv64(
        layout: CBLAS_LAYOUT, transa: CBLAS_TRANSPOSE, m: Int, n: Int, alpha: c_double, a: *const c_double, lda: Int,
        x: *const c_double, incx: Int, beta: c_double, y: *mut c_double, incy: Int,
    );
    #[link_name = "scipy_cblas_sdot64_"]
    fn sdot64(n: Int, x: *const c_float, incx: Int, y: *const c_float, incy: Int) -> c_float;
    #[link_name = "scipy_cblas_ddot64_"]
    fn ddot64(n: Int, x: *const c_double, incx: Int, y: *const c_double, incy: Int) -> c_double;
}

/// Where the library's GEMM is in memory: openblas.rs asks the loader which file holds it.
pub(crate) fn dgemm_address() -> *const c_void {
    dgemm64 as *const c_void
}

/// `cblas_?gemm`: C = alpha op(A) op(B) + beta C.
macro_rules! gemm {
    ($name:ident, $ilp64:ident, $scalar:ty, $elem:ty) => {
        /// # Safety
        /// As for CBLAS: the pointers and dimensions describe valid matrices.
        #[no_mangle]
        pub unsafe extern "C" fn $name(
            layout: CBLAS_LAYOUT, transa: CBLAS_TRANSPOSE, transb: CBLAS_TRANSPOSE, m: c_int, n: c_int, k: c_int,
            alpha: $scalar, a: *const $elem, lda: c_int, b: *const $elem, ldb: c_int,
            beta: $scalar, c: *mut $elem, ldc: c_int,
        ) {
            $ilp64(layout, transa, transb, m.into(), n.into(), k.into(), alpha, a, lda.into(), b, ldb.into(),
                   beta, c, ldc.into())
        }
    };
}

gemm!(cblas_sgemm, sgemm64, c_float, c_float);
gemm!(cblas_dgemm, dgemm64, c_double, c_double);
gemm!(cblas_cgemm, cgemm64, *const c_float_complex, c_float_complex);
gemm!(cblas_zgemm, zgemm64, *const c_double_complex, c_double_complex);

/// `cblas_?gemv`: y = alpha op(A) x + beta y.
macro_rules! gemv {
    ($name:ident, $ilp64:ident, $t:ty) => {
        /// # Safety
        /// As for CBLAS: the pointers, dimensions and increments describe valid arrays.
        #[no_mangle]
        pub unsafe extern "C" fn $name(
            layout: CBLAS_LAYOUT, transa: CBLAS_TRANSPOSE, m: c_int, n: c_int, alpha: $t, a: *const $t, lda: c_int,
            x: *const $t, incx: c_int, beta: $t, y: *mut $t, incy: c_int,
        ) {
            $ilp64(layout, transa, m.into(), n.into(), alpha, a, lda.into(), x, incx.into(), beta, y, incy.into())
        }
    };
}

gemv!(cblas_sgemv, sgemv64, c_float);
gemv!(cblas_dgemv, dgemv64, c_double);

/// `cblas_?dot`: the sum of x[i] y[i].
macro_rules! dot {
    ($name:ident, $ilp64:ident, $t:ty) => {
        /// # Safety
        /// As for CBLAS: the pointers, length and increments describe valid vectors.
        #[no_mangle]
        pub unsafe extern "C" fn $name(n: c_int, x: *const $t, incx: c_int, y: *const $t, incy: c_int) -> $t {
            $ilp64(n.into(), x, incx.into(), y, incy.into())
        }
    };
}

dot!(cblas_sdot, sdot64, c_float);
dot!(cblas_ddot, ddot64, c_double);

#[cfg(test)]
mod tests {
    use ndarray::{Array1, Array2};

    /// The functions here have the types cblas-sys declares, which ndarray calls:
    /// each pair coerces to one function-pointer type only where the two are the same.
    #[test]
    fn the_signatures_are_cblas_sys_s() {
        fn same<F>(_ours: F, _theirs: F) {}
        macro_rules! same {
            ($name:ident: $($arguments:tt)*) => {
                same::<unsafe extern "C" fn $($arguments)*>(super::$name, cblas_sys::$name)
            };
        }
        same!(cblas_sgemm: (_, _, _, _, _, _, _, _, _, _, _, _, _, _));
        same!(cblas_dgemm: (_, _, _, _, _, _, _, _, _, _, _, _, _, _));
        same!(cblas_cgemm: (_, _, _, _, _, _, _, _, _, _, _, _, _, _));
        same!(cblas_zgemm: (_, _, _, _, _, _, _, _, _, _, _, _, _, _));
        same!(cblas_sgemv: (_, _, _, _, _, _, _, _, _, _, _, _));
        same!(cblas_dgemv: (_, _, _, _, _, _, _, _, _, _, _, _));
        same!(cblas_sdot: (_, _, _, _, _) -> _);
        same!(cblas_ddot: (_, _, _, _, _) -> _);
    }

    fn naive(a: &Array2<f64>, b: &Array2<f64>) -> Array2<f64> {
        Array2::from_shape_fn((a.nrows(), b.ncols()), |(i, j)| (0..a.ncols()).map(|k| a[[i, k]] * b[[k, j]]).sum())
    }

    /// ndarray's products, above its BLAS cut-offs (7 for matrices, 32 for dots) and transposed, through the
    /// forwarding functions: GEMM, GEMV and the dot of two vectors.
    #[test]
    fn ndarrays_products_go_through_the_ilp64_library() {
        let a = Array2::from_shape_fn((20, 40), |(i, j)| (i * 41 + j) as f64 / 97.0 - 3.0);
        let b = Array2::from_shape_fn((40, 12), |(i, j)| ((i + 2 * j) % 11) as f64 - 5.0);
        let close = |x: &Array2<f64>, y: &Array2<f64>| x.iter().zip(y).all(|(p, q)| (p - q).abs() < 1e-9);
        assert!(close(&a.dot(&b), &naive(&a, &b)));
        assert!(close(&b.t().dot(&a.t()), &naive(&a, &b).t().to_owned()));
        let x = Array1::from_shape_fn(40, |i| i as f64 - 7.5);
        let gemv = a.dot(&x).into_shape_with_order((20, 1)).unwrap();
        assert!(close(&gemv, &naive(&a, &x.clone().into_shape_with_order((40, 1)).unwrap())));
        assert!((x.dot(&x) - x.iter().map(|v| v * v).sum::<f64>()).abs() < 1e-9);
        let (a32, b32) = (a.mapv(|v| v as f32), b.mapv(|v| v as f32));
        let diff = (a32.dot(&b32).mapv(f64::from) - naive(&a, &b)).mapv(f64::abs);
        assert!(diff.iter().all(|d| *d < 1e-3), "{diff}");
    }
}
