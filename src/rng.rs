//! A small seeded pseudo-random generator that runs anywhere (`no_std`).
//!
//! The chapter draws `W ~ N(0, sigma^2)` with TensorFlow's generator and
//! shuffles the data each epoch. We need the same two things, reproducibly
//! from a seed and without `std`: xoshiro256++ (Blackman and Vigna) for the
//! bits, SplitMix64 to spread a small seed over its 256-bit state, Box-Muller
//! for normal deviates and Fisher-Yates for shuffles.

/// xoshiro256++ pseudo-random generator. Not cryptographic; fast, small and
/// with a period of `2^256 - 1`, which is plenty for shuffling and init.
#[derive(Clone, Debug)]
pub struct Rng {
    state: [u64; 4],
}

impl Rng {
    /// A generator whose whole stream is determined by `seed`.
    pub fn seed_from_u64(seed: u64) -> Self {
        // SplitMix64 turns nearby seeds (0, 1, 2, ...) into unrelated states
        // and never yields the all-zero state xoshiro cannot leave.
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        Rng {
            state: [next(), next(), next(), next()],
        }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.state;
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// A uniform `f32` in `[0, 1)`, with all 24 bits of the mantissa random.
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 * (1.0 / (1u64 << 24) as f32)
    }

    /// A uniform `f64` in `[0, 1)`, with 53 random bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// A standard normal deviate, `N(0, 1)`, by the Box-Muller transform:
    /// `sqrt(-2 ln u1) * cos(2 pi u2)` for independent uniforms `u1, u2`.
    pub fn normal(&mut self) -> f32 {
        // 1 - u lies in (0, 1], so the logarithm is finite.
        let u1 = 1.0 - self.next_f64();
        let u2 = self.next_f64();
        let radius = libm::sqrt(-2.0 * libm::log(u1));
        (radius * libm::cos(core::f64::consts::TAU * u2)) as f32
    }

    /// A uniform integer in `0..n`, without the bias of `next % n`
    /// (Lemire's multiply-and-reject method).
    ///
    /// # Panics
    /// If `n` is 0.
    pub fn below(&mut self, n: u32) -> u32 {
        assert!(n > 0, "Rng::below(0) has no value to return");
        let mut product = (self.next_u64() >> 32) * u64::from(n);
        // The rejection threshold `2^32 mod n` is below `n`, so a low half
        // of at least `n` is accepted without computing it: the division
        // is needed about once in `2^32 / n` draws, not every draw.
        if (product as u32) < n {
            let threshold = n.wrapping_neg() % n;
            while (product as u32) < threshold {
                product = (self.next_u64() >> 32) * u64::from(n);
            }
        }
        (product >> 32) as u32
    }

    /// Puts `items` in a uniformly random order (Fisher-Yates).
    ///
    /// # Panics
    /// If `items` has more than `u32::MAX` elements.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        assert!(
            items.len() <= u32::MAX as usize,
            "too many items to shuffle"
        );
        for i in (1..items.len()).rev() {
            let j = self.below(i as u32 + 1) as usize;
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_different_seed_different_stream() {
        let mut a = Rng::seed_from_u64(7);
        let mut b = Rng::seed_from_u64(7);
        let mut c = Rng::seed_from_u64(8);
        let mut differs = false;
        for _ in 0..100 {
            let x = a.next_u64();
            assert_eq!(x, b.next_u64());
            differs |= x != c.next_u64();
        }
        assert!(differs);
    }

    #[test]
    fn normal_has_mean_zero_and_unit_variance() {
        let mut rng = Rng::seed_from_u64(1);
        let n = 200_000;
        let (mut sum, mut sum_sq) = (0.0f64, 0.0f64);
        for _ in 0..n {
            let x = f64::from(rng.normal());
            assert!(x.is_finite());
            sum += x;
            sum_sq += x * x;
        }
        let mean = sum / n as f64;
        let variance = sum_sq / n as f64 - mean * mean;
        // Standard errors are 1/sqrt(n) = 0.0022 for the mean and about
        // 0.0032 for the variance: 5 sigma bounds.
        assert!(mean.abs() < 0.012, "mean {mean}");
        assert!((variance - 1.0).abs() < 0.016, "variance {variance}");
    }

    #[test]
    fn below_is_uniform_and_in_range() {
        let mut rng = Rng::seed_from_u64(2);
        let mut counts = [0u32; 7];
        for _ in 0..70_000 {
            counts[rng.below(7) as usize] += 1;
        }
        for c in counts {
            // Expected 10,000 each, standard deviation about 93.
            assert!((9_500..10_500).contains(&c), "{counts:?}");
        }
    }

    /// The multiply-and-reject method in its plain form: the threshold
    /// computed for every draw.
    fn below_with_threshold_every_draw(rng: &mut Rng, n: u32) -> u32 {
        let threshold = n.wrapping_neg() % n;
        loop {
            let product = (rng.next_u64() >> 32) * u64::from(n);
            if (product as u32) >= threshold {
                return (product >> 32) as u32;
            }
        }
    }

    #[test]
    fn below_draws_what_the_threshold_every_draw_does() {
        // Large `n` just above a power of two reject nearly half their draws.
        for n in [1, 2, 3, 7, 1000, 60_000, (1 << 31) + 1, 3 << 30, u32::MAX] {
            let (mut fast, mut reference) = (Rng::seed_from_u64(9), Rng::seed_from_u64(9));
            for _ in 0..10_000 {
                assert_eq!(
                    fast.below(n),
                    below_with_threshold_every_draw(&mut reference, n)
                );
            }
            assert_eq!(fast.state, reference.state, "n = {n}");
        }
    }

    #[test]
    fn shuffle_is_a_permutation_and_moves_things() {
        let mut rng = Rng::seed_from_u64(3);
        let mut items = [0u16; 1000];
        for (i, x) in items.iter_mut().enumerate() {
            *x = i as u16;
        }
        rng.shuffle(&mut items);
        let mut seen = [false; 1000];
        for &x in &items {
            assert!(!seen[x as usize]);
            seen[x as usize] = true;
        }
        let fixed_points = items
            .iter()
            .enumerate()
            .filter(|(i, &x)| *i == x as usize)
            .count();
        assert!(fixed_points < 10, "{fixed_points} items stayed in place");
    }

    #[test]
    fn uniform_floats_stay_in_unit_interval() {
        let mut rng = Rng::seed_from_u64(4);
        for _ in 0..10_000 {
            let x = rng.next_f32();
            assert!((0.0..1.0).contains(&x));
        }
    }

    /// The streams are the published algorithms': these values come from
    /// a separate implementation of SplitMix64 seeding, xoshiro256++,
    /// Lemire's method and Fisher-Yates (written in Python from the
    /// published algorithms).
    /// A training run's initial weights and epoch order come from them, so
    /// a seed's results stay the same only while they do.
    #[test]
    fn streams_are_the_published_algorithms() {
        let mut rng = Rng::seed_from_u64(0);
        assert_eq!(
            rng.state,
            [
                0xe220_a839_7b1d_cdaf,
                0x6e78_9e6a_a1b9_65f4,
                0x06c4_5d18_8009_454f,
                0xf88b_b8a8_724c_81ec
            ]
        );
        let first: [u64; 4] = core::array::from_fn(|_| rng.next_u64());
        assert_eq!(
            first,
            [
                0x5317_5d61_490b_23df,
                0x61da_6f3d_c380_d507,
                0x5c0f_df91_ec9a_7bfc,
                0x02ee_bf8c_3bbe_5e1a
            ]
        );
        let mut rng = Rng::seed_from_u64(42);
        let first: [u64; 3] = core::array::from_fn(|_| rng.next_u64());
        assert_eq!(
            first,
            [
                0xd076_4d4f_4476_689f,
                0x519e_4174_576f_3791,
                0xfbe0_7cfb_0c24_ed8c
            ]
        );

        let mut rng = Rng::seed_from_u64(5);
        let floats: [f32; 3] = core::array::from_fn(|_| rng.next_f32());
        assert_eq!(floats, [0.292_022_82, 0.611_439_4, 0.097_963_214]);
        assert_eq!(
            [rng.next_f64(), rng.next_f64()],
            [0.058_611_202_242_922_045, 0.527_056_426_859_584_4]
        );

        let mut rng = Rng::seed_from_u64(6);
        let want = [-0.951_760_6f32, 0.668_381_04, -1.669_596_6, 0.045_846_596];
        for w in want {
            let got = rng.normal();
            assert!((got - w).abs() <= 1e-6 * w.abs(), "{got} vs {w}");
        }

        let mut rng = Rng::seed_from_u64(7);
        let below = [1, 2, 3, 7, 10, 1000, u32::MAX, (1 << 31) + 1].map(|n| rng.below(n));
        assert_eq!(below, [0, 0, 2, 2, 9, 465, 3_109_157_298, 157_375_742]);

        let mut rng = Rng::seed_from_u64(8);
        let mut items: [u8; 10] = core::array::from_fn(|i| i as u8);
        rng.shuffle(&mut items);
        assert_eq!(items, [8, 0, 5, 1, 6, 7, 4, 2, 9, 3]);
    }
}
