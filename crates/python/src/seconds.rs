//! Durations given from Python as seconds.

use std::time::Duration;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

/// Converts a Python number of seconds, rejecting negative, NaN and infinite values with a `ValueError` that
/// names the parameter (`Duration::from_secs_f64` would panic on them).
pub fn to_duration(parameter: &str, seconds: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(seconds).map_err(|_| {
        PyValueError::new_err(format!("{parameter} must be a finite number of seconds >= 0, got {seconds}"))
    })
}
