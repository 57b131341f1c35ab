//! Small numeric helpers of the world: the standard normal CDF, the logistic function, per-customer
//! seeds (xxh3 of `(seed, customer, stream, purpose)`, so a draw never depends on call order) and the
//! truncated exponential delay.

use rand::SeedableRng as _;
use rand::rngs::StdRng;
use xxhash_rust::xxh3::xxh3_64;

/// What a random stream is for; mixed into the seed so generation, responses and organic behaviour
/// never share draws.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub(crate) enum Purpose {
    /// Population generation (one stream per customer).
    Generate = 0x6765_6e65,
    /// A delivery's response.
    Respond = 0x7265_7370,
    /// A day of organic behaviour.
    Organic = 0x6f72_6761,
}

/// A deterministic RNG for `(seed, customer, stream, purpose)`.
pub(crate) fn rng_for(seed: u64, customer: usize, stream: u64, purpose: Purpose) -> StdRng {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    bytes[8..16].copy_from_slice(&(customer as u64).to_le_bytes());
    bytes[16..24].copy_from_slice(&stream.to_le_bytes());
    bytes[24..].copy_from_slice(&(purpose as u64).to_le_bytes());
    StdRng::seed_from_u64(xxh3_64(&bytes))
}

/// A uniform number in [0, 1) from a hash of `(seed, customer, stream)` (53 bits), for draws too
/// frequent to seed an RNG for.
pub(crate) fn unit_hash(seed: u64, customer: usize, stream: u64) -> f64 {
    let mut bytes = [0u8; 24];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    bytes[8..16].copy_from_slice(&(customer as u64).to_le_bytes());
    bytes[16..].copy_from_slice(&stream.to_le_bytes());
    (xxh3_64(&bytes) >> 11) as f64 / (1u64 << 53) as f64
}

/// A stable 64-bit hash of `(seed, customer, salt)` for rendering profile details (names, ids) that
/// do not feed the response model.
pub(crate) fn hash_for(seed: u64, customer: usize, salt: &str) -> u64 {
    let mut bytes = Vec::with_capacity(16 + salt.len());
    bytes.extend_from_slice(&seed.to_le_bytes());
    bytes.extend_from_slice(&(customer as u64).to_le_bytes());
    bytes.extend_from_slice(salt.as_bytes());
    xxh3_64(&bytes)
}

/// The logistic function `1 / (1 + e^-x)`, stable for large `|x|`.
pub(crate) fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// `ln(p / (1 - p))`, with `p` clamped away from 0 and 1.
pub(crate) fn logit(p: f64) -> f64 {
    let p = p.clamp(1e-12, 1.0 - 1e-12);
    (p / (1.0 - p)).ln()
}

/// The standard normal CDF Φ(x), from the complementary error function (absolute error below 1.2e-7).
pub(crate) fn normal_cdf(x: f64) -> f64 {
    0.5 * erfc(-x / std::f64::consts::SQRT_2)
}

/// The complementary error function (Numerical Recipes' Chebyshev fit, fractional error < 1.2e-7).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98 + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

/// A draw of an exponential delay with mean `mean`, conditioned on being below `cap` (inverse CDF of
/// the truncated law), from a uniform `u` in [0, 1).
pub(crate) fn truncated_exponential(mean: f64, cap: f64, u: f64) -> f64 {
    if mean <= 0.0 || cap <= 0.0 {
        return 0.0;
    }
    let tail = 1.0 - (-cap / mean).exp();
    let x = -mean * (1.0 - u * tail).ln();
    x.clamp(0.0, cap)
}

#[cfg(test)]
mod tests {
    use rand::RngExt as _;

    use super::*;

    #[test]
    fn normal_cdf_matches_known_values() {
        assert!((normal_cdf(0.0) - 0.5).abs() < 1e-7);
        assert!((normal_cdf(1.0) - 0.841_344_746).abs() < 1e-6);
        assert!((normal_cdf(-1.96) - 0.024_997_895).abs() < 1e-6);
        assert!(normal_cdf(-40.0) >= 0.0 && normal_cdf(40.0) <= 1.0);
    }

    #[test]
    fn sigmoid_and_logit_are_inverse() {
        for p in [0.001, 0.2, 0.5, 0.77, 0.999] {
            assert!((sigmoid(logit(p)) - p).abs() < 1e-12);
        }
        assert!(sigmoid(-800.0) >= 0.0 && sigmoid(800.0) <= 1.0);
    }

    #[test]
    fn truncated_exponential_stays_below_cap_and_keeps_its_mean() {
        let mut rng = StdRng::seed_from_u64(7);
        let (mean, cap) = (1.5, 14.0);
        let n = 200_000;
        let mut sum = 0.0;
        for _ in 0..n {
            let x = truncated_exponential(mean, cap, rng.random::<f64>());
            assert!((0.0..=cap).contains(&x));
            sum += x;
        }
        // Mean of the truncated law: m - c e^{-c/m} / (1 - e^{-c/m}).
        let e = (-cap / mean).exp();
        let expected = mean - cap * e / (1.0 - e);
        assert!(
            (sum / n as f64 - expected).abs() < 0.02,
            "{} vs {expected}",
            sum / n as f64
        );
    }

    #[test]
    fn unit_hash_is_uniform_enough() {
        let n = 100_000;
        let mut buckets = [0usize; 10];
        for c in 0..n {
            let u = unit_hash(3, c, 20_000);
            assert!((0.0..1.0).contains(&u));
            buckets[(u * 10.0) as usize] += 1;
        }
        for b in buckets {
            assert!((b as f64 - 10_000.0).abs() < 400.0, "{buckets:?}");
        }
    }

    #[test]
    fn streams_are_independent_of_call_order() {
        let mut a = rng_for(1, 5, 9, Purpose::Respond);
        let _ = rng_for(1, 6, 9, Purpose::Respond).random::<u64>();
        let mut b = rng_for(1, 5, 9, Purpose::Respond);
        assert_eq!(a.random::<u64>(), b.random::<u64>());
        let mut c = rng_for(1, 5, 9, Purpose::Organic);
        let mut d = rng_for(1, 5, 9, Purpose::Respond);
        assert_ne!(c.random::<u64>(), d.random::<u64>());
    }
}
