//! Skytale relay (being written).
