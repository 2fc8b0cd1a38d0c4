//! Which pre-built body a request sends: uniform or Zipf picks among K keys,
//! and a weighted pick among models.

use anyhow::Context;
use rand::distr::weighted::WeightedIndex;
use rand::distr::Distribution;
use rand::Rng;
use rand_distr::Zipf;

use super::args::KeyDist;

/// Picks a key in `0..len`.
#[derive(Debug, Clone)]
pub enum KeyPicker {
    /// Every key equally likely.
    Uniform(usize),
    /// Key k (0-based) with probability proportional to 1/(k+1)^s.
    Zipf(Zipf<f64>),
}

impl KeyPicker {
    /// A picker over `len` keys.
    pub fn new(len: usize, dist: KeyDist, s: f64) -> anyhow::Result<KeyPicker> {
        Ok(match dist {
            KeyDist::Uniform => KeyPicker::Uniform(len.max(1)),
            KeyDist::Zipf => KeyPicker::Zipf(
                Zipf::new(len.max(1) as f64, s)
                    .with_context(|| format!("--zipf-s {s} over {len} keys"))?,
            ),
        })
    }

    /// The next key.
    pub fn pick(&self, rng: &mut impl Rng) -> usize {
        match self {
            KeyPicker::Uniform(len) => rng.random_range(0..*len),
            // Zipf samples are whole numbers in [1, len].
            KeyPicker::Zipf(zipf) => zipf.sample(rng) as usize - 1,
        }
    }
}

/// Picks a model index in proportion to the weights (always 0 for one model).
#[derive(Debug, Clone)]
pub struct ModelPicker(Option<WeightedIndex<f64>>);

impl ModelPicker {
    /// A picker over `weights` (all positive).
    pub fn new(weights: &[f64]) -> anyhow::Result<ModelPicker> {
        if weights.len() < 2 {
            return Ok(ModelPicker(None));
        }
        Ok(ModelPicker(Some(
            WeightedIndex::new(weights).context("model weights")?,
        )))
    }

    /// The next model.
    pub fn pick(&self, rng: &mut impl Rng) -> usize {
        self.0.as_ref().map_or(0, |w| w.sample(rng))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;

    fn counts(picker: &KeyPicker, len: usize, draws: usize) -> Vec<usize> {
        let mut rng = SmallRng::seed_from_u64(42);
        let mut counts = vec![0; len];
        for _ in 0..draws {
            counts[picker.pick(&mut rng)] += 1;
        }
        counts
    }

    #[test]
    fn zipf_prefers_low_keys_in_the_expected_ratio() {
        let len = 100;
        let draws = 200_000;
        let picker = KeyPicker::new(len, KeyDist::Zipf, 1.1).unwrap();
        let counts = counts(&picker, len, draws);
        // Every draw lands in range and the counts fall with the rank.
        assert_eq!(counts.iter().sum::<usize>(), draws);
        assert!(counts[0] > counts[1] && counts[1] > counts[9] && counts[9] > counts[99]);
        // P(k=1)/P(k=2) = 2^1.1 ≈ 2.14.
        let ratio = counts[0] as f64 / counts[1] as f64;
        assert!((ratio - 2f64.powf(1.1)).abs() < 0.1, "ratio {ratio}");
        // P(k=1) = 1 / H(100, 1.1).
        let h: f64 = (1..=len).map(|k| (k as f64).powf(-1.1)).sum();
        let p1 = counts[0] as f64 / draws as f64;
        assert!((p1 - 1.0 / h).abs() < 0.01, "p1 {p1} vs {}", 1.0 / h);
    }

    #[test]
    fn uniform_covers_every_key() {
        let picker = KeyPicker::new(10, KeyDist::Uniform, 1.1).unwrap();
        let counts = counts(&picker, 10, 100_000);
        assert!(
            counts.iter().all(|&c| (9_000..11_000).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn model_mix_follows_the_weights() {
        let picker = ModelPicker::new(&[3.0, 1.0]).unwrap();
        let mut rng = SmallRng::seed_from_u64(1);
        let first = (0..40_000).filter(|_| picker.pick(&mut rng) == 0).count();
        assert!((29_000..31_000).contains(&first), "{first}");
        assert_eq!(ModelPicker::new(&[1.0]).unwrap().pick(&mut rng), 0);
    }
}
