//! The extension module `nndl_bench_rust`, conversion only: NumPy arrays in as
//! ndarray views (no copies of X, labels or order), each epoch run with the
//! GIL released, errors out as Python exceptions. Bad input is a TypeError or
//! ValueError; a panic is caught and raised as RuntimeError rather than
//! aborting the interpreter. What runs, on how many threads, and what it
//! chose are `strategy`'s.

use std::panic::{catch_unwind, AssertUnwindSafe};

use ndarray::Array2;
use numpy::{Element, PyArray2, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::data::Epoch;
use crate::kernels::isa::Isa;
use crate::kernels::vector::Lane;
use crate::openblas;
use crate::strategy::{self, Choices, Settings, STRATEGIES};

/// A trainer in the dtype Python asked for.
enum Typed {
    F64(strategy::Trainer<f64>),
    F32(strategy::Trainer<f32>),
}

/// `$body` with `$t` bound to the trainer, whichever its dtype: the one place
/// that tells float64 from float32 after construction.
macro_rules! each_dtype {
    ($typed:expr, $t:ident => $body:expr) => {
        match $typed {
            Typed::F64($t) => $body,
            Typed::F32($t) => $body,
        }
    };
}

/// One trainer of one strategy in one dtype.
#[pyclass(module = "nndl_bench_rust")]
struct Trainer {
    inner: Typed,
    #[pyo3(get)]
    strategy: String,
    #[pyo3(get)]
    dtype: String,
    /// OpenBLAS threads while training (rayon's pool has its own count).
    #[pyo3(get)]
    blas_threads: usize,
    #[pyo3(get)]
    threads: usize,
}

fn value_error(message: String) -> PyErr {
    PyValueError::new_err(message)
}

fn describe(obj: &Bound<'_, PyAny>) -> String {
    match (obj.getattr("ndim"), obj.getattr("dtype")) {
        (Ok(ndim), Ok(dtype)) => format!("a {ndim}-D {dtype} array"),
        _ => format!("a {}", obj.get_type().name().map(|n| n.to_string()).unwrap_or_default()),
    }
}

fn array2<'py, T: Element>(obj: &Bound<'py, PyAny>, what: &str, dtype: &str) -> PyResult<PyReadonlyArray2<'py, T>> {
    obj.extract::<PyReadonlyArray2<'py, T>>().map_err(|_| {
        PyTypeError::new_err(format!("{what} must be a 2-D {dtype} NumPy array; got {}", describe(obj)))
    })
}

fn indices<'py>(obj: &Bound<'py, PyAny>, what: &str) -> PyResult<PyReadonlyArray1<'py, i64>> {
    let array = obj.extract::<PyReadonlyArray1<'py, i64>>().map_err(|_| {
        PyTypeError::new_err(format!("{what} must be a 1-D int64 NumPy array; got {}", describe(obj)))
    })?;
    if !array.is_c_contiguous() {
        return Err(PyValueError::new_err(format!("{what} must be contiguous: pass np.ascontiguousarray({what})")));
    }
    Ok(array)
}

fn owned<T: Element + Copy>(list: &[Bound<'_, PyAny>], what: &str, dtype: &str) -> PyResult<Vec<Array2<T>>> {
    list.iter()
        .enumerate()
        .map(|(l, a)| Ok(array2::<T>(a, &format!("{what}[{l}]"), dtype)?.as_array().to_owned()))
        .collect()
}

/// The trainer of `name` in T from Python's lists of arrays.
fn build<T: Lane + Element>(
    name: &str,
    dtype: &str,
    weights: &[Bound<'_, PyAny>],
    biases: &[Bound<'_, PyAny>],
    settings: Settings,
) -> PyResult<strategy::Trainer<T>> {
    let (w, b) = (owned(weights, "weights", dtype)?, owned(biases, "biases", dtype)?);
    strategy::Trainer::new(name, w, b, settings).map_err(value_error)
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into())
}

/// One epoch's arguments as Python passed them.
struct EpochCall<'a, 'py> {
    x: &'a Bound<'py, PyAny>,
    y: &'a Bound<'py, PyAny>,
    order: &'a Bound<'py, PyAny>,
    batch_size: usize,
    eta: f64,
    dtype: &'a str,
}

/// Views of the arrays, checked, and the epoch with the GIL released; a panic
/// comes back as RuntimeError.
fn train<T: Lane + Element>(py: Python<'_>, trainer: &mut strategy::Trainer<T>, call: EpochCall) -> PyResult<()> {
    let EpochCall { x, y, order, batch_size, eta, dtype } = call;
    let x = array2::<T>(x, "X", dtype)?;
    let (y, order) = (indices(y, "y")?, indices(order, "order")?);
    let (ys, os) = (y.as_slice().unwrap_or(&[]), order.as_slice().unwrap_or(&[]));
    let data = Epoch::new(x.as_array(), ys, os, &trainer.sizes, batch_size).map_err(value_error)?;
    let outcome = py.detach(|| catch_unwind(AssertUnwindSafe(|| trainer.train_epoch(&data, batch_size, eta))));
    outcome.map_err(|payload| {
        PyRuntimeError::new_err(format!(
            "the Rust kernel panicked ({}); the trainer's parameters are no longer defined",
            panic_message(payload.as_ref())
        ))
    })
}

fn to_python<'py, T: Element>(py: Python<'py>, arrays: Vec<Array2<T>>) -> Vec<Bound<'py, PyAny>> {
    arrays.into_iter().map(|a| PyArray2::from_owned_array(py, a).into_any()).collect()
}

/// The choices as the dict `choices()` returns, its keys in their order.
fn choices_dict(py: Python<'_>, c: Choices) -> PyResult<Py<PyDict>> {
    let d = PyDict::new(py);
    d.set_item("isa", c.isa.name())?;
    d.set_item("lanes", c.lanes)?;
    d.set_item("kernel", c.kernel)?;
    if let Some(from) = c.gemm_from_batch {
        d.set_item("gemm_from_batch", from)?;
    }
    if let Some(samples) = c.block_samples {
        d.set_item("block_samples", samples)?;
    }
    if let Some(team) = c.team {
        d.set_item("threads", team.threads)?;
        d.set_item("split", team.split)?;
        d.set_item("parts", team.parts)?;
        d.set_item("features_per_part", team.features_per_part)?;
        d.set_item("tasks", team.tasks)?;
        d.set_item("barrier", team.barrier)?;
        d.set_item("rest", team.rest)?;
    }
    d.set_item("subnormals", c.subnormals)?;
    Ok(d.unbind())
}

#[pymethods]
impl Trainer {
    /// `strategy` one of port, batched, rayon, fused, fused-parallel; `threads`
    /// the rayon pool's size for rayon, the team's for fused-parallel (at most
    /// `parts`), and OpenBLAS's thread count for the others. `parts` (the
    /// team's only, default `threads`) fixes how the team groups the first
    /// layer's sums, and with it the result. `rest` (the team's only):
    /// "whole", each thread does what follows the first layer's sums for the
    /// whole mini-batch, or "by-samples", each its own samples, then a second
    /// meeting; the same bits either way. Default: by samples from ten sweeps
    /// of five samples per thread.
    #[new]
    #[pyo3(signature = (strategy, dtype, weights, biases, threads=1, isa=None, gemm_from_batch=None, parts=None, rest=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        strategy: &str,
        dtype: &str,
        weights: Vec<Bound<'_, PyAny>>,
        biases: Vec<Bound<'_, PyAny>>,
        threads: usize,
        isa: Option<&str>,
        gemm_from_batch: Option<usize>,
        parts: Option<usize>,
        rest: Option<&str>,
    ) -> PyResult<Self> {
        let settings = Settings::new(threads, isa, gemm_from_batch, parts).and_then(|s| s.with_rest(rest)).map_err(value_error)?;
        let inner = match dtype {
            "float64" => Typed::F64(build(strategy, dtype, &weights, &biases, settings)?),
            "float32" => Typed::F32(build(strategy, dtype, &weights, &biases, settings)?),
            other => return Err(PyValueError::new_err(format!("dtype {other:?}: float64 or float32"))),
        };
        let chosen = each_dtype!(&inner, t => t.threads);
        Ok(Trainer {
            inner,
            strategy: strategy.into(),
            dtype: dtype.into(),
            blas_threads: chosen.blas,
            threads: chosen.threads,
        })
    }

    fn train_epoch(
        &mut self,
        py: Python<'_>,
        x: &Bound<'_, PyAny>,
        y: &Bound<'_, PyAny>,
        order: &Bound<'_, PyAny>,
        batch_size: usize,
        eta: f64,
    ) -> PyResult<()> {
        let call = EpochCall { x, y, order, batch_size, eta, dtype: &self.dtype };
        each_dtype!(&mut self.inner, t => train(py, t, call))
    }

    /// (weights, biases) as new NumPy arrays in the book's layout.
    fn params<'py>(&self, py: Python<'py>) -> (Vec<Bound<'py, PyAny>>, Vec<Bound<'py, PyAny>>) {
        each_dtype!(&self.inner, t => {
            let (w, b) = t.params();
            (to_python(py, w), to_python(py, b))
        })
    }

    /// From which batch size the fused kernel runs its products as BLAS GEMMs.
    fn set_gemm_from_batch(&mut self, batch_size: usize) -> PyResult<()> {
        each_dtype!(&mut self.inner, t => t.set_gemm_from_batch(batch_size)).map_err(value_error)
    }

    /// Runs the fused strategy's `kernel` (sweep, tiles or gemm) at every batch size.
    fn set_kernel(&mut self, kernel: &str) -> PyResult<()> {
        each_dtype!(&mut self.inner, t => t.set_kernel(kernel)).map_err(value_error)
    }

    /// The fused kernels' choices: instruction set, lanes, and the kernel for a
    /// batch size; the team's threads, split, parts and barrier.
    fn choices(&self, py: Python<'_>, batch_size: usize) -> PyResult<Option<Py<PyDict>>> {
        let chosen = each_dtype!(&self.inner, t => t.choices(batch_size));
        chosen.map(|c| choices_dict(py, c)).transpose()
    }
}

/// What the extension was built with and runs on: for the run's metadata.
#[pyfunction]
fn build_info(py: Python<'_>) -> PyResult<Py<PyDict>> {
    let d = PyDict::new(py);
    d.set_item("rustc", env!("NNDL_RUSTC_VERSION"))?;
    d.set_item("target", env!("NNDL_BUILD_TARGET"))?;
    d.set_item("profile", env!("NNDL_BUILD_PROFILE"))?;
    d.set_item("opt_level", env!("NNDL_BUILD_OPT_LEVEL"))?;
    d.set_item("debug_symbols", env!("NNDL_BUILD_DEBUG"))?;
    let crates = PyDict::new(py);
    for item in env!("NNDL_CRATE_VERSIONS").split(',').filter(|s| !s.is_empty()) {
        if let Some((name, version)) = item.split_once(' ') {
            crates.set_item(name, version)?;
        }
    }
    d.set_item("crates", crates)?;
    d.set_item("openblas_config", openblas::config())?;
    d.set_item("openblas_corename", openblas::corename())?;
    d.set_item("openblas_threads", openblas::threads())?;
    d.set_item("openblas_version", openblas::version())?;
    // The file the loader mapped, and the one build.rs linked (and where it found it):
    // NumPy's, so the two are one file and NumPy's BLAS is this one.
    d.set_item("openblas_library", openblas::library())?;
    d.set_item("openblas_linked", openblas::LINKED_PATH)?;
    d.set_item("openblas_linked_from", openblas::LINKED_FROM)?;
    let supported: Vec<&str> = Isa::ALL.iter().filter(|i| i.supported()).map(|i| i.name()).collect();
    d.set_item("isa_supported", supported)?;
    d.set_item("isa_selected", Isa::detect().name())?;
    Ok(d.unbind())
}

/// The thread count of the OpenBLAS the extension links (NumPy's: one pool for both).
#[pyfunction]
fn blas_threads() -> usize {
    openblas::threads()
}

#[pymodule]
fn nndl_bench_rust(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Trainer>()?;
    m.add_function(wrap_pyfunction!(build_info, m)?)?;
    m.add_function(wrap_pyfunction!(blas_threads, m)?)?;
    m.add("STRATEGIES", STRATEGIES.to_vec())?;
    Ok(())
}
