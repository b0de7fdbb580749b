//! Packages: `envhub.toml`, the module, `data/` and a README card, in a
//! deterministic archive whose sha256 is the package's identity.

mod archive;
mod data;
mod manifest;

pub use archive::{
    MAX_FILES, MAX_HELD_BYTES, MAX_README_BYTES, MAX_UNPACKED_BYTES, Package, pack, pack_python, unpack_data,
    unpack_python,
};
pub use data::Data;
pub use manifest::{
    MAX_DESCRIPTION_BYTES, MAX_LICENSE_BYTES, Manifest, PYTHON_RUNTIME, PackageInfo, PackageName, PythonSection, Wheel,
};

/// Why a package or manifest was refused.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    /// `envhub.toml` is not valid TOML or misses a field.
    #[error("envhub.toml: {0}")]
    Manifest(String),
    /// The archive is not a gzip'd tar, or an entry is unsafe.
    #[error("package archive: {0}")]
    Archive(String),
    /// Two files whose paths differ but that are one file on a
    /// case-insensitive or Unicode-normalising file system (macOS, Windows):
    /// unpacked there, one would overwrite the other.
    #[error(
        "package archive: `{first}` and `{second}` name the same file on case-insensitive or Unicode-normalising file systems (macOS, Windows); rename one of them"
    )]
    NameCollision {
        /// The path met first.
        first: String,
        /// The path that collides with it.
        second: String,
    },
    /// Reading or writing files failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The failure.
        source: std::io::Error,
    },
}

impl PackageError {
    pub(crate) fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> Self {
        PackageError::Io { path: path.as_ref().display().to_string(), source }
    }
}

/// The archive's file name of the manifest.
pub const MANIFEST_FILE: &str = "envhub.toml";
/// The archive's file name of the module.
pub const MODULE_FILE: &str = "module.wasm";
/// The archive's file name of the README card.
pub const README_FILE: &str = "README.md";
/// The archive's folder of data files, shown to the guest as `/data`.
pub const DATA_DIR: &str = "data";
/// The archive's folder of a Python package's sources, shown to the guest as
/// `/env`; `python/env.py` defines the environment.
pub const PYTHON_DIR: &str = "python";
