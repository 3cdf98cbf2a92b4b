//! `skytale_sdk._native`: the Python face of `skytale-client`.
//!
//! Deliberately thin: every function converts its arguments, calls the Rust client with the GIL released
//! ([`blocking::detached`]), and converts the result or maps the error at the boundary ([`errors`]). All
//! behaviour lives in `skytale-client`, so Python and Rust users get the same semantics.

mod blocking;
mod channel;
mod client;
mod dispatch;
mod errors;
mod logging;
mod messages;
mod seconds;
mod sync;

use pyo3::prelude::*;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // The distribution's version: maturin takes it from this crate's (the workspace's) version.
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<client::SkytaleClient>()?;
    m.add_class::<channel::Channel>()?;
    m.add_class::<messages::MessageIterator>()?;
    m.add_class::<messages::Message>()?;
    m.add_class::<sync::SyncRequest>()?;
    errors::register(m)?;
    blocking::record_main_thread(m.py())?;
    logging::install(m.py())?;
    m.add_function(wrap_pyfunction!(blocking::interpreter_exiting, m)?)?;
    let exiting = m.getattr("_interpreter_exiting")?;
    m.py().import("atexit")?.call_method1("register", (exiting,))?;
    Ok(())
}
