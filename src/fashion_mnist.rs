//! Facts about the Fashion-MNIST dataset (Xiao, Rasul, Vollgraf 2017).

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
