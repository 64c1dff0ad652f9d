//! Latency sketches: counts in log-scale buckets, in the style of DDSketch,
//! with a relative accuracy of 1 %. Any quantile read back is within 1 % of
//! a value that really is at that rank, however many sketches were merged,
//! and a sketch stays small: a site whose latency spans 10 ms to 10 s needs
//! at most 350 buckets, usually a few dozen.
//!
//! A value `x` (milliseconds) goes to bucket `ceil(ln x / ln γ)` with
//! γ = (1 + α) / (1 − α), α = 0.01; the bucket's value is `2γᵏ / (γ + 1)`.
//! PostgreSQL computes the same keys (`sitewatch_sketch_key` in
//! `migrations/`), so rollups filled in SQL and in Rust agree. (Migration
//! 0003's comments call this file `src/sketch.rs`, its path when it was
//! written; an applied migration is never edited, its checksum would no
//! longer match.)

use smallvec::SmallVec;

/// α: the largest relative error of a quantile read back.
pub const RELATIVE_ACCURACY: f64 = 0.01;

/// ln γ for α = 0.01, written out as the migration writes it.
pub const LN_GAMMA: f64 = 0.020000666706669435;

/// The bucket of values at or below [`MIN_VALUE`] (zero, in practice).
pub const ZERO_KEY: i16 = i16::MIN;

/// Values at or below this (milliseconds) count as zero.
pub const MIN_VALUE: f64 = 1e-6;

/// The bucket a latency in milliseconds falls in.
pub fn key(ms: f64) -> i16 {
    if ms.is_nan() || ms <= MIN_VALUE {
        return ZERO_KEY;
    }
    let k = (ms.ln() / LN_GAMMA).ceil();
    k.clamp(f64::from(ZERO_KEY + 1), f64::from(i16::MAX)) as i16
}

/// The value a bucket stands for: within α of every value in it.
pub fn value(key: i16) -> f64 {
    if key == ZERO_KEY {
        return 0.0;
    }
    let gamma = LN_GAMMA.exp();
    2.0 * (f64::from(key) * LN_GAMMA).exp() / (gamma + 1.0)
}

/// Counts per bucket, in key order (a short sorted vector: most sketches
/// hold a few buckets, and one check's hold one).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sketch {
    /// Two buckets inline: one check's sketch allocates nothing.
    buckets: SmallVec<[(i16, u32); 2]>,
}

impl Sketch {
    pub fn add(&mut self, ms: f64) {
        self.add_bucket(key(ms), 1);
    }

    /// Adds an optional value: `None` (a phase not measured) counts nothing.
    pub fn add_some(&mut self, ms: Option<f64>) {
        if let Some(ms) = ms {
            self.add(ms);
        }
    }

    /// Adds `other`'s counts: one pass over both sorted bucket lists.
    pub fn merge(&mut self, other: &Sketch) {
        match (self.buckets.len(), other.buckets.len()) {
            (_, 0) => return,
            (0, _) => {
                self.buckets.clone_from(&other.buckets);
                return;
            }
            (_, 1) => {
                let (k, n) = other.buckets[0];
                self.add_bucket(k, n);
                return;
            }
            _ => {}
        }
        let (a, b) = (&self.buckets, &other.buckets);
        let mut out: SmallVec<[(i16, u32); 2]> = SmallVec::with_capacity(a.len() + b.len());
        let (mut i, mut j) = (0, 0);
        while i < a.len() && j < b.len() {
            let ((ka, na), (kb, nb)) = (a[i], b[j]);
            if ka < kb {
                out.push((ka, na));
                i += 1;
            } else if kb < ka {
                out.push((kb, nb));
                j += 1;
            } else {
                out.push((ka, na.saturating_add(nb)));
                i += 1;
                j += 1;
            }
        }
        out.extend_from_slice(&a[i..]);
        out.extend_from_slice(&b[j..]);
        self.buckets = out;
    }

    /// The sum of many sketches at once, in one [`SketchSum`], rather than
    /// merged pair by pair (a month of daily sketches: 30 merges, each
    /// copying the growing sum).
    pub fn sum<'a>(sketches: impl IntoIterator<Item = &'a Sketch>) -> Sketch {
        let mut sum = SketchSum::default();
        for s in sketches {
            sum.add(s);
        }
        sum.sketch()
    }

    /// Values counted.
    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|&(_, n)| u64::from(n)).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    /// The `q` quantile (0 to 1): the value of rank `q × (n − 1)` (the
    /// lower one), or `None` for an empty sketch.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let n = self.count();
        if n == 0 {
            return None;
        }
        let rank = (q.clamp(0.0, 1.0) * (n - 1) as f64).floor() as u64;
        let mut seen = 0;
        for &(k, c) in &self.buckets {
            seen += u64::from(c);
            if seen > rank {
                return Some(value(k));
            }
        }
        self.buckets.last().map(|&(k, _)| value(k))
    }

    /// The buckets and their counts, as the rollup tables store them
    /// (`smallint[]`, `integer[]`), in key order.
    pub fn to_arrays(&self) -> (Vec<i16>, Vec<i32>) {
        self.buckets
            .iter()
            .map(|&(k, n)| (k, i32::try_from(n).unwrap_or(i32::MAX)))
            .unzip()
    }

    /// The inverse of [`Sketch::to_arrays`]; a count that is not positive
    /// is ignored.
    pub fn from_arrays(keys: &[i16], counts: &[i32]) -> Sketch {
        let mut sketch = Sketch::default();
        sketch.buckets.reserve(keys.len().min(counts.len()));
        for (k, n) in keys.iter().zip(counts) {
            let Ok(n @ 1..) = u32::try_from(*n) else {
                continue;
            };
            match sketch.buckets.last() {
                // Stored in key order: appended, no search.
                Some(&(last, _)) if last >= *k => sketch.add_bucket(*k, n),
                _ => sketch.buckets.push((*k, n)),
            }
        }
        sketch
    }

    /// The buckets as the rollup tables' `*_packed` columns hold them (what
    /// `sitewatch_sketch_pack` makes of the arrays): per bucket in key
    /// order, the key (2 bytes) and the count (4 bytes), big-endian.
    /// PostgreSQL sends these bytes as they are; it sends arrays element by
    /// element, ten times slower.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.buckets.len() * 6);
        for &(k, n) in &self.buckets {
            out.extend_from_slice(&k.to_be_bytes());
            out.extend_from_slice(&i32::try_from(n).unwrap_or(i32::MAX).to_be_bytes());
        }
        out
    }

    /// The inverse of [`Sketch::to_bytes`]; a count that is not positive is
    /// ignored, and bytes that are not whole buckets are an error.
    pub fn from_bytes(bytes: &[u8]) -> anyhow::Result<Sketch> {
        if !bytes.len().is_multiple_of(6) {
            anyhow::bail!(
                "a packed sketch of {} bytes is not whole buckets",
                bytes.len()
            );
        }
        let mut sketch = Sketch::default();
        sketch.buckets.reserve(bytes.len() / 6);
        for (k, n) in packed_buckets(bytes) {
            match sketch.buckets.last() {
                Some(&(last, _)) if last >= k => sketch.add_bucket(k, n),
                _ => sketch.buckets.push((k, n)),
            }
        }
        Ok(sketch)
    }

    /// Buckets in key order.
    pub fn buckets(&self) -> impl ExactSizeIterator<Item = (i16, u32)> + '_ {
        self.buckets.iter().copied()
    }

    pub fn add_bucket(&mut self, key: i16, count: u32) {
        if count == 0 {
            return;
        }
        match self.buckets.binary_search_by_key(&key, |&(k, _)| k) {
            Ok(i) => self.buckets[i].1 = self.buckets[i].1.saturating_add(count),
            Err(i) => self.buckets.insert(i, (key, count)),
        }
    }
}

/// The buckets of a packed sketch ([`Sketch::to_bytes`]) in stored order;
/// a count that is not positive, and a tail shorter than a bucket, are
/// skipped.
fn packed_buckets(bytes: &[u8]) -> impl Iterator<Item = (i16, u32)> + '_ {
    bytes.chunks_exact(6).filter_map(|b| {
        let k = i16::from_be_bytes([b[0], b[1]]);
        let n = u32::try_from(i32::from_be_bytes([b[2], b[3], b[4], b[5]])).ok()?;
        (n > 0).then_some((k, n))
    })
}

/// Many sketches added up in one dense row of counts over the keys they
/// span: no vector per sketch, and packed sketches are added straight from
/// their bytes (the report's month of daily sketches).
#[derive(Debug, Default)]
pub struct SketchSum {
    lo: i32,
    counts: Vec<u32>,
}

impl SketchSum {
    fn add_bucket(&mut self, key: i16, count: u32) {
        let k = i32::from(key);
        if self.counts.is_empty() {
            self.lo = k;
        } else if k < self.lo {
            let extra = (self.lo - k) as usize;
            self.counts.splice(0..0, std::iter::repeat_n(0, extra));
            self.lo = k;
        }
        let i = (k - self.lo) as usize;
        if i >= self.counts.len() {
            self.counts.resize(i + 1, 0);
        }
        self.counts[i] = self.counts[i].saturating_add(count);
    }

    pub fn add(&mut self, sketch: &Sketch) {
        for &(k, n) in &sketch.buckets {
            self.add_bucket(k, n);
        }
    }

    /// Adds a packed sketch; a damaged tail is ignored.
    pub fn add_packed(&mut self, bytes: &[u8]) {
        for (k, n) in packed_buckets(bytes) {
            self.add_bucket(k, n);
        }
    }

    pub fn sketch(&self) -> Sketch {
        let mut sketch = Sketch::default();
        sketch.buckets.extend(
            self.counts
                .iter()
                .enumerate()
                .filter(|(_, n)| **n > 0)
                .map(|(i, n)| ((self.lo + i as i32) as i16, *n)),
        );
        sketch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The exact lower quantile, as `Sketch::quantile` defines the rank.
    fn exact(sorted: &[f64], q: f64) -> f64 {
        sorted[(q * (sorted.len() - 1) as f64).floor() as usize]
    }

    #[test]
    fn ln_gamma_is_the_one_for_one_percent() {
        let gamma = (1.0 + RELATIVE_ACCURACY) / (1.0 - RELATIVE_ACCURACY);
        assert!((gamma.ln() - LN_GAMMA).abs() < 1e-15);
    }

    #[test]
    fn every_value_is_within_one_percent_of_its_bucket() {
        let mut x = 0.001;
        while x < 1e7 {
            let v = value(key(x));
            assert!(
                (v - x).abs() <= RELATIVE_ACCURACY * x * (1.0 + 1e-9),
                "{x} -> {v}"
            );
            x *= 1.0007;
        }
        assert_eq!(value(key(0.0)), 0.0);
        assert_eq!(key(-3.0), ZERO_KEY);
        assert_eq!(key(f64::NAN), ZERO_KEY);
    }

    #[test]
    fn merging_is_adding_every_bucket() {
        let mut seed = 7u64;
        let mut next = move || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            seed >> 33
        };
        for _ in 0..200 {
            let mut sketches = Vec::new();
            for _ in 0..3 {
                let mut s = Sketch::default();
                for _ in 0..next() % 40 {
                    s.add_bucket((next() % 60) as i16 - 10, (next() % 5) as u32);
                }
                sketches.push(s);
            }
            let mut merged = sketches[0].clone();
            merged.merge(&sketches[1]);
            merged.merge(&sketches[2]);
            let mut added = sketches[0].clone();
            for s in &sketches[1..] {
                for (k, n) in s.buckets() {
                    added.add_bucket(k, n);
                }
            }
            assert_eq!(merged, added);
            let (keys, counts) = merged.to_arrays();
            assert_eq!(Sketch::from_arrays(&keys, &counts), merged);
        }
        // Out of order and zero counts from an array still make a sketch.
        let s = Sketch::from_arrays(&[5, 3, 5, 9], &[1, 2, 0, 4]);
        assert_eq!(s.buckets().collect::<Vec<_>>(), [(3, 2), (5, 1), (9, 4)]);
    }

    #[test]
    fn quantiles_of_merged_sketches_are_within_one_percent() {
        // Three skewed, overlapping populations, merged as rollups merge.
        let mut rng = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            (rng >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut all = Vec::new();
        let mut merged = Sketch::default();
        for (base, spread) in [(20.0, 3.0_f64), (150.0, 1.5), (900.0, 8.0)] {
            let mut part = Sketch::default();
            for _ in 0..5000 {
                let v = base * spread.powf(next());
                part.add(v);
                all.push(v);
            }
            merged.merge(&part);
        }
        all.sort_by(f64::total_cmp);
        assert_eq!(merged.count(), all.len() as u64);
        for q in [0.0, 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0] {
            let got = merged.quantile(q).unwrap();
            let want = exact(&all, q);
            assert!(
                (got - want).abs() <= RELATIVE_ACCURACY * want * (1.0 + 1e-9),
                "q={q}: {got} vs {want}"
            );
        }
    }

    #[test]
    fn a_sum_is_the_pairwise_merges() {
        let sketches: Vec<Sketch> = (0..30)
            .map(|i| {
                let mut s = Sketch::default();
                for j in 0..(i * 7 % 50) {
                    s.add(0.5 + f64::from(j * i) * 3.7);
                }
                s
            })
            .collect();
        let mut merged = Sketch::default();
        for s in &sketches {
            merged.merge(s);
        }
        assert_eq!(Sketch::sum(&sketches), merged);
        let mut packed = SketchSum::default();
        for s in &sketches {
            packed.add_packed(&s.to_bytes());
        }
        assert_eq!(packed.sketch(), merged, "summed from the bytes");
        assert_eq!(Sketch::sum(&Vec::<Sketch>::new()), Sketch::default());
    }

    #[test]
    fn bytes_round_trip_like_arrays() {
        let mut s = Sketch::default();
        for ms in [0.0, 0.5, 3.0, 3.01, 250.0, 250.0, 60_000.0] {
            s.add(ms);
        }
        let bytes = s.to_bytes();
        assert_eq!(bytes.len(), s.buckets().len() * 6);
        assert_eq!(Sketch::from_bytes(&bytes).unwrap(), s);
        let (keys, counts) = s.to_arrays();
        assert_eq!(
            Sketch::from_arrays(&keys, &counts),
            Sketch::from_bytes(&bytes).unwrap()
        );
        assert!(Sketch::from_bytes(&bytes[..5]).is_err());
        assert_eq!(Sketch::from_bytes(&[]).unwrap(), Sketch::default());
    }

    #[test]
    fn arrays_round_trip_and_empty_has_no_quantile() {
        let mut s = Sketch::default();
        for v in [0.0, 1.0, 1.0, 250.0, 10_000.0] {
            s.add(v);
        }
        let (k, c) = s.to_arrays();
        assert_eq!(Sketch::from_arrays(&k, &c), s);
        assert_eq!(Sketch::default().quantile(0.5), None);
        assert_eq!(s.quantile(0.0), Some(0.0));
    }
}
