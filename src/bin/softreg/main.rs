//! The softreg command-line application (being written on the `cli` branch).
fn main() {
    eprintln!("softreg: the command-line trainer is not built yet");
    std::process::exit(1);
}
