//! The subcommands of `softreg`, one module each.

pub mod download;
pub mod evaluate;
pub mod lab;
pub mod predict;
pub mod softmax;
pub mod sweep;
pub mod train;
