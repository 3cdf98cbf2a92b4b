//! `SyncRequest`: a `Channel.sync()` whose relay round trip is already under way.

use std::sync::Mutex;

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

use crate::blocking::detached;
use crate::seconds;

/// The head query of `Channel.start_sync()`, answered or on its way. `wait()` finishes it, once.
#[pyclass(module = "skytale_sdk._native", frozen)]
pub struct SyncRequest {
    pending: Mutex<Option<skytale_client::SyncRequest>>,
}

impl From<skytale_client::SyncRequest> for SyncRequest {
    fn from(request: skytale_client::SyncRequest) -> Self {
        Self { pending: Mutex::new(Some(request)) }
    }
}

#[pymethods]
impl SyncRequest {
    /// As `Channel.sync(timeout)`, for the head asked when the request was started.
    #[pyo3(signature = (timeout=None))]
    fn wait(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<bool> {
        let timeout = timeout.map(|t| seconds::to_duration("timeout", t)).transpose()?;
        let request = self.pending.lock().ok().and_then(|mut pending| pending.take());
        let request = request.ok_or_else(|| PyRuntimeError::new_err("this SyncRequest was already waited for"))?;
        detached(py, || request.wait(timeout))
    }
}
