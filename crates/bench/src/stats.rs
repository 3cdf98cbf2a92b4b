//! Small statistics shared by the benchmarks.

/// The `p`-th percentile (0..=100) of `samples` by nearest rank; sorts `samples`. 0 for no samples.
pub fn percentile(samples: &mut [f64], p: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    samples.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * samples.len() as f64).ceil() as usize;
    samples[rank.clamp(1, samples.len()) - 1]
}

/// `x` rounded to two decimals, for figures printed in JSON.
pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
