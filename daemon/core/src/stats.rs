//! Whether a difference is likely real: intervals for rates and their
//! differences, and a rank test for durations. Small, exact formulas (no
//! sampling), so the same question always gets the same answer.
//!
//! - a rate's interval: Wilson's score interval;
//! - a difference of two rates: Newcombe's hybrid score interval (his
//!   method 10), built from the two Wilson intervals;
//! - durations: the Mann–Whitney U test, normal approximation with the tie
//!   correction, two-sided.

use stagecoach_types::api::results::Significance;

/// z for a two-sided 95% interval.
const Z95: f64 = 1.959_963_984_540_054;

/// Fewer cases than this on either side: too few to tell.
pub const MIN_SAMPLE: u64 = 10;

/// Wilson's 95% score interval for `k` successes of `n`.
pub fn wilson(k: u64, n: u64) -> Option<(f64, f64)> {
    if n == 0 {
        return None;
    }
    let (k, n) = (k as f64, n as f64);
    let p = k / n;
    let z2 = Z95 * Z95;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = Z95 * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / (1.0 + z2 / n);
    Some(((centre - half).max(0.0), (centre + half).min(1.0)))
}

/// Newcombe's 95% interval for p_b − p_a (`kb` of `nb` against `ka` of `na`).
pub fn rate_difference(ka: u64, na: u64, kb: u64, nb: u64) -> Option<(f64, f64)> {
    let (la, ua) = wilson(ka, na)?;
    let (lb, ub) = wilson(kb, nb)?;
    let (pa, pb) = (ka as f64 / na as f64, kb as f64 / nb as f64);
    let d = pb - pa;
    let lower = d - ((pb - lb).powi(2) + (ua - pa).powi(2)).sqrt();
    let upper = d + ((ub - pb).powi(2) + (pa - la).powi(2)).sqrt();
    Some((lower, upper))
}

/// What a rate difference says: b's rate against a's, with the interval,
/// the counts, and a plain verdict.
pub fn compare_rates(ka: u64, na: u64, kb: u64, nb: u64) -> Significance {
    let interval = rate_difference(ka, na, kb, nb);
    let verdict = match interval {
        _ if na < MIN_SAMPLE || nb < MIN_SAMPLE => "too few to tell",
        Some((l, u)) if l > 0.0 || u < 0.0 => "likely real",
        _ => "could be noise",
    };
    Significance {
        test: "difference of proportions, Newcombe 95% interval".into(),
        n_a: na,
        n_b: nb,
        difference: interval.map(|_| kb as f64 / nb as f64 - ka as f64 / na as f64),
        interval,
        p_value: None,
        verdict: verdict.into(),
    }
}

/// The two-sided p-value of the Mann–Whitney U test for `a` against `b`.
pub fn mann_whitney(a: &[i64], b: &[i64]) -> Option<f64> {
    let (n1, n2) = (a.len() as f64, b.len() as f64);
    if a.is_empty() || b.is_empty() {
        return None;
    }
    let mut all: Vec<(i64, bool)> = a
        .iter()
        .map(|x| (*x, true))
        .chain(b.iter().map(|x| (*x, false)))
        .collect();
    all.sort_unstable_by_key(|x| x.0);
    // Mid-ranks for ties, and the tie correction.
    let n = all.len();
    let mut rank_a = 0.0;
    let mut ties = 0.0;
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && all[j + 1].0 == all[i].0 {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        let t = (j - i + 1) as f64;
        ties += t * t * t - t;
        for x in &all[i..=j] {
            if x.1 {
                rank_a += rank;
            }
        }
        i = j + 1;
    }
    let u = rank_a - n1 * (n1 + 1.0) / 2.0;
    let mean = n1 * n2 / 2.0;
    let total = n1 + n2;
    let var = n1 * n2 / 12.0 * ((total + 1.0) - ties / (total * (total - 1.0)));
    if var <= 0.0 {
        return Some(1.0);
    }
    // Continuity correction.
    let z = ((u - mean).abs() - 0.5).max(0.0) / var.sqrt();
    Some((2.0 * (1.0 - normal_cdf(z))).clamp(0.0, 1.0))
}

/// What a difference of durations says (days): Mann–Whitney on the stays,
/// with the difference of medians.
pub fn compare_durations(a: &[i64], b: &[i64]) -> Significance {
    let median = |v: &[i64]| -> Option<f64> {
        let mut v = v.to_vec();
        v.sort_unstable();
        (!v.is_empty()).then(|| {
            let m = v.len() / 2;
            let ms = if v.len().is_multiple_of(2) {
                (v[m - 1] + v[m]) as f64 / 2.0
            } else {
                v[m] as f64
            };
            ms / stagecoach_types::model::Millis::DAY as f64
        })
    };
    let p = mann_whitney(a, b);
    let (na, nb) = (a.len() as u64, b.len() as u64);
    let verdict = match p {
        _ if na < MIN_SAMPLE || nb < MIN_SAMPLE => "too few to tell",
        Some(p) if p < 0.05 => "likely real",
        _ => "could be noise",
    };
    Significance {
        test: "Mann–Whitney U, two-sided (median days b − a)".into(),
        n_a: na,
        n_b: nb,
        difference: median(a)
            .zip(median(b))
            .map(|(x, y)| ((y - x) * 100.0).round() / 100.0),
        interval: None,
        p_value: p.map(|p| (p * 10_000.0).round() / 10_000.0),
        verdict: verdict.into(),
    }
}

/// Φ(z), by the Abramowitz–Stegun 7.1.26 approximation of erf (|error| <
/// 1.5e-7).
fn normal_cdf(z: f64) -> f64 {
    let x = z / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs());
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erf = 1.0 - poly * (-x * x).exp();
    let erf = if x >= 0.0 { erf } else { -erf };
    0.5 * (1.0 + erf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_and_newcombe_match_published_values() {
        // Newcombe (1998), example (a): 56/70 against 48/80, whose
        // difference interval is published as 0.0524 to 0.3339.
        let (l, u) = wilson(56, 70).unwrap();
        assert!(
            (l - 0.6918).abs() < 1e-3 && (u - 0.8770).abs() < 1e-3,
            "{l} {u}"
        );
        let (l, u) = rate_difference(48, 80, 56, 70).unwrap();
        assert!(
            (l - 0.0524).abs() < 1e-3 && (u - 0.3339).abs() < 1e-3,
            "{l} {u}"
        );
        assert_eq!(wilson(0, 0), None);
    }

    #[test]
    fn mann_whitney_tells_shifted_from_equal() {
        let a: Vec<i64> = (0..30).collect();
        let b: Vec<i64> = (20..50).collect();
        assert!(mann_whitney(&a, &b).unwrap() < 0.001);
        let c: Vec<i64> = (0..30).rev().collect();
        assert!(mann_whitney(&a, &c).unwrap() > 0.9);
        assert!((normal_cdf(1.959_964) - 0.975).abs() < 1e-6);
    }
}
