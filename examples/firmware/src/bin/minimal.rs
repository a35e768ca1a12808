//! The least firmware that runs softreg: classify one image with the model in
//! flash and exit with status 0 if the class is the host's. No printing, so
//! its size is the model path's footprint: the runtime, the model file, the
//! inference code and one image.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use cortex_m_semihosting::debug::{self, EXIT_FAILURE, EXIT_SUCCESS};
use softreg::inference::Classifier;

#[repr(C, align(4))] // the model's f32 values are read in place
struct Aligned<T: ?Sized>(T);

#[cfg(not(feature = "int8"))]
static MODEL: &Aligned<[u8]> = &Aligned(*include_bytes!("../../assets/model-f32.bin"));
#[cfg(feature = "int8")]
static MODEL: &Aligned<[u8]> = &Aligned(*include_bytes!("../../assets/model-int8.bin"));
#[cfg(not(feature = "int8"))]
const HOST: &[u8] = include_bytes!("../../assets/host-f32.bin");
#[cfg(feature = "int8")]
const HOST: &[u8] = include_bytes!("../../assets/host-int8.bin");
/// The first test image of the bundle.
static IMAGE: [u8; 784] = match include_bytes!("../../assets/images.bin").first_chunk() {
    Some(image) => *image,
    None => panic!("no image"),
};

#[entry]
fn main() -> ! {
    let Ok(classifier) = Classifier::<1024, 10>::new(&MODEL.0) else {
        exit(EXIT_FAILURE)
    };
    let prediction = classifier.classify(&IMAGE);
    let same = prediction.class == usize::from(HOST[0])
        && prediction.probability.to_bits().to_le_bytes() == HOST[4..8];
    exit(if same { EXIT_SUCCESS } else { EXIT_FAILURE })
}

fn exit(status: debug::ExitStatus) -> ! {
    debug::exit(status);
    loop {
        cortex_m::asm::wfi();
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    exit(EXIT_FAILURE)
}
