//! One module per verb group; each returns the process exit code.

pub mod archive;
pub mod build;
pub mod builder;
pub mod containers;
pub mod cp;
pub mod dockerfile;
pub mod images;
pub mod info;
pub mod network;
pub mod run;
pub mod stats;
pub mod system;
pub mod version;
pub mod volume;
