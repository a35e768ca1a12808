//! `softreg download`: make sure the four Fashion-MNIST files are there and
//! intact, fetching whichever are missing or damaged, nothing else.
//!
//! A `.gz` file already present is checked against its published SHA-256
//! and, when it does not match, downloaded again (it is replaced only once
//! the new copy is complete and verified). A raw (decompressed) file is
//! checked the same way but never replaced: it may be a cut-down set the
//! user made, so a mismatch is reported and the file left alone.

use crate::args::DataArgs;
use anyhow::{bail, Result};
use softreg_cli::{console, dataset, download, regular_file};

/// Runs `softreg download`.
pub fn download_command(args: &DataArgs) -> Result<()> {
    let source = dataset::Source::new(
        args.data_dir.as_deref(),
        args.offline,
        args.mirror.as_deref(),
    );
    let mut differ = 0;
    for file in &download::FILES {
        let gz = source.dir.join(file.name);
        let raw = source.dir.join(file.name.trim_end_matches(".gz"));
        if regular_file::probe(&gz)?.is_some() {
            if download::sha256_of_file(&gz)? == file.sha256 {
                console::err(&format!(
                    "{} is there and intact (SHA-256 checked)",
                    gz.display()
                ));
                continue;
            }
            if source.offline {
                bail!(
                    "{} is damaged (its SHA-256 is not the published one), and --offline \
                     forbids downloading it again",
                    gz.display()
                );
            }
            console::err(&format!(
                "{} is damaged (its SHA-256 is not the published one): downloading it again",
                gz.display()
            ));
        } else if regular_file::probe(&raw)?.is_some() {
            if download::sha256_of_file(&raw)? == file.raw_sha256 {
                console::err(&format!(
                    "{} is there and intact (SHA-256 checked)",
                    raw.display()
                ));
            } else {
                differ += 1;
                console::err(&format!(
                    "{} is not the published file (its SHA-256 differs); left as it is \
                     (remove it to download the original)",
                    raw.display()
                ));
            }
            continue;
        } else if source.offline {
            bail!(
                "{} is missing, and --offline forbids downloading it; {}",
                gz.display(),
                dataset::WHERE_THE_DATA_GOES
            );
        }
        download::fetch(&source.mirror, file, &source.dir)?;
    }
    if differ == 0 {
        console::err(&format!("data is complete in {}", source.dir.display()));
    } else {
        console::err(&format!(
            "data is complete in {}, {differ} of its files not as published (see above)",
            source.dir.display()
        ));
    }
    Ok(())
}
