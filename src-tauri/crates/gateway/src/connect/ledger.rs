//! What is connected and the backups taken: `clients/<id>.json` in the data folder, each file's
//! original beside it. The record is written before the client's files, so a crash between the
//! two leaves a record that the next disconnect (or start) settles.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{AgentClient, ConnectError, File, Target, apply, points_at, undo};

#[derive(Debug, Serialize, Deserialize)]
struct Record {
    client: String,
    /// The client key's name (not the key) made for this client.
    #[serde(default)]
    key_name: Option<String>,
    files: Vec<FileRecord>,
}

#[derive(Debug, Serialize, Deserialize)]
struct FileRecord {
    path: PathBuf,
    /// The original's copy (a file name in the ledger's folder). None: there was no file, or
    /// it pointed at the gateway already (then it is not an original worth restoring).
    backup: Option<String>,
    ours_before: bool,
    /// Of what connect wrote (not the text: it holds the client key).
    written_sha256: String,
}

/// What happened to each file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Connect wrote our settings.
    Written,
    /// Connect found them there already.
    AlreadyThere,
    /// Disconnect put the backup back, byte for byte.
    Restored,
    /// Disconnect removed a file connect had made.
    Removed,
    /// The user changed the file while connected: only our settings were undone, their edits
    /// are kept.
    KeptEdits,
    /// The file pointed at the gateway before connect (no original to go back to): our
    /// settings were taken out.
    TookOutOurs,
    /// Nothing to do: the file is as it was before connect.
    Unchanged,
    /// The file is gone (the user deleted it); left so.
    Gone,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub client: AgentClient,
    pub files: Vec<(PathBuf, Outcome)>,
}

impl Report {
    /// One line per file, for people.
    pub fn lines(&self) -> Vec<String> {
        self.files
            .iter()
            .map(|(p, o)| {
                let what = match o {
                    Outcome::Written => "now points at Switchboard",
                    Outcome::AlreadyThere => "already pointed at Switchboard",
                    Outcome::Restored => "restored from its backup",
                    Outcome::Removed => "removed (it did not exist before connect)",
                    Outcome::KeptEdits => {
                        "changed since connect: your edits are kept, only Switchboard's settings were undone"
                    }
                    Outcome::TookOutOurs => {
                        "pointed at Switchboard before connect: Switchboard's settings were taken out"
                    }
                    Outcome::Unchanged => "unchanged",
                    Outcome::Gone => "gone (deleted since connect); left so",
                };
                format!("{}: {} {what}", self.client.name(), p.display())
            })
            .collect()
    }
}

/// A client the ledger says is connected, and its files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connected {
    pub client: AgentClient,
    pub key_name: Option<String>,
    pub files: Vec<PathBuf>,
}

pub struct Ledger {
    dir: PathBuf,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ConnectError + '_ {
    move |source| ConnectError::Io {
        path: path.to_owned(),
        source,
    }
}

fn sha(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// The file's text; None when there is none.
fn read_text(path: &Path) -> Result<Option<String>, ConnectError> {
    match std::fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| ConnectError::NotText {
                path: path.to_owned(),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(path)(e)),
    }
}

/// Writes through a temporary file and a rename, so a crash leaves the old file or the new one,
/// never half of each; an existing file keeps its permissions, a new one is the owner's only
/// (it holds a client key).
fn write_atomic(path: &Path, text: &str) -> Result<(), ConnectError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    let tmp = path.with_extension("switchboard-tmp");
    let existing = std::fs::metadata(path).ok().map(|m| m.permissions());
    std::fs::write(&tmp, text).map_err(io(&tmp))?;
    match existing {
        Some(p) => std::fs::set_permissions(&tmp, p).map_err(io(&tmp))?,
        None => private(&tmp)?,
    }
    std::fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

fn private(path: &Path) -> Result<(), ConnectError> {
    crate::store::private_file(path).map_err(io(path))
}

impl Ledger {
    pub fn new(data_dir: &Path) -> Self {
        Self {
            dir: data_dir.join("clients"),
        }
    }

    fn record_path(&self, client: AgentClient) -> PathBuf {
        self.dir.join(format!("{}.json", client.id()))
    }

    fn read(&self, client: AgentClient) -> Result<Option<Record>, ConnectError> {
        let path = self.record_path(client);
        read_text(&path)?
            .map(|t| {
                serde_json::from_str(&t)
                    .map_err(|e| ConnectError::Ledger(format!("{}: {e}", path.display())))
            })
            .transpose()
    }

    fn write(&self, record: &Record) -> Result<(), ConnectError> {
        let text = serde_json::to_string_pretty(record)
            .map_err(|e| ConnectError::Ledger(e.to_string()))?;
        let client = AgentClient::from_id(&record.client)
            .ok_or_else(|| ConnectError::Ledger(format!("unknown client {}", record.client)))?;
        write_atomic(&self.record_path(client), &text)
    }

    /// The clients connected (after a crash or a kill too: the ledger outlives the process).
    pub fn connected(&self) -> Result<Vec<Connected>, ConnectError> {
        let mut out = Vec::new();
        for client in AgentClient::ALL {
            if let Some(r) = self.read(client)? {
                out.push(Connected {
                    client,
                    key_name: r.key_name,
                    files: r.files.into_iter().map(|f| f.path).collect(),
                });
            }
        }
        Ok(out)
    }

    /// Points `client` (its files under `home`) at `target`. Every file is read and edited in
    /// memory first: one that cannot be (not JSON, not TOML) stops it before anything is
    /// written. Connecting again keeps the first backup and writes the new target.
    pub fn connect(
        &self,
        client: AgentClient,
        home: &Path,
        target: &Target<'_>,
        key_name: Option<&str>,
    ) -> Result<Report, ConnectError> {
        let files = client.files(home);
        let mut plan: Vec<(File, Option<String>, String)> = Vec::new();
        for f in files {
            let current = read_text(&f.path)?;
            let after = apply(&f, current.as_deref().unwrap_or(""), target)?;
            plan.push((f, current, after));
        }
        std::fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        let mut record = self.read(client)?.unwrap_or_else(|| Record {
            client: client.id().to_owned(),
            key_name: None,
            files: Vec::new(),
        });
        record.key_name = key_name.map(str::to_owned);
        for (i, (f, current, after)) in plan.iter().enumerate() {
            let known = record.files.iter_mut().find(|r| r.path == f.path);
            if let Some(r) = known {
                r.written_sha256 = sha(after);
                continue;
            }
            let ours_before = current
                .as_deref()
                .is_some_and(|c| points_at(f, c, target.base_url));
            let backup = match current {
                Some(text) if !ours_before => {
                    let name = format!("{}.{i}.orig", client.id());
                    let path = self.dir.join(&name);
                    write_atomic(&path, text)?;
                    private(&path)?;
                    Some(name)
                }
                _ => None,
            };
            record.files.push(FileRecord {
                path: f.path.clone(),
                backup,
                ours_before,
                written_sha256: sha(after),
            });
        }
        self.write(&record)?;
        let mut report = Report {
            client,
            files: Vec::new(),
        };
        for (f, current, after) in plan {
            let outcome = if current.as_deref() == Some(after.as_str()) {
                Outcome::AlreadyThere
            } else {
                write_atomic(&f.path, &after)?;
                Outcome::Written
            };
            report.files.push((f.path, outcome));
        }
        Ok(report)
    }

    /// Puts `client`'s files back as they were before connect (see the module's comment); the
    /// record and backups go. Not connected: an empty report.
    pub fn disconnect(&self, client: AgentClient) -> Result<Report, ConnectError> {
        let mut report = Report {
            client,
            files: Vec::new(),
        };
        let Some(record) = self.read(client)? else {
            return Ok(report);
        };
        let backups: Vec<Option<String>> = record
            .files
            .iter()
            .map(|r| match &r.backup {
                Some(name) => read_text(&self.dir.join(name)),
                None => Ok(None),
            })
            .collect::<Result<_, _>>()?;
        for (r, original) in record.files.iter().zip(&backups) {
            // The format is the client's, found by the file's name.
            let file = client
                .files(Path::new(""))
                .into_iter()
                .find(|f| r.path.ends_with(&f.path))
                .map(|f| File {
                    path: r.path.clone(),
                    format: f.format,
                })
                .ok_or_else(|| {
                    ConnectError::Ledger(format!(
                        "{}: not a file of {}",
                        r.path.display(),
                        client.name()
                    ))
                })?;
            let outcome = match read_text(&r.path)? {
                None => Outcome::Gone,
                Some(current) if sha(&current) == r.written_sha256 => {
                    if r.ours_before {
                        write_atomic(&r.path, &undo(&file, &current, None)?)?;
                        Outcome::TookOutOurs
                    } else if let Some(original) = original {
                        write_atomic(&r.path, original)?;
                        Outcome::Restored
                    } else {
                        std::fs::remove_file(&r.path).map_err(io(&r.path))?;
                        Outcome::Removed
                    }
                }
                Some(current) if original.as_deref() == Some(current.as_str()) => {
                    Outcome::Unchanged
                }
                Some(current) => {
                    let undone = undo(&file, &current, original.as_deref())?;
                    if undone != current {
                        write_atomic(&r.path, &undone)?;
                    }
                    Outcome::KeptEdits
                }
            };
            report.files.push((r.path.clone(), outcome));
        }
        for r in &record.files {
            if let Some(name) = &r.backup {
                let _ = std::fs::remove_file(self.dir.join(name));
            }
        }
        let path = self.record_path(client);
        std::fs::remove_file(&path).map_err(io(&path))?;
        Ok(report)
    }
}
