//! The chapter's image pipeline: scale `u8` pixels to `[0, 1]` and resize the
//! 28x28 images to 32x32, exactly as `tf.image.resize(x / 255, (32, 32))`.
//!
//! TensorFlow's bilinear resize (no antialiasing) uses *half-pixel centres*:
//! output pixel `o` samples the source at `s = (o + 0.5) * 28/32 - 0.5`, between
//! source pixels `floor(s)` and `ceil(s)`, both clamped to the image, with weight
//! `s - floor(s)` on the second. Rows and columns use the same taps, and we
//! interpolate in the same order (along a row first, then between rows) and
//! in `f32`, so the output matches TensorFlow's to within rounding.

use crate::fashion_mnist::{PIXELS, RESIZED_PIXELS, RESIZED_SIDE, SIDE};

/// One output coordinate of a 1-D bilinear resize: the two source
/// coordinates it blends and the weight of the second.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tap {
    /// Lower source index, `max(floor(s), 0)`.
    pub lower: usize,
    /// Upper source index, `min(ceil(s), in_size - 1)`.
    pub upper: usize,
    /// Weight of `upper`: `s - floor(s)`.
    pub frac: f32,
}

/// The taps of a 1-D resize from `IN_SIZE` to `OUT_SIZE` samples with
/// half-pixel centres, as TensorFlow's `compute_interpolation_weights`.
pub const fn taps<const IN_SIZE: usize, const OUT_SIZE: usize>() -> [Tap; OUT_SIZE] {
    let scale = IN_SIZE as f32 / OUT_SIZE as f32;
    let mut taps = [Tap {
        lower: 0,
        upper: 0,
        frac: 0.0,
    }; OUT_SIZE];
    let mut o = 0;
    while o < OUT_SIZE {
        let s = (o as f32 + 0.5) * scale - 0.5;
        // floor and ceil by hand: `f32::floor` is not a `const fn` in core.
        let truncated = s as i64 as f32;
        let floor = if truncated > s {
            truncated - 1.0
        } else {
            truncated
        };
        let ceil = if floor < s { floor + 1.0 } else { floor };
        let lower = if floor < 0.0 { 0 } else { floor as usize };
        let upper = if ceil as usize > IN_SIZE - 1 {
            IN_SIZE - 1
        } else {
            ceil as usize
        };
        taps[o] = Tap {
            lower,
            upper,
            frac: s - floor,
        };
        o += 1;
    }
    taps
}

/// The taps of the chapter's resize, 28 -> 32, computed at compile time.
pub const TAPS_28_TO_32: [Tap; RESIZED_SIDE] = taps::<SIDE, RESIZED_SIDE>();

/// `x / 255` for every pixel: the chapter's scaling to `[0, 1]`, without resize
/// (the 784-input variant of the model).
pub fn scale_28(src: &[u8; PIXELS], dst: &mut [f32; PIXELS]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = f32::from(s) / 255.0;
    }
}

/// `tf.image.resize(x / 255, (32, 32))` of one 28x28 image, flattened
/// row-major into 1024 values in `[0, 1]`.
pub fn resize_28_to_32(src: &[u8; PIXELS], dst: &mut [f32; RESIZED_PIXELS]) {
    let pixel = |row: usize, col: usize| f32::from(src[row * SIDE + col]) / 255.0;
    for (y, ty) in TAPS_28_TO_32.iter().enumerate() {
        for (x, tx) in TAPS_28_TO_32.iter().enumerate() {
            let top_left = pixel(ty.lower, tx.lower);
            let top_right = pixel(ty.lower, tx.upper);
            let bottom_left = pixel(ty.upper, tx.lower);
            let bottom_right = pixel(ty.upper, tx.upper);
            let top = top_left + (top_right - top_left) * tx.frac;
            let bottom = bottom_left + (bottom_right - bottom_left) * tx.frac;
            dst[y * RESIZED_SIDE + x] = top + (bottom - top) * ty.frac;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taps_follow_half_pixel_centres() {
        // o = 0 samples s = -0.0625: clamped to pixel 0 on both sides.
        assert_eq!(TAPS_28_TO_32[0].lower, 0);
        assert_eq!(TAPS_28_TO_32[0].upper, 0);
        // o = 1 samples s = 0.8125, between pixels 0 and 1.
        assert_eq!((TAPS_28_TO_32[1].lower, TAPS_28_TO_32[1].upper), (0, 1));
        assert!((TAPS_28_TO_32[1].frac - 0.8125).abs() < 1e-7);
        // o = 31 samples s = 27.0625: past the last pixel, clamped to 27.
        assert_eq!((TAPS_28_TO_32[31].lower, TAPS_28_TO_32[31].upper), (27, 27));
        // Whole-number sample points blend nothing: o = 4 samples s = 3.4375,
        // and 28 -> 28 is the identity.
        for (o, t) in taps::<28, 28>().iter().enumerate() {
            assert_eq!((t.lower, t.upper, t.frac), (o, o, 0.0));
        }
    }

    #[test]
    fn constant_images_stay_constant() {
        let src = [200u8; PIXELS];
        let mut dst = [0.0; RESIZED_PIXELS];
        resize_28_to_32(&src, &mut dst);
        for v in dst {
            assert!((v - 200.0 / 255.0).abs() < 1e-7);
        }
    }
}
