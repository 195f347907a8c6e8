//! Writing a profile into the config file: edited with `toml_edit`, so that
//! the other profiles, comments and layout stay exactly as they were.
//!
//! An existing file must pass the trust check `config` applies when it reads
//! one (the user's own, writable by nobody else) and must already be a valid
//! config file: `init` does not build on a file it would refuse to read. It
//! is replaced atomically (a 0600 temporary file beside it, renamed over it);
//! a file that is a symlink is written where the link points.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::Result;
use toml_edit::{DocumentMut, Item, Table};

use crate::config;
use crate::error::Failure;

pub struct ConfigFile {
    /// Where the file is written (a symlink's target).
    path: PathBuf,
    doc: DocumentMut,
}

impl ConfigFile {
    /// Reads the file at `path`, or starts an empty one if there is none.
    pub fn load(path: &Path) -> Result<ConfigFile> {
        let Some(text) = config::read_trusted(path, true, true)? else {
            return Ok(ConfigFile {
                path: path.to_path_buf(),
                doc: DocumentMut::new(),
            });
        };
        // The same parser `get` uses: a file it would refuse is fixed first.
        config::check(&text, path).map_err(|e| {
            Failure::usage(format!(
                "{e} — fix it before init adds a profile to it, or write to another file with --config"
            ))
        })?;
        let doc: DocumentMut = text
            .parse()
            .map_err(|e| Failure::usage(format!("config file {}: {e}", path.display())))?;
        let path = std::fs::canonicalize(path).map_err(|e| {
            Failure::usage(format!("cannot read config file {}: {e}", path.display()))
        })?;
        Ok(ConfigFile { path, doc })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn has_profile(&self, name: &str) -> bool {
        self.doc
            .get("profiles")
            .and_then(Item::as_table_like)
            .is_some_and(|t| t.contains_key(name))
    }

    /// Puts `table` in as `[profiles.NAME]`: a new table after the others,
    /// or — `force` — in place of the existing one, keeping the comments
    /// above its header.
    pub fn set_profile(&mut self, name: &str, table: Table, force: bool) -> Result<()> {
        if self.has_profile(name) && !force {
            return Err(exists(name, &self.path).into());
        }
        let root = self.doc.as_table_mut();
        if !root.contains_key("profiles") {
            let mut profiles = Table::new();
            // No `[profiles]` header of its own: only `[profiles.NAME]`.
            profiles.set_implicit(true);
            root.insert("profiles", Item::Table(profiles));
        }
        let Some(profiles) = root.get_mut("profiles").and_then(Item::as_table_mut) else {
            return Err(Failure::usage(format!(
                "`profiles` in {} is not written as [profiles.NAME] tables: add the profile by hand",
                self.path.display()
            ))
            .into());
        };
        match profiles.get_mut(name).and_then(Item::as_table_mut) {
            Some(existing) => {
                existing.clear();
                for (key, value) in table.iter() {
                    existing.insert(key, value.clone());
                }
            }
            None => {
                profiles.insert(name, Item::Table(table));
            }
        }
        Ok(())
    }

    /// Writes the file: atomically, mode 0600, its directory made 0700 if
    /// it does not exist.
    pub fn save(&self) -> Result<()> {
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let failed = |what: &str, e: std::io::Error| {
            Failure::usage(format!(
                "cannot write config file {} ({what}: {e})",
                self.path.display()
            ))
        };
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .map_err(|e| failed("creating its directory", e))?;
        }
        // tempfile creates the file 0600.
        let mut tmp = tempfile::Builder::new()
            .prefix(".seatable-cred-init-")
            .tempfile_in(&dir)
            .map_err(|e| failed("creating a temporary file beside it", e))?;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| failed("setting its mode", e))?;
        tmp.write_all(self.doc.to_string().as_bytes())
            .and_then(|()| tmp.as_file().sync_all())
            .map_err(|e| failed("writing", e))?;
        tmp.persist(&self.path)
            .map_err(|e| failed("renaming the temporary file", e.error))?;
        Ok(())
    }

    #[cfg(test)]
    fn text(&self) -> String {
        self.doc.to_string()
    }
}

/// The refusal to replace a profile without `--force`.
pub fn exists(name: &str, path: &Path) -> Failure {
    Failure::usage(format!(
        "profile '{name}' exists in {} already: replace it with --force, or pick another name with --profile",
        path.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(pairs: &[(&str, &str)]) -> Table {
        let mut t = Table::new();
        for (k, v) in pairs {
            t.insert(k, toml_edit::value(*v));
        }
        t
    }

    fn file_with(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        (dir, path)
    }

    const EXISTING: &str = "# my profiles\n\n# the CRM base\n[profiles.crm]\nserver_url = \"https://crm.example.com\" # ours\nsecret = \"kv/crm\"\n\n# billing, read-only\n[profiles.billing]\nserver_url = \"https://b.example.com\"\nsecret = \"kv/billing\"\n";

    #[test]
    fn a_new_file_has_only_the_profile_table() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("config.toml");
        let mut f = ConfigFile::load(&path).unwrap();
        f.set_profile("default", table(&[("server_url", "https://s")]), false)
            .unwrap();
        assert_eq!(f.text(), "[profiles.default]\nserver_url = \"https://s\"\n");
        f.save().unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        assert_eq!(
            std::fs::metadata(path.parent().unwrap()).unwrap().mode() & 0o777,
            0o700
        );
        let names = config::check(&std::fs::read_to_string(&path).unwrap(), &path).unwrap();
        assert_eq!(names, ["default"]);
    }

    #[test]
    fn other_profiles_and_comments_stay() {
        let (_d, path) = file_with(EXISTING);
        let mut f = ConfigFile::load(&path).unwrap();
        f.set_profile("new", table(&[("secret", "kv/new")]), false)
            .unwrap();
        assert_eq!(
            f.text(),
            format!("{EXISTING}\n[profiles.new]\nsecret = \"kv/new\"\n")
        );
    }

    #[test]
    fn an_existing_profile_needs_force_and_keeps_its_place() {
        let (_d, path) = file_with(EXISTING);
        let mut f = ConfigFile::load(&path).unwrap();
        let err = f
            .set_profile("crm", table(&[("secret", "kv/crm2")]), false)
            .unwrap_err();
        assert!(crate::error::one_line(&err).contains("--force"), "{err:#}");
        f.set_profile("crm", table(&[("secret", "kv/crm2")]), true)
            .unwrap();
        assert_eq!(
            f.text(),
            "# my profiles\n\n# the CRM base\n[profiles.crm]\nsecret = \"kv/crm2\"\n\n# billing, read-only\n[profiles.billing]\nserver_url = \"https://b.example.com\"\nsecret = \"kv/billing\"\n"
        );
    }

    #[test]
    fn files_it_would_not_read_are_refused() {
        let (_d, path) = file_with("[profiles.x]\nsever_url = \"typo\"\n");
        let err = crate::error::one_line(&ConfigFile::load(&path).err().unwrap());
        assert!(err.contains("sever_url") && err.contains("fix it"), "{err}");
        let (_d, path) = file_with("[profiles.x]\nserver_url = \"https://s\"\n");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        let err = crate::error::one_line(&ConfigFile::load(&path).err().unwrap());
        assert!(err.contains("writable by others"), "{err}");
    }

    #[test]
    fn a_symlinked_file_is_written_where_it_points() {
        let (dir, target) = file_with(EXISTING);
        let link = dir.path().join("link.toml");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let mut f = ConfigFile::load(&link).unwrap();
        f.set_profile("new", table(&[("secret", "kv/new")]), false)
            .unwrap();
        f.save().unwrap();
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert!(
            std::fs::read_to_string(&target)
                .unwrap()
                .contains("[profiles.new]")
        );
    }
}
