//! Skytale client core (being written).
