//! `softreg download`: fetch whichever of the four Fashion-MNIST files are
//! missing, nothing else.

use crate::args::DataArgs;
use anyhow::Result;
use softreg_cli::{dataset, download};

/// Runs `softreg download`.
pub fn download_command(args: &DataArgs) -> Result<()> {
    let source = dataset::Source::new(
        args.data_dir.as_deref(),
        args.offline,
        args.mirror.as_deref(),
    );
    for file in &download::FILES {
        let gz = source.dir.join(file.name);
        let raw = source.dir.join(file.name.trim_end_matches(".gz"));
        if gz.exists() || raw.exists() {
            eprintln!(
                "{} is already there",
                if gz.exists() { &gz } else { &raw }.display()
            );
            continue;
        }
        if source.offline {
            anyhow::bail!(
                "{} is missing, and --offline forbids downloading it",
                gz.display()
            );
        }
        download::fetch(&source.mirror, file, &source.dir)?;
    }
    eprintln!("data is complete in {}", source.dir.display());
    Ok(())
}
