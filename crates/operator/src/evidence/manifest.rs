//! An evidence pack's files and its `manifest.json`: the SHA-256 of every file, chained
//! so that removing, altering, reordering or adding a file is detectable, and the check
//! of a written pack (a folder or a `.zip`) against it.
//!
//! The chain: `chain_0 = GENESIS`, and for the i-th file in path order
//! `chain_i = hex(sha256(chain_{i-1} "\n" path "\n" sha256_i))`, where `sha256_i` is the
//! file's own digest in lowercase hex; the manifest ends with `head` = the last link. A
//! file altered changes its digest; a manifest edited to match changes every later link
//! and the head, which the person who made the pack recorded (`stockctl evidence` prints
//! it).

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The manifest's file name (not listed in itself).
pub const MANIFEST: &str = "manifest.json";
/// The chain's first link: the SHA-256 of this text, so a manifest of another format
/// never verifies as this one.
pub const GENESIS_TEXT: &str = "stockledger evidence manifest v1";
/// The most files a pack read back for verification may hold.
pub const PACK_FILES_MAX: usize = 10_000;
/// The largest pack read back for verification (bytes, all files together).
pub const PACK_BYTES_MAX: u64 = 512 * 1024 * 1024;

/// The SHA-256 of `bytes` in lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The chain's first link.
pub fn genesis() -> String {
    sha256_hex(GENESIS_TEXT.as_bytes())
}

/// The link after `previous` for the file `path` with digest `sha256`.
pub fn link(previous: &str, path: &str, sha256: &str) -> String {
    sha256_hex(format!("{previous}\n{path}\n{sha256}").as_bytes())
}

/// One file of the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    pub path: String,
    pub sha256: String,
    pub chain: String,
}

/// `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The format: 1.
    pub version: u32,
    /// How `chain` is computed, for a reader without this code.
    pub chain_rule: String,
    pub genesis: String,
    pub files: Vec<ManifestEntry>,
    /// The last link: recording it elsewhere (a ticket) pins the whole pack.
    pub head: String,
}

/// The files of a pack, by path (`/`-separated, relative), without the manifest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pack {
    pub files: BTreeMap<String, Vec<u8>>,
}

/// Why a pack could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("zip: {0}")]
    Zip(#[from] zip::result::ZipError),
    #[error("{0}")]
    Invalid(String),
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> PackError + '_ {
    move |source| PackError::Io {
        path: path.to_owned(),
        source,
    }
}

impl Pack {
    /// Adds a file.
    pub fn add(&mut self, path: impl Into<String>, bytes: impl Into<Vec<u8>>) {
        self.files.insert(path.into(), bytes.into());
    }

    /// Adds `value` as pretty JSON.
    pub fn add_json(&mut self, path: impl Into<String>, value: &impl Serialize) {
        let mut bytes = serde_json::to_vec_pretty(value).unwrap_or_default();
        bytes.push(b'\n');
        self.add(path, bytes);
    }

    /// The manifest of these files.
    pub fn manifest(&self) -> Manifest {
        let genesis = genesis();
        let mut chain = genesis.clone();
        let files = self
            .files
            .iter()
            .map(|(path, bytes)| {
                let sha256 = sha256_hex(bytes);
                chain = link(&chain, path, &sha256);
                ManifestEntry {
                    path: path.clone(),
                    sha256,
                    chain: chain.clone(),
                }
            })
            .collect();
        Manifest {
            version: 1,
            chain_rule: "chain_i = sha256_hex(chain_{i-1} + \"\\n\" + path + \"\\n\" + sha256), chain_0 = genesis, files in path order".into(),
            genesis,
            files,
            head: chain,
        }
    }

    /// The files with `manifest.json`, as written.
    fn with_manifest(&self) -> (Manifest, Vec<(String, Vec<u8>)>) {
        let manifest = self.manifest();
        let mut all: Vec<(String, Vec<u8>)> = self
            .files
            .iter()
            .map(|(p, b)| (p.clone(), b.clone()))
            .collect();
        let mut text = serde_json::to_vec_pretty(&manifest).unwrap_or_default();
        text.push(b'\n');
        all.push((MANIFEST.to_owned(), text));
        (manifest, all)
    }

    /// Writes the pack into `dir` (created; it must be empty or absent).
    pub fn write_dir(&self, dir: &Path) -> Result<Manifest, PackError> {
        if dir.exists() && std::fs::read_dir(dir).map_err(io(dir))?.next().is_some() {
            return Err(PackError::Invalid(format!(
                "{} exists and is not empty; evidence is written into a new folder",
                dir.display()
            )));
        }
        let (manifest, files) = self.with_manifest();
        for (path, bytes) in files {
            let target = dir.join(&path);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(io(parent))?;
            }
            std::fs::write(&target, bytes).map_err(io(&target))?;
        }
        Ok(manifest)
    }

    /// The pack as one zip file (deflated), the same files and manifest as a folder.
    pub fn to_zip(&self) -> Result<(Manifest, Vec<u8>), PackError> {
        let (manifest, files) = self.with_manifest();
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (path, bytes) in files {
            zip.start_file(path, options)?;
            zip.write_all(&bytes).map_err(io(Path::new("zip")))?;
        }
        Ok((manifest, zip.finish()?.into_inner()))
    }
}

/// What is wrong with a pack, the first problem found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "problem", content = "path", rename_all = "snake_case")]
pub enum Problem {
    /// `manifest.json` is absent or not a manifest.
    NoManifest,
    /// The manifest's own chain does not hold at this entry (the manifest was edited).
    ChainBroken(String),
    /// A file the manifest lists is not there.
    Missing(String),
    /// A file's bytes are not those the manifest recorded.
    Altered(String),
    /// A file the manifest does not list.
    Extra(String),
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::NoManifest => write!(f, "{MANIFEST} is missing or unreadable"),
            Problem::ChainBroken(p) => write!(f, "{MANIFEST} was edited: its chain breaks at {p}"),
            Problem::Missing(p) => write!(f, "{p} is missing"),
            Problem::Altered(p) => write!(
                f,
                "{p} was altered (its SHA-256 differs from the manifest's)"
            ),
            Problem::Extra(p) => write!(
                f,
                "{p} is not in the manifest (added after the pack was made)"
            ),
        }
    }
}

/// The result of checking a pack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verification {
    /// Files the manifest lists.
    pub files: usize,
    /// The manifest's head (recompute-checked), when there is a manifest.
    pub head: Option<String>,
    /// The first problem; `None` when the pack is intact.
    pub problem: Option<Problem>,
}

impl Verification {
    /// True when nothing is missing, altered or extra.
    pub fn intact(&self) -> bool {
        self.problem.is_none()
    }
}

/// Checks the files of a pack (manifest included) against its manifest.
pub fn verify_files(mut files: BTreeMap<String, Vec<u8>>) -> Verification {
    let fail = |problem, files, head| Verification {
        files,
        head,
        problem: Some(problem),
    };
    let manifest: Option<Manifest> = files
        .remove(MANIFEST)
        .and_then(|b| serde_json::from_slice(&b).ok());
    let Some(manifest) = manifest else {
        return fail(Problem::NoManifest, 0, None);
    };
    let n = manifest.files.len();
    let mut chain = genesis();
    if manifest.genesis != chain {
        return fail(Problem::ChainBroken(MANIFEST.into()), n, None);
    }
    for entry in &manifest.files {
        chain = link(&chain, &entry.path, &entry.sha256);
        if entry.chain != chain {
            return fail(Problem::ChainBroken(entry.path.clone()), n, None);
        }
    }
    if manifest.head != chain {
        return fail(Problem::ChainBroken("head".into()), n, None);
    }
    let head = Some(chain);
    for entry in &manifest.files {
        match files.remove(&entry.path) {
            None => return fail(Problem::Missing(entry.path.clone()), n, head),
            Some(bytes) if sha256_hex(&bytes) != entry.sha256 => {
                return fail(Problem::Altered(entry.path.clone()), n, head);
            }
            Some(_) => {}
        }
    }
    if let Some(extra) = files.into_keys().next() {
        return fail(Problem::Extra(extra), n, head);
    }
    Verification {
        files: n,
        head,
        problem: None,
    }
}

/// Reads a pack from a folder, or from a `.zip` file, and checks it.
pub fn verify_path(path: &Path) -> Result<Verification, PackError> {
    let files = if path.is_dir() {
        read_dir(path)?
    } else {
        read_zip(path)?
    };
    Ok(verify_files(files))
}

/// Every file under `root`, by `/`-separated relative path.
fn read_dir(root: &Path) -> Result<BTreeMap<String, Vec<u8>>, PackError> {
    let mut files = BTreeMap::new();
    let mut total = 0u64;
    let mut pending = vec![root.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).map_err(io(&dir))? {
            let entry = entry.map_err(io(&dir))?;
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            let rel = path
                .strip_prefix(root)
                .map_err(|e| PackError::Invalid(e.to_string()))?
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            let bytes = std::fs::read(&path).map_err(io(&path))?;
            total += bytes.len() as u64;
            files.insert(rel, bytes);
            if files.len() > PACK_FILES_MAX || total > PACK_BYTES_MAX {
                return Err(PackError::Invalid(format!(
                    "{} holds more than {PACK_FILES_MAX} files or {PACK_BYTES_MAX} bytes: not an evidence pack",
                    root.display()
                )));
            }
        }
    }
    Ok(files)
}

/// Every file of a zip, by path.
fn read_zip(path: &Path) -> Result<BTreeMap<String, Vec<u8>>, PackError> {
    let file = std::fs::File::open(path).map_err(io(path))?;
    let mut zip = zip::ZipArchive::new(file)?;
    if zip.len() > PACK_FILES_MAX {
        return Err(PackError::Invalid(format!(
            "{} holds more than {PACK_FILES_MAX} files",
            path.display()
        )));
    }
    let mut files = BTreeMap::new();
    for i in 0..zip.len() {
        let entry = zip.by_index(i)?;
        if entry.is_dir() {
            continue;
        }
        let name = entry.name()?.into_owned();
        let mut bytes = Vec::new();
        entry
            .take(PACK_BYTES_MAX)
            .read_to_end(&mut bytes)
            .map_err(io(path))?;
        files.insert(name, bytes);
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn pack() -> Pack {
        let mut p = Pack::default();
        p.add("a.json", b"{}".to_vec());
        p.add("raw/x.json", b"body".to_vec());
        p
    }

    #[test]
    fn an_intact_pack_verifies_and_each_change_is_named() {
        let (_, files) = pack().with_manifest();
        let files: BTreeMap<_, _> = files.into_iter().collect();
        assert!(verify_files(files.clone()).intact());
        let mut altered = files.clone();
        altered.insert("raw/x.json".into(), b"bodY".to_vec());
        assert_eq!(
            verify_files(altered).problem,
            Some(Problem::Altered("raw/x.json".into()))
        );
        let mut missing = files.clone();
        missing.remove("a.json");
        assert_eq!(
            verify_files(missing).problem,
            Some(Problem::Missing("a.json".into()))
        );
        let mut extra = files;
        extra.insert("b.txt".into(), Vec::new());
        assert_eq!(
            verify_files(extra).problem,
            Some(Problem::Extra("b.txt".into()))
        );
    }

    #[test]
    fn a_manifest_edited_to_hide_a_removal_breaks_the_chain() {
        let (mut manifest, files) = pack().with_manifest();
        let mut files: BTreeMap<_, _> = files.into_iter().collect();
        files.remove("a.json");
        manifest.files.remove(0);
        files.insert(MANIFEST.into(), serde_json::to_vec(&manifest).unwrap());
        assert_eq!(
            verify_files(files).problem,
            Some(Problem::ChainBroken("raw/x.json".into()))
        );
    }

    #[test]
    fn a_zip_holds_the_same_files() {
        let (manifest, bytes) = pack().to_zip().unwrap();
        let dir = tempfile_dir();
        let path = dir.join("p.zip");
        std::fs::write(&path, bytes).unwrap();
        let v = verify_path(&path).unwrap();
        assert!(v.intact(), "{v:?}");
        assert_eq!(v.head, Some(manifest.head));
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("evidence-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
