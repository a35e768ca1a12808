//! Training, evaluating and predicting end to end on the small fixture
//! dataset (2,048 training and 256 validation images).

mod cli_support;

use cli_support::{entries, fixture, Sandbox, TINY};
use std::fs;
use std::path::Path;

const OUTPUTS: [&str; 6] = [
    "confusion.png",
    "curves.svg",
    "metrics.csv",
    "misclassified.png",
    "model.softreg",
    "weights.png",
];

fn train(sb: &Sandbox, data: &Path, out: &str, extra: &[&str]) -> cli_support::Run {
    let mut args = vec![
        "train",
        "--epochs",
        "2",
        "--data-dir",
        data.to_str().unwrap(),
        "--out",
        out,
    ];
    args.extend_from_slice(extra);
    let run = sb.softreg(&args);
    run.ok();
    run
}

/// `softreg evaluate --model MODEL --data-dir DATA`, which must succeed.
fn evaluate(sb: &Sandbox, data: &Path, model: &str) -> cli_support::Run {
    let run = sb.softreg(&[
        "evaluate",
        "--model",
        model,
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    run.ok();
    run
}

#[test]
fn trains_and_writes_every_output() {
    let sb = Sandbox::new();
    let data = sb.data_dir();
    let run = train(&sb, &data, "run", &["--json", "--seed", "3"]);

    // With --json, stdout is that one line and everything else is on stderr,
    // starting with the settings (the defaults, so without notes).
    assert_eq!(run.stdout.lines().count(), 1, "{}", run.stdout);
    let settings = run
        .stderr
        .lines()
        .find(|l| l.starts_with("training: "))
        .unwrap_or("");
    assert!(
        settings.starts_with("training: 2 epochs, batch size 256, lr 0.1, ")
            && !settings.contains("(--"),
        "{settings}"
    );
    let json = run.json();
    for key in [
        "epochs",
        "batch_size",
        "lr",
        "resize",
        "seed",
        "train_loss",
        "val_loss",
        "val_acc",
        "train_seconds",
        "images_per_second",
        "out_dir",
    ] {
        assert!(json.get(key).is_some(), "missing {key} in {json}");
    }
    assert_eq!(json["epochs"], 2);
    assert_eq!(json["lr"], 0.1);
    assert_eq!(json["resize"], 32);
    assert_eq!(json["out_dir"], "run");
    assert!(json["val_acc"].as_f64().unwrap() > 0.5, "{json}");
    let (seconds, per_second) = (
        json["train_seconds"].as_f64().unwrap(),
        json["images_per_second"].as_f64().unwrap(),
    );
    assert!((seconds * per_second / 4096.0 - 1.0).abs() < 1e-9, "{json}");
    // The prediction batch is the whole validation set here, so its
    // mistakes are what `evaluate` finds wrong in the saved model.
    let (_, accuracy) = report_figures(&evaluate(&sb, &data, "run/model.softreg").stdout);
    let wrong = 256 - (accuracy * 256.0).round() as usize;
    assert!(
        run.stderr
            .contains(&format!("predictions: shape (256,), {wrong} wrong")),
        "{}",
        run.stderr
    );

    assert_eq!(entries(&sb.path("run")), OUTPUTS);
    let csv = fs::read_to_string(sb.path("run/metrics.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3);
    assert!(csv.starts_with("epoch,train_loss,val_loss,val_acc,seconds\n"));
    assert!(fs::read_to_string(sb.path("run/curves.svg"))
        .unwrap()
        .contains("val acc"));
    let model = fs::read(sb.path("run/model.softreg")).unwrap();
    assert_eq!(model.len(), 32 + 4 * (1024 * 10 + 10));
    let png = png::Decoder::new(std::io::BufReader::new(
        fs::File::open(sb.path("run/misclassified.png")).unwrap(),
    ));
    assert!(png.read_info().is_ok());
}

#[test]
fn the_default_command_is_train_in_a_fresh_run_dir() {
    let sb = Sandbox::new();
    let data = sb.data_dir();
    let args = ["--epochs", "1", "--data-dir", data.to_str().unwrap()];
    let first = sb.softreg(&args);
    first.ok();
    // Without --json the report is on stdout.
    assert!(
        first.stdout.contains("predictions: shape (256,)"),
        "{}",
        first.stdout
    );
    sb.softreg(&args).ok();
    let runs = entries(&sb.path("runs"));
    assert_eq!(runs.len(), 2, "{runs:?}");
    for run in runs {
        assert_eq!(entries(&sb.path("runs").join(run)), OUTPUTS);
    }
}

#[test]
fn flags_used_as_given_get_no_note() {
    let sb = Sandbox::new();
    let data = sb.data_dir();
    // The whole training set as one batch, and as many threads as shards
    // allow: both honoured, so neither is explained.
    let run = train(
        &sb,
        &data,
        "run",
        &["--batch-size", "2048", "--threads", "2"],
    );
    let first = run.stdout.lines().next().unwrap_or("");
    assert!(first.contains("batch size 2048, "), "{first}");
    assert!(first.contains(" 2 threads, "), "{first}");
    assert!(!first.contains("(--"), "{first}");
}

#[test]
fn same_seed_same_bits_whatever_the_threads() {
    let sb = Sandbox::new();
    let data = sb.data_dir();
    train(&sb, &data, "a", &[]);
    train(&sb, &data, "b", &["--threads", "2"]);
    train(&sb, &data, "c", &["--seed", "1"]);
    let model = |dir: &str| fs::read(sb.path(dir).join("model.softreg")).unwrap();
    // Everything but the timing column.
    let metrics = |dir: &str| {
        fs::read_to_string(sb.path(dir).join("metrics.csv"))
            .unwrap()
            .lines()
            .map(|l| l.rsplit_once(',').unwrap().0.to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(model("a"), model("b"));
    assert_eq!(metrics("a"), metrics("b"));
    assert_ne!(model("a"), model("c"));
}

#[test]
fn resize_28_evaluate_and_predict() {
    let sb = Sandbox::new();
    let data = sb.data_dir();
    train(&sb, &data, "run", &["--resize", "28"]);
    let model = sb.path("run/model.softreg");
    assert_eq!(
        fs::metadata(&model).unwrap().len(),
        32 + 4 * (784 * 10 + 10)
    );
    let model = model.to_str().unwrap();

    let run = evaluate(&sb, &data, model);
    for needle in [
        "accuracy:",
        "ankle boot",
        "confusion matrix",
        "validation images: 256",
    ] {
        assert!(run.stdout.contains(needle), "{needle}: {}", run.stdout);
    }

    // A validation image as an RGB PNG, and the same image dark-on-light at
    // 3x the size as a grayscale PNG: both are read like the dataset.
    let images = fs::read(fixture(TINY[2].0)).unwrap();
    let image = &images[16..16 + 784];
    let rgb: Vec<u8> = image.iter().flat_map(|&v| [v, v, v]).collect();
    write_png(&sb.path("rgb.png"), 28, png::ColorType::Rgb, &rgb);
    let big: Vec<u8> = (0..84 * 84)
        .map(|i| 255 - image[(i / 84 / 3) * 28 + (i % 84) / 3])
        .collect();
    write_png(&sb.path("big.png"), 84, png::ColorType::Grayscale, &big);
    let run = sb.softreg(&["predict", "--model", model, "rgb.png", "big.png"]);
    run.ok();
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", run.stdout);
    assert!(lines[0].starts_with("rgb.png: "), "{}", lines[0]);
    assert_eq!(lines[0].matches(", ").count(), 2, "top 3: {}", lines[0]);
    // Same picture, same top class.
    let top = |line: &str| {
        line.split(": ")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .to_owned()
    };
    assert_eq!(top(lines[0]), top(lines[1]));
}

fn write_png(path: &Path, side: u32, color: png::ColorType, data: &[u8]) {
    let file = fs::File::create(path).unwrap();
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), side, side);
    enc.set_color(color);
    enc.set_depth(png::BitDepth::Eight);
    let mut w = enc.write_header().unwrap();
    w.write_image_data(data).unwrap();
    w.finish().unwrap();
}

#[test]
fn gz_files_are_decompressed_once_beside_them() {
    let sb = Sandbox::new();
    let data = sb.gz_data_dir("gz");
    let run = train(&sb, &data, "a", &[]);
    assert!(run.stderr.contains("decompressing"), "{}", run.stderr);
    for (fixture_name, name) in TINY {
        assert_eq!(
            fs::read(data.join(name)).unwrap(),
            fs::read(fixture(fixture_name)).unwrap()
        );
    }
    let run = train(&sb, &data, "b", &[]);
    assert!(!run.stderr.contains("decompressing"), "{}", run.stderr);
}

#[test]
fn a_read_only_data_dir_decompresses_into_the_cache() {
    use std::os::unix::fs::PermissionsExt;
    let sb = Sandbox::new();
    let data = sb.gz_data_dir("ro");
    fs::set_permissions(&data, fs::Permissions::from_mode(0o555)).unwrap();
    let run = train(&sb, &data, "a", &[]);
    let said: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains("read-only"))
        .collect();
    assert_eq!(said.len(), 1, "{}", run.stderr);
    assert_eq!(entries(&data).len(), 4, "wrote into the read-only dir");
    // Four copies, and for each the identity of the `.gz` it came from.
    assert_eq!(entries(&sb.path("cache/softreg")).len(), 8);
    // The second run maps the cached copies.
    train(&sb, &data, "b", &[]);
    assert_eq!(entries(&sb.path("cache/softreg")).len(), 8);
    assert_eq!(
        fs::read(sb.path("a/model.softreg")).unwrap(),
        fs::read(sb.path("b/model.softreg")).unwrap()
    );
    fs::set_permissions(&data, fs::Permissions::from_mode(0o755)).unwrap();
}

/// With the data directory read-only, a cache that cannot be used (here
/// `$XDG_CACHE_HOME` is a file) is said once and the data decompressed in
/// memory; a damaged `.gz` is still the error, not a cache problem.
#[test]
fn an_unusable_cache_falls_back_to_memory_and_a_bad_gz_is_an_error() {
    use std::os::unix::fs::PermissionsExt;
    let sb = Sandbox::new();
    let data = sb.gz_data_dir("ro");
    fs::write(sb.path("cache"), b"not a directory").unwrap();
    fs::set_permissions(&data, fs::Permissions::from_mode(0o555)).unwrap();
    let run = train(&sb, &data, "a", &[]);
    let fallbacks = run.stderr.matches("cannot use the cache").count();
    assert_eq!(fallbacks, 4, "{}", run.stderr);

    fs::remove_file(sb.path("cache")).unwrap();
    fs::set_permissions(&data, fs::Permissions::from_mode(0o755)).unwrap();
    let labels = data.join("t10k-labels-idx1-ubyte.gz");
    fs::copy(fixture("broken/corrupt.gz"), &labels).unwrap();
    fs::set_permissions(&data, fs::Permissions::from_mode(0o555)).unwrap();
    let data_arg = data.to_str().unwrap();
    let run = sb.softreg(&[
        "train",
        "--epochs",
        "1",
        "--data-dir",
        data_arg,
        "--out",
        "b",
    ]);
    run.fails(1, &["t10k-labels-idx1-ubyte.gz", "not a valid gzip file"]);
    assert!(
        !run.stderr.contains("cannot use the cache"),
        "{}",
        run.stderr
    );
    fs::set_permissions(&data, fs::Permissions::from_mode(0o755)).unwrap();
}

/// The cached copy of an unchanged `.gz` is found from the file's identity
/// (device, inode, length, modification time) without reading it, and a
/// `.gz` that changed is read, hashed and decompressed again.
#[test]
fn the_cache_knows_an_unchanged_gz_without_reading_it() {
    use std::os::unix::fs::PermissionsExt;
    let sb = Sandbox::new();
    let data = sb.gz_data_dir("ro");
    let labels = data.join("train-labels-idx1-ubyte.gz");
    let cached = |sb: &Sandbox| entries(&sb.path("cache/softreg")).len();
    fs::set_permissions(&data, fs::Permissions::from_mode(0o555)).unwrap();
    train(&sb, &data, "a", &[]);
    assert_eq!(cached(&sb), 8);

    // Garbage of the same length written in place, the time put back: the
    // file's identity is unchanged, so the run uses the copy of what the
    // file was (reading it would fail on the garbage).
    fs::set_permissions(&data, fs::Permissions::from_mode(0o755)).unwrap();
    let original = fs::read(&labels).unwrap();
    let modified = fs::metadata(&labels).unwrap().modified().unwrap();
    let file = fs::OpenOptions::new().write(true).open(&labels).unwrap();
    std::io::Write::write_all(&mut &file, &vec![0x55; original.len()]).unwrap();
    file.set_modified(modified).unwrap();
    drop(file);
    fs::set_permissions(&data, fs::Permissions::from_mode(0o555)).unwrap();
    train(&sb, &data, "b", &[]);
    assert_eq!(cached(&sb), 8);

    // Another `.gz` with the same content (another header, so other bytes):
    // a changed identity, so it is hashed and gets its own copy.
    fs::set_permissions(&data, fs::Permissions::from_mode(0o755)).unwrap();
    let raw = {
        let mut raw = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&original[..]), &mut raw)
            .unwrap();
        raw
    };
    let mut encoder = flate2::GzBuilder::new()
        .mtime(12345)
        .write(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut encoder, &raw).unwrap();
    fs::remove_file(&labels).unwrap();
    fs::write(&labels, encoder.finish().unwrap()).unwrap();
    fs::set_permissions(&data, fs::Permissions::from_mode(0o555)).unwrap();
    train(&sb, &data, "c", &[]);
    assert_eq!(cached(&sb), 9, "a new copy for the changed .gz");
    for run in ["b", "c"] {
        assert_eq!(
            fs::read(sb.path("a/model.softreg")).unwrap(),
            fs::read(sb.path(&format!("{run}/model.softreg"))).unwrap()
        );
    }
    fs::set_permissions(&data, fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn data_dir_from_the_environment() {
    let sb = Sandbox::new();
    let data = sb.data_dir();
    let out = sb
        .command(&["--epochs", "1", "--out", "run", "--offline"])
        .env("SOFTREG_DATA_DIR", &data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `--version`: the version, the level `--isa auto` picks and every level
/// this CPU runs (the baseline always).
#[test]
fn version_names_the_simd_levels() {
    let sb = Sandbox::new();
    let run = sb.softreg(&["--version"]);
    run.ok();
    let line = run.stdout.trim_end();
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        line.starts_with(&format!("softreg {version} (SIMD: ")),
        "{line}"
    );
    assert!(
        line.contains("; this CPU runs ") && line.ends_with(')'),
        "{line}"
    );
    assert!(line.contains("baseline"), "{line}");
}

/// `evaluate` on the int8 model of a trained one (as the firmware bundle
/// quantises it) reports nearly the same figures, and each report adds up
/// (`report_figures`).
#[test]
fn an_int8_model_evaluates_like_its_f32_one() {
    use softreg::{quantized, SoftmaxRegression};
    let sb = Sandbox::new();
    let data = sb.data_dir();
    train(&sb, &data, "run", &[]);
    let mut model = Box::new(SoftmaxRegression::<1024, 10>::zeroed());
    model
        .load_file_bytes(&fs::read(sb.path("run/model.softreg")).unwrap())
        .unwrap();
    let mut int8 = Vec::new();
    quantized::quantize(&model.view())
        .write_file(32, |c| {
            int8.extend_from_slice(c);
            Ok::<(), ()>(())
        })
        .unwrap();
    fs::write(sb.path("int8.softreg"), int8).unwrap();
    let figures = |model: &str| report_figures(&evaluate(&sb, &data, model).stdout);
    let (f32_loss, f32_acc) = figures(sb.path("run/model.softreg").to_str().unwrap());
    let (int8_loss, int8_acc) = figures(sb.path("int8.softreg").to_str().unwrap());
    assert!(
        f32_loss > 0.0 && (int8_loss - f32_loss).abs() < 0.05,
        "{int8_loss} vs {f32_loss}"
    );
    assert!(
        (int8_acc - f32_acc).abs() <= 0.03,
        "{int8_acc} vs {f32_acc}"
    );
}

/// The loss and accuracy of `evaluate`'s report, after checking that its
/// parts agree: the per-class lines count every validation image once, and
/// the confusion matrix, under its ten column headings, has each class's
/// images in its row, its correct ones on the diagonal.
fn report_figures(stdout: &str) -> (f64, f64) {
    let value = |key: &str| -> f64 {
        let line = stdout.lines().find(|l| l.starts_with(key)).unwrap();
        line[key.len()..]
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(stdout.contains("validation images: 256"), "{stdout}");
    // The last `n` numbers of a line (a class name may have a space).
    let last = |line: &str, n: usize| -> Vec<f64> {
        let fields: Vec<&str> = line.split_whitespace().collect();
        fields[fields.len() - n..]
            .iter()
            .map(|f| f.parse().unwrap())
            .collect()
    };
    let classes: Vec<Vec<f64>> = stdout
        .lines()
        .skip_while(|l| !l.starts_with("class"))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .map(|l| last(l, 2))
        .collect();
    assert_eq!(classes.len(), 10, "{stdout}");
    let images: f64 = classes.iter().map(|c| c[1]).sum();
    assert_eq!(images, 256.0, "{stdout}");

    let mut matrix = stdout
        .lines()
        .skip_while(|l| !l.starts_with("confusion matrix"))
        .skip(1);
    let headings: Vec<&str> = matrix.next().unwrap().split_whitespace().collect();
    let want = [
        "tshrt", "trous", "pullo", "dress", "coat", "sandl", "shirt", "snkr", "bag", "boot",
    ];
    assert_eq!(headings, want, "{stdout}");
    let rows: Vec<&str> = matrix.collect();
    assert_eq!(rows.len(), 10, "{stdout}");
    let mut correct = 0.0;
    for (class, line) in rows.into_iter().enumerate() {
        let counts = last(line, 10);
        let (accuracy, total) = (classes[class][0], classes[class][1]);
        assert_eq!(counts.iter().sum::<f64>(), total, "{line}");
        assert!((counts[class] / total - accuracy).abs() < 5e-5, "{line}");
        correct += counts[class];
    }
    assert!(stdout.contains(&format!("({correct} of 256)")), "{stdout}");
    (value("loss:"), value("accuracy:"))
}
