//! The firmware example's bundle (`examples/firmware/assets/`) and the
//! firmware itself.
//!
//! - The committed host predictions are what the inference API computes on
//!   this machine, and the int8 model is the quantisation of the f32 one.
//! - `firmware_in_qemu_predicts_what_the_host_predicts` builds the firmware
//!   for the Cortex-M4 (f32 and int8 models), boots it in
//!   `qemu-system-arm -machine mps2-an386` and checks every prediction it
//!   prints against the host's, bit for bit. It runs when `SOFTREG_QEMU=1`
//!   (and then fails if QEMU or the target is missing, as CI wants), or when
//!   `qemu-system-arm` is on PATH and the `thumbv7em-none-eabihf` target is
//!   installed; otherwise it says why it skipped and passes. `SOFTREG_QEMU=0`
//!   skips it.
//! - Both need the firmware example, a crate of its own that the published
//!   `softreg` crate does not carry (`cargo package` leaves out every
//!   directory with its own `Cargo.toml`): where `examples/firmware/` is
//!   missing they say so in one line and pass, unless `SOFTREG_QEMU=1` asks
//!   for the firmware run.
//!
//! The int8 model's accuracy on the full test set against f32's is checked
//! with the other full-dataset tests, which read the data as `softreg` does:
//! `int8_loses_at_most_half_a_point_on_the_full_test_set` in
//! `cli/tests/full_dataset.rs`.

use softreg::fashion_mnist::{CLASSES, PIXELS, RESIZED_PIXELS, RESIZED_SIDE};
use softreg::inference::{Classifier, PredictionRecord};
use softreg::quantized;
use softreg::SoftmaxRegression;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const IMAGES: usize = 32;

fn firmware_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/firmware")
}

/// Why the firmware example is not here, if it is not: the published crate
/// has the core alone.
fn firmware_missing() -> Option<String> {
    let manifest = firmware_dir().join("Cargo.toml");
    (!manifest.is_file()).then(|| {
        format!(
            "{} is missing (the published crate carries no firmware example; the repository does)",
            manifest.display()
        )
    })
}

fn asset(name: &str) -> Vec<u8> {
    let path = firmware_dir().join("assets").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Model-file bytes on a 4-byte boundary, as the in-place views need.
struct Aligned(Vec<u32>, usize);

impl Aligned {
    fn read(name: &str) -> Self {
        let bytes = asset(name);
        let mut words = vec![0u32; bytes.len().div_ceil(4)];
        bytemuck::cast_slice_mut::<u32, u8>(&mut words)[..bytes.len()].copy_from_slice(&bytes);
        Aligned(words, bytes.len())
    }

    fn bytes(&self) -> &[u8] {
        &bytemuck::cast_slice(&self.0)[..self.1]
    }
}

fn images() -> Vec<[u8; PIXELS]> {
    asset("images.bin")
        .chunks_exact(PIXELS)
        .map(|c| c.try_into().unwrap())
        .collect()
}

fn host_records(name: &str) -> Vec<PredictionRecord> {
    asset(name)
        .chunks_exact(PredictionRecord::LEN)
        .map(|c| PredictionRecord::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

#[test]
fn committed_bundle_is_consistent() {
    if let Some(reason) = firmware_missing() {
        eprintln!("skipping the firmware bundle check: {reason}");
        return;
    }
    let f32_file = Aligned::read("model-f32.bin");
    let int8_file = Aligned::read("model-int8.bin");
    assert_eq!(f32_file.bytes().len(), 41_032);
    assert_eq!(int8_file.bytes().len(), 10_352);

    // The int8 file is exactly the quantisation of the f32 one.
    let model = SoftmaxRegression::<RESIZED_PIXELS, CLASSES>::from_file_bytes(f32_file.bytes())
        .map(Box::new)
        .unwrap();
    let q = Box::new(quantized::quantize(&model.view()));
    let mut bytes = Vec::new();
    q.write_file(RESIZED_SIDE as u32, |c| {
        bytes.extend_from_slice(c);
        Ok::<(), ()>(())
    })
    .unwrap();
    assert!(
        bytes == int8_file.bytes(),
        "model-int8.bin is not quantize(model-f32.bin)"
    );

    // The images are the first of the test set, and the host's predictions
    // are what this machine computes.
    let labels = asset("labels.bin");
    let fixture = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/t10k-256-images-idx3-ubyte"),
    )
    .unwrap();
    assert_eq!(asset("images.bin"), fixture[16..16 + IMAGES * PIXELS]);
    let fixture_labels = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/t10k-256-labels-idx1-ubyte"),
    )
    .unwrap();
    assert_eq!(labels, fixture_labels[8..8 + IMAGES]);
    for (file, host) in [(&f32_file, "host-f32.bin"), (&int8_file, "host-int8.bin")] {
        let classifier = Classifier::<RESIZED_PIXELS, CLASSES>::new(file.bytes()).unwrap();
        let want = host_records(host);
        assert_eq!(want.len(), IMAGES);
        let mut correct = 0;
        for (i, image) in images().iter().enumerate() {
            let got = classifier.record(image);
            assert_eq!(got, want[i], "{host}, image {i}");
            correct += usize::from(got.class == u32::from(labels[i]));
        }
        assert!(correct >= 24, "{host}: {correct}/32 right");
    }
}

/// Why the QEMU test should not run here, if it should not.
fn qemu_skip_reason() -> Option<String> {
    let demanded = std::env::var("SOFTREG_QEMU").as_deref() == Ok("1");
    if let Some(reason) = firmware_missing() {
        assert!(!demanded, "SOFTREG_QEMU=1, but {reason}");
        return Some(reason);
    }
    match std::env::var("SOFTREG_QEMU").as_deref() {
        Ok("1") => return None,
        Ok("0") => return Some("SOFTREG_QEMU=0".into()),
        _ => {}
    }
    if Command::new("qemu-system-arm")
        .arg("--version")
        .output()
        .is_err()
    {
        return Some("qemu-system-arm is not on PATH (apt-get install qemu-system-arm)".into());
    }
    let libdir = Command::new("rustc")
        .args([
            "--print",
            "target-libdir",
            "--target",
            "thumbv7em-none-eabihf",
        ])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    match libdir {
        Some(dir) if dir.is_dir() => None,
        _ => Some("the thumbv7em-none-eabihf target is not installed (rustup target add thumbv7em-none-eabihf)".into()),
    }
}

/// Builds the firmware (`features`) and returns its two ELFs: the demo and
/// `minimal`.
fn build_firmware(features: &[&str]) -> [PathBuf; 2] {
    let dir = firmware_dir();
    let target_dir = dir.join("target");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&dir)
        .args(["build", "--release", "--target-dir"])
        .arg(&target_dir)
        .args(features.iter().flat_map(|f| ["--features", f]))
        // The host's flags (e.g. a target-cpu for x86) are not the MCU's.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET");
    let status = cmd.status().expect("run cargo");
    assert!(status.success(), "building the firmware failed");
    let release = target_dir.join("thumbv7em-none-eabihf/release");
    [release.join("softreg-firmware"), release.join("minimal")]
}

/// Boots `elf` in QEMU and returns its exit status and what it printed.
fn run_in_qemu(elf: &Path) -> (Option<i32>, String) {
    let out_path = elf.with_extension("qemu-out");
    let out = std::fs::File::create(&out_path).unwrap();
    let mut child = Command::new("qemu-system-arm")
        .args(["-machine", "mps2-an386", "-nographic"])
        .args(["-semihosting-config", "enable=on,target=native"])
        // One instruction per virtual nanosecond: SysTick then counts
        // instructions (see examples/firmware/README.md).
        .args(["-icount", "shift=0"])
        .arg("-kernel")
        .arg(elf)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start qemu-system-arm");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > Duration::from_secs(120) {
            child.kill().ok();
            child.wait().ok();
            panic!("the firmware did not exit within 120 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (status.code(), std::fs::read_to_string(&out_path).unwrap())
}

#[test]
fn firmware_in_qemu_predicts_what_the_host_predicts() {
    if let Some(reason) = qemu_skip_reason() {
        eprintln!("skipping the QEMU run: {reason}");
        return;
    }
    let labels = asset("labels.bin");
    for (features, host, kind) in [
        (&[][..], "host-f32.bin", "f32"),
        (&["int8"][..], "host-int8.bin", "int8"),
    ] {
        let [elf, minimal] = build_firmware(features);
        // The smallest firmware checks one image itself and says so by its
        // exit status.
        let (status, output) = run_in_qemu(&minimal);
        assert_eq!(status, Some(0), "minimal firmware, {kind} model\n{output}");
        let (status, output) = run_in_qemu(&elf);
        println!("--- firmware, {kind} model ---\n{output}");
        assert!(
            output.contains(&format!("softreg firmware: {kind} model")),
            "{output}"
        );
        let want = host_records(host);
        let mut seen = 0;
        for line in output.lines().filter(|l| l.starts_with("image ")) {
            // image  3 label 1 pred 1 p 0x3f7fe563 (999/1000) logits 0xe106f2ee host 1 same
            let words: Vec<&str> = line.split_whitespace().collect();
            let i: usize = words[1].parse().unwrap();
            let hex = |s: &str| u32::from_str_radix(s.trim_start_matches("0x"), 16).unwrap();
            let got = PredictionRecord {
                class: words[5].parse().unwrap(),
                probability_bits: hex(words[7]),
                logits_hash: hex(words[10]),
            };
            assert_eq!(words[3].parse::<u8>().unwrap(), labels[i], "{line}");
            assert_eq!(got, want[i], "{kind}, image {i}: firmware vs host");
            assert_eq!(i, seen);
            seen += 1;
        }
        assert_eq!(seen, IMAGES, "{output}");
        assert!(output.contains("host agreement 32/32"), "{output}");
        assert_eq!(status, Some(0), "firmware exit status\n{output}");
    }
}
