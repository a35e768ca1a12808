//! The Fashion-MNIST dataset (Xiao, Rasul, Vollgraf 2017) as the model sees
//! it: its sizes and classes, labelled examples, and the map from an image's
//! pixels to the model's inputs.

use crate::resize;

/// Side of one image in pixels: every image is `SIDE x SIDE` grayscale.
pub const SIDE: usize = 28;

/// Pixels in one image as stored in the IDX files (`28 * 28 = 784`).
pub const PIXELS: usize = SIDE * SIDE;

/// Side of the images after the chapter's resize (`tf.image.resize(x, (32, 32))`).
pub const RESIZED_SIDE: usize = 32;

/// Inputs of the chapter's model: the resized image flattened (`32 * 32 = 1024`).
pub const RESIZED_PIXELS: usize = RESIZED_SIDE * RESIZED_SIDE;

/// Number of classes.
pub const CLASSES: usize = 10;

/// Class names in label order, as the chapter's `text_labels` prints them.
pub const CLASS_NAMES: [&str; CLASSES] = [
    "t-shirt",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle boot",
];

/// Labelled examples as raw pixels, e.g. straight from memory-mapped IDX
/// files: what training and evaluation read.
#[derive(Clone, Copy, Debug)]
pub struct Examples<'a> {
    /// One 28x28 image per example, row-major.
    pub images: &'a [[u8; PIXELS]],
    /// One label per example, each `< CLASSES`.
    pub labels: &'a [u8],
}

impl Examples<'_> {
    /// Number of examples (images; there should be as many labels).
    pub fn len(&self) -> usize {
        self.images.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }

    /// The first example that cannot be used: a missing label, or one that
    /// is not a class (`>= CLASSES`). `None` when all are good.
    pub fn first_bad(&self) -> Option<usize> {
        if self.labels.len() < self.images.len() {
            return Some(self.labels.len());
        }
        self.labels[..self.images.len()]
            .iter()
            .position(|&l| usize::from(l) >= CLASSES)
    }
}

/// How an image's 784 raw pixels become the model's `IN` inputs: as they
/// are ([`Native`], the 28x28 model) or resized ([`Resized`], the chapter's
/// 32x32 model). The map is linear, so instead of applying it to every
/// image, training and evaluation fold it into the weights.
pub trait InputMap<const IN: usize>: folding::Gram {
    /// Side of the square image the model's inputs form.
    const IMAGE_SIDE: usize;

    /// The map itself: pixels (scaled by 1/255) to model inputs.
    fn map(pixels: &[u8; PIXELS], inputs: &mut [f32; IN]);

    /// `w_eff = scale * M^T w`: weights on the raw pixels equivalent to `w`
    /// on the mapped inputs, times `scale` (1/255 folds the pixel scale in,
    /// so the folded weights apply to raw `u8` pixels).
    fn fold(w: &[f32; IN], scale: f32, w_eff: &mut [f32; PIXELS]);

    /// `w += scale * M g`: a gradient with respect to the folded weights
    /// taken back to the model's weights.
    fn unfold_add(g: &[f32; PIXELS], scale: f32, w: &mut [f32; IN]);
}

/// The 28x28 model: inputs are the pixels themselves (784 inputs).
#[derive(Clone, Copy, Debug)]
pub struct Native;

/// The chapter's model: images resized to 32x32 (1024 inputs).
#[derive(Clone, Copy, Debug)]
pub struct Resized;

impl InputMap<PIXELS> for Native {
    const IMAGE_SIDE: usize = SIDE;

    fn map(pixels: &[u8; PIXELS], inputs: &mut [f32; PIXELS]) {
        resize::scale_28(pixels, inputs);
    }

    fn fold(w: &[f32; PIXELS], scale: f32, w_eff: &mut [f32; PIXELS]) {
        for (e, v) in w_eff.iter_mut().zip(w) {
            *e = scale * v;
        }
    }

    fn unfold_add(g: &[f32; PIXELS], scale: f32, w: &mut [f32; PIXELS]) {
        for (w, g) in w.iter_mut().zip(g) {
            *w += scale * g;
        }
    }
}

impl InputMap<RESIZED_PIXELS> for Resized {
    const IMAGE_SIDE: usize = RESIZED_SIDE;

    fn map(pixels: &[u8; PIXELS], inputs: &mut [f32; RESIZED_PIXELS]) {
        resize::resize_28_to_32(pixels, inputs);
    }

    fn fold(w: &[f32; RESIZED_PIXELS], scale: f32, w_eff: &mut [f32; PIXELS]) {
        resize::fold_resize_into_weights(w, scale, w_eff);
    }

    fn unfold_add(g: &[f32; PIXELS], scale: f32, w: &mut [f32; RESIZED_PIXELS]) {
        resize::unfold_gradient_add(g, scale, w);
    }
}

/// What a training step does to folded weights, per input map (sealed:
/// only [`Native`] and [`Resized`] are input maps).
#[allow(private_bounds, private_interfaces)]
mod folding {
    use super::{Native, Resized, PIXELS};
    use crate::resize::{self, GramScratch};
    use crate::simd::Simd;

    pub trait Gram {
        /// `w_eff += scale * M^T M g`: the unfold of a step `g` followed by
        /// the fold, in one cheaper pass, in `scratch` if it needs one.
        fn gram_add<S: Simd>(
            s: S,
            g: &[f32; PIXELS],
            scale: f32,
            w_eff: &mut [f32; PIXELS],
            scratch: &mut GramScratch,
        );
    }

    impl Gram for Native {
        #[inline(always)]
        fn gram_add<S: Simd>(
            _: S,
            g: &[f32; PIXELS],
            scale: f32,
            w_eff: &mut [f32; PIXELS],
            _: &mut GramScratch,
        ) {
            // M is the identity.
            for (w, g) in w_eff.iter_mut().zip(g) {
                *w += scale * g;
            }
        }
    }

    impl Gram for Resized {
        #[inline(always)]
        fn gram_add<S: Simd>(
            s: S,
            g: &[f32; PIXELS],
            scale: f32,
            w_eff: &mut [f32; PIXELS],
            scratch: &mut GramScratch,
        ) {
            resize::gram_add_with(s, g, scale, w_eff, scratch);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Rng;

    fn image(seed: u64) -> [u8; PIXELS] {
        let mut rng = Rng::seed_from_u64(seed);
        core::array::from_fn(|_| rng.below(256) as u8)
    }

    #[test]
    fn native_inputs_are_the_pixels_over_255() {
        let pixels = image(1);
        let mut inputs = [f32::NAN; PIXELS];
        Native::map(&pixels, &mut inputs);
        for (&x, &p) in inputs.iter().zip(&pixels) {
            assert_eq!(x, f32::from(p) / 255.0);
        }
        assert_eq!(<Native as InputMap<PIXELS>>::IMAGE_SIDE, 28);
    }

    #[test]
    fn resized_inputs_are_the_chapters_resize() {
        let pixels = image(2);
        let (mut got, mut want) = ([f32::NAN; RESIZED_PIXELS], [0.0; RESIZED_PIXELS]);
        Resized::map(&pixels, &mut got);
        resize::resize_28_to_32(&pixels, &mut want);
        assert_eq!(got, want);
        assert_eq!(<Resized as InputMap<RESIZED_PIXELS>>::IMAGE_SIDE, 32);
    }

    /// For either map `M`: `fold` gives weights on the pixels with the same
    /// dot product as `w` on the mapped inputs, and `unfold_add` adds
    /// `scale * M g` (so `w . M x = M^T w . x` ties it to `fold`).
    fn check_fold_and_unfold<const IN: usize, M: InputMap<IN>>() {
        let mut rng = Rng::seed_from_u64(3);
        let w: [f32; IN] = core::array::from_fn(|_| rng.normal());
        let pixels = image(4);
        let mut x = [0.0f32; IN];
        M::map(&pixels, &mut x);
        let mut w_eff = [f32::NAN; PIXELS];
        M::fold(&w, 1.0 / 255.0, &mut w_eff);
        let on_inputs: f32 = w.iter().zip(&x).map(|(a, b)| a * b).sum();
        let on_pixels: f32 = w_eff
            .iter()
            .zip(&pixels)
            .map(|(a, &p)| a * f32::from(p))
            .sum();
        assert!(
            (on_inputs - on_pixels).abs() < 1e-3,
            "{on_inputs} vs {on_pixels}"
        );

        // `g` = the pixels as numbers: `unfold_add(g, 1/255)` adds `M g / 255`,
        // which is `x` itself.
        let g = pixels.map(f32::from);
        let mut moved = w;
        M::unfold_add(&g, 1.0 / 255.0, &mut moved);
        for ((m, w), x) in moved.iter().zip(&w).zip(&x) {
            assert!((m - (w + x)).abs() < 1e-5, "{m} vs {w} + {x}");
        }
    }

    #[test]
    fn folding_and_unfolding_agree_with_the_map() {
        check_fold_and_unfold::<PIXELS, Native>();
        check_fold_and_unfold::<RESIZED_PIXELS, Resized>();
    }

    #[test]
    fn examples_find_their_first_bad_label() {
        let images = [[0u8; PIXELS]; 3];
        let good = Examples {
            images: &images,
            labels: &[0, 9, 4],
        };
        assert_eq!(
            (good.len(), good.is_empty(), good.first_bad()),
            (3, false, None)
        );
        let out_of_range = Examples {
            labels: &[0, 10, 4],
            ..good
        };
        assert_eq!(out_of_range.first_bad(), Some(1));
        let missing = Examples {
            labels: &[0, 1],
            ..good
        };
        assert_eq!(missing.first_bad(), Some(2));
        // Labels past the last image do not matter.
        let extra = Examples {
            labels: &[0, 1, 2, 200],
            ..good
        };
        assert_eq!(extra.first_bad(), None);
        let none = Examples {
            images: &[],
            labels: &[],
        };
        assert_eq!(
            (none.len(), none.is_empty(), none.first_bad()),
            (0, true, None)
        );
    }
}
