//! Skytale API server (in progress).
