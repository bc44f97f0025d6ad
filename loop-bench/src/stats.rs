//! Medians and percentiles: the only statistics the report uses.
//!
//! Runs on a shared machine are noisy, so every figure in the report is a median over repeated
//! runs, and every ratio is the median of ratios of runs made side by side (a pair).

/// The median of `xs` (the mean of the two middle values for an even count); `NaN` if empty.
pub fn median(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    let mut v: Vec<f64> = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The `p`-th percentile (0..=100) of `sorted` (ascending), nearest-rank method: the smallest
/// value such that at least `p` percent of the values are at or below it. `None` if empty.
pub fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let p = p.clamp(0.0, 100.0);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// p50 and p99 of `samples` (sorted in place), in the samples' unit; zeros if empty.
pub fn p50_p99(samples: &mut [u64]) -> (u64, u64) {
    samples.sort_unstable();
    (
        percentile(samples, 50.0).unwrap_or(0),
        percentile(samples, 99.0).unwrap_or(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[7.0]), 7.0);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), Some(50));
        assert_eq!(percentile(&v, 99.0), Some(99));
        assert_eq!(percentile(&v, 100.0), Some(100));
        assert_eq!(percentile(&v, 0.0), Some(1));
        assert_eq!(percentile(&[5], 99.0), Some(5));
        assert_eq!(percentile(&[], 50.0), None);
        // 10 values: p99 is the largest, p50 the fifth.
        let w: Vec<u64> = (10..20).collect();
        assert_eq!(percentile(&w, 99.0), Some(19));
        assert_eq!(percentile(&w, 50.0), Some(14));
    }

    #[test]
    fn p50_p99_sorts_first() {
        let mut v = vec![9, 1, 8, 2, 7, 3, 6, 4, 5, 10];
        assert_eq!(p50_p99(&mut v), (5, 10));
        assert_eq!(p50_p99(&mut []), (0, 0));
    }
}
