// The modules of the `softreg` binary, for the fuzz targets that drive its
// readers (`include!`d at a target's crate root). They sit at the crate root
// as in src/bin/softreg/main.rs, because they refer to each other as
// `crate::data` and so on. Keep this list in step with main.rs's `mod` lines;
// CI's `cargo check --manifest-path fuzz/Cargo.toml` fails when it is not.
#[path = "../src/bin/softreg/cli.rs"]
mod cli;
#[path = "../src/bin/softreg/data.rs"]
mod data;
#[path = "../src/bin/softreg/download.rs"]
mod download;
#[path = "../src/bin/softreg/evaluate.rs"]
mod evaluate;
#[path = "../src/bin/softreg/outputs.rs"]
mod outputs;
#[path = "../src/bin/softreg/picture.rs"]
mod picture;
#[path = "../src/bin/softreg/plot.rs"]
mod plot;
#[path = "../src/bin/softreg/predict.rs"]
mod predict;
#[path = "../src/bin/softreg/run.rs"]
mod run;
#[path = "../src/bin/softreg/train.rs"]
mod train;
