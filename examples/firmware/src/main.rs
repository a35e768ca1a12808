//! softreg on a Cortex-M4: classifies the 32 Fashion-MNIST test images in
//! `assets/` with the trained model in `assets/`, used in place from flash,
//! prints every prediction, the accuracy and the measurements, checks each
//! prediction (class, probability and logits, bit for bit) against the host's,
//! and exits through semihosting: status 0 when all agree, 1 otherwise.
//!
//! `cargo run --release` (f32 model) or `cargo run --release --features int8`
//! runs it in QEMU; see README.md.
#![no_std]
#![no_main]

use core::panic::PanicInfo;
use core::ptr::{addr_of, read_volatile, write_volatile};
use cortex_m::peripheral::{syst::SystClkSource, SYST};
use cortex_m_rt::entry;
use cortex_m_semihosting::{debug, hprintln};
use softreg::fashion_mnist::{CLASSES, PIXELS, RESIZED_PIXELS};
use softreg::inference::{Classifier, PredictionRecord, Weights};

/// Bytes aligned for in-place use: the model's `f32` values are read where
/// they lie, so the file must start on a 4-byte boundary (`include_bytes!`
/// alone gives no alignment).
#[repr(C, align(4))]
struct Aligned<T: ?Sized>(T);

#[cfg(not(feature = "int8"))]
macro_rules! model_file {
    () => {
        "../assets/model-f32.bin"
    };
}
#[cfg(feature = "int8")]
macro_rules! model_file {
    () => {
        "../assets/model-int8.bin"
    };
}
#[cfg(not(feature = "int8"))]
const HOST: &[u8] = include_bytes!("../assets/host-f32.bin");
#[cfg(feature = "int8")]
const HOST: &[u8] = include_bytes!("../assets/host-int8.bin");

/// The model file, in flash, in a section of its own (see memory.x).
#[link_section = ".model"]
static MODEL: Aligned<[u8; include_bytes!(model_file!()).len()]> =
    Aligned(*include_bytes!(model_file!()));

/// 32 test images, 28x28 `u8`, row-major, one after another.
#[link_section = ".images"]
static IMAGES: [u8; include_bytes!("../assets/images.bin").len()] =
    *include_bytes!("../assets/images.bin");
/// Their labels.
static LABELS: &[u8] = include_bytes!("../assets/labels.bin");

/// Where the board's flash (ZBT SSRAM1) ends: see memory.x.
const FLASH_END: usize = 0x0040_0000;
/// Stack painted below the caller before the measured inference.
const PAINT_BYTES: usize = 16 * 1024;
const PAINT: u32 = 0xC0FF_EE11;
/// Bytes just below the stack pointer left unpainted: the painting
/// function's own frame.
const STACK_MARGIN: usize = 256;

#[entry]
fn main() -> ! {
    // Paint the free stack now, to read the whole run's high-water mark at
    // the end.
    paint(cortex_m::register::msp::read() as usize);
    let classifier = match Classifier::<RESIZED_PIXELS, CLASSES>::new(&MODEL.0) {
        Ok(c) => c,
        Err(e) => fail(format_args!("model file refused: {e}")),
    };
    let (kind, weights_at, weights_len) = match classifier.weights() {
        Weights::F32(v) => ("f32", v.weights.as_ptr() as usize, size_of_val(v.weights)),
        Weights::I8(v) => ("int8", v.weights.as_ptr() as usize, size_of_val(v.weights)),
    };
    let model_at = addr_of!(MODEL) as usize;
    hprintln!(
        "softreg firmware: {} model, {} bytes at {:#010x}, weights ({} bytes) used in place at {:#010x}",
        kind,
        MODEL.0.len(),
        model_at,
        weights_len,
        weights_at
    );
    // Weights never copied to RAM: the classifier reads them inside the model
    // file in flash.
    if !(model_at..model_at + MODEL.0.len()).contains(&weights_at)
        || model_at + MODEL.0.len() > FLASH_END
    {
        fail(format_args!("weights are not read in place from flash"));
    }

    let images = IMAGES
        .chunks_exact(PIXELS)
        .map(|c| <&[u8; PIXELS]>::try_from(c).unwrap());
    let n = LABELS.len();
    if IMAGES.len() != n * PIXELS || HOST.len() != n * PredictionRecord::LEN {
        fail(format_args!("asset sizes disagree"));
    }

    // Stack high-water mark of one inference, by painting.
    let first: &[u8; PIXELS] = IMAGES[..PIXELS].try_into().unwrap();
    let stack = stack_high_water(|| {
        core::hint::black_box(infer(&classifier, core::hint::black_box(first)));
    });

    // Time of one inference on SysTick (24-bit, counts down at the core clock).
    let mut syst = cortex_m::Peripherals::take().unwrap().SYST;
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(0x00FF_FFFF);
    syst.clear_current();
    syst.enable_counter();
    let start = SYST::get_current();
    core::hint::black_box(infer(&classifier, core::hint::black_box(first)));
    let ticks = start.wrapping_sub(SYST::get_current()) & 0x00FF_FFFF;
    // The same clock over a loop of exactly CALIBRATION_INSTRUCTIONS
    // instructions: under `qemu -icount shift=0` (one instruction per virtual
    // nanosecond) this turns ticks into instructions.
    syst.clear_current();
    let start = SYST::get_current();
    calibration_loop();
    let calibration_ticks = start.wrapping_sub(SYST::get_current()) & 0x00FF_FFFF;
    syst.disable_counter();

    let (mut correct, mut agree) = (0, 0);
    for (i, (image, &label)) in images.zip(LABELS).enumerate() {
        let record = PredictionRecord::from_logits(&infer(&classifier, image));
        let at = PredictionRecord::LEN * i;
        let host = PredictionRecord::from_le_bytes(
            HOST[at..at + PredictionRecord::LEN].try_into().unwrap(),
        );
        let same = record == host;
        let class = record.class as usize;
        correct += usize::from(class == usize::from(label));
        agree += usize::from(same);
        hprintln!(
            "image {:2} label {} pred {} p {:#010x} ({:3}/1000) logits {:#010x} host {} {}",
            i,
            label,
            class,
            record.probability_bits,
            (record.probability() * 1000.0) as u32,
            record.logits_hash,
            host.class,
            if same { "same" } else { "DIFFERENT" }
        );
    }
    hprintln!("accuracy {}/{}", correct, n);
    hprintln!("host agreement {}/{}", agree, n);
    hprintln!("stack high-water mark of one inference: {} bytes", stack);
    let stack_top = addr_of!(_stack_start) as usize;
    hprintln!(
        "stack high-water mark of the whole run: {} bytes; static RAM (.data + .bss): {} bytes",
        stack_top - lowest_used(stack_top),
        addr_of!(__ebss) as usize - addr_of!(__sdata) as usize
    );
    hprintln!(
        "systick ticks for one inference: {} (and {} for {} instructions: about {} instructions per inference under -icount shift=0)",
        ticks,
        calibration_ticks,
        CALIBRATION_INSTRUCTIONS,
        u64::from(ticks) * u64::from(CALIBRATION_INSTRUCTIONS) / u64::from(calibration_ticks.max(1))
    );
    exit(if agree == n {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    })
}

/// Ends the QEMU run with `status` (semihosting `SYS_EXIT`).
fn exit(status: debug::ExitStatus) -> ! {
    debug::exit(status);
    // Only reached without a debugger or emulator listening.
    loop {
        cortex_m::asm::wfi();
    }
}

/// One inference, kept out of line so its code and stack are its own.
#[inline(never)]
fn infer(
    classifier: &Classifier<'_, RESIZED_PIXELS, CLASSES>,
    image: &[u8; PIXELS],
) -> [f32; CLASSES] {
    classifier.logits(image)
}

/// Instructions [`calibration_loop`] executes, its `bl` and `bx lr` included.
const CALIBRATION_INSTRUCTIONS: u32 = 2 * 100_000 + 3;

/// Exactly `CALIBRATION_INSTRUCTIONS` instructions: a count-down loop of two
/// instructions per turn.
#[inline(never)]
fn calibration_loop() {
    // SAFETY: only scratches r0, declared as clobbered.
    unsafe {
        core::arch::asm!(
            "2:",
            "subs {n}, #1",
            "bne 2b",
            n = inout(reg) 100_000u32 => _,
            options(nomem, nostack),
        );
    }
}

extern "C" {
    // From cortex-m-rt's link.x: the initial stack pointer (the top of RAM)
    // and the bounds of .data and .bss.
    static _stack_start: u32;
    static __sdata: u32;
    static __ebss: u32;
}

/// Paints the `PAINT_BYTES` of free stack below `sp - STACK_MARGIN`, leaving the
/// caller's own frame alone.
#[inline(never)]
fn paint(sp: usize) {
    let top = (sp - STACK_MARGIN) & !3;
    for addr in (top - PAINT_BYTES..top).step_by(4) {
        // SAFETY: free stack below the stack pointer, inside RAM (4 MiB).
        unsafe { write_volatile(addr as *mut u32, PAINT) };
    }
}

/// The lowest painted word overwritten since [`paint`] (`sp` as given to
/// it), or the top of the painted region if none was.
fn lowest_used(sp: usize) -> usize {
    let top = (sp - STACK_MARGIN) & !3;
    (top - PAINT_BYTES..top)
        .step_by(4)
        // SAFETY: words painted by `paint`, below the live stack.
        .find(|&addr| unsafe { read_volatile(addr as *const u32) } != PAINT)
        .unwrap_or(top)
}

/// Runs `f` over freshly painted stack and returns how far below the current
/// stack pointer it reached.
#[inline(never)]
fn stack_high_water(f: impl FnOnce()) -> usize {
    let sp = cortex_m::register::msp::read() as usize;
    paint(sp);
    f();
    sp - lowest_used(sp)
}

fn fail(message: core::fmt::Arguments<'_>) -> ! {
    hprintln!("FAILED: {}", message);
    exit(debug::EXIT_FAILURE)
}

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    hprintln!("panic: {}", info);
    exit(debug::EXIT_FAILURE)
}
