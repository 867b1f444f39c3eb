//! Where a data directory's cluster lives: in the data directory itself, or (as root,
//! when the `postgres` user cannot reach it) in a relocated home under
//! [`RELOCATED_BASE`].

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::process::{chown, RunAs};
use super::{EmbeddedError, RELOCATED_BASE};

/// Where a data directory's cluster lives: `home` holds `pg/` (the cluster) and the
/// logs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    pub home: PathBuf,
    /// The data directory is out of the `postgres` user's reach, so `home` is
    /// [`relocated_home`] instead of the data directory itself.
    pub relocated: bool,
}

impl Location {
    /// The cluster's own directory (`postgres -D`).
    pub fn cluster_dir(&self) -> PathBuf {
        self.home.join("pg")
    }
}

/// The home of the cluster of `data_dir` (a canonical path) when the `postgres` user
/// cannot reach it: `<base>/<name>-<hash>`, where `name` is the data directory's last
/// component (letters, digits, `.`, `_` and `-` kept, others as `_`, at most 32) and
/// `hash` 12 hex digits of the FNV-1a hash of the whole path. It depends on the path
/// alone, so every process (a restart, `deltran audit`) derives the same place.
pub fn relocated_home(base: &Path, data_dir: &Path) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    let name: String = data_dir
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(32)
        .collect();
    let name = match name.trim_start_matches('.') {
        "" => "data",
        trimmed => trimmed,
    };
    // FNV-1a, 64 bits: stable across Rust releases, unlike the std hasher.
    let hash = data_dir
        .as_os_str()
        .as_bytes()
        .iter()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
    base.join(format!("{name}-{:012x}", hash >> 16))
}

/// Where the cluster of the (canonical) data directory `root` lives: in `root` itself,
/// unless the engine runs as root and the `postgres` user cannot reach `root`.
pub(super) fn locate(root: &Path, run_as: Option<RunAs>) -> Result<Location, EmbeddedError> {
    match run_as {
        Some(user) if !is_reachable(root, user)? => Ok(Location {
            home: relocated_home(Path::new(RELOCATED_BASE), root),
            relocated: true,
        }),
        _ => Ok(Location {
            home: root.to_path_buf(),
            relocated: false,
        }),
    }
}

/// Creates [`RELOCATED_BASE`] (root's, mode 0755) if missing and `home` in it (the
/// `postgres` user's, mode 0700).
pub(super) fn prepare_relocated_home(home: &Path, user: RunAs) -> Result<(), EmbeddedError> {
    use std::os::unix::fs::DirBuilderExt;
    let base = home.parent().expect("a relocated home has a parent");
    if !base.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(base)?;
        // Whatever the umask: the `postgres` user must pass through.
        fs::set_permissions(base, fs::Permissions::from_mode(0o755))?;
    }
    if !is_reachable(home, user)? {
        return Err(EmbeddedError::Unreachable(home.to_path_buf()));
    }
    match fs::DirBuilder::new().mode(0o700).create(home) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e.into()),
    }
    chown(home, user)?;
    Ok(())
}

pub(super) fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Whether every ancestor of `dir` lets the postgres user pass through.
fn is_reachable(dir: &Path, user: RunAs) -> Result<bool, EmbeddedError> {
    use std::os::unix::fs::MetadataExt;
    for ancestor in dir.ancestors().skip(1) {
        let meta = fs::metadata(ancestor)?;
        let mode = meta.mode();
        let passable = mode & 0o001 != 0
            || (meta.uid() == user.uid && mode & 0o100 != 0)
            || (meta.gid() == user.gid && mode & 0o010 != 0);
        if !passable {
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::embedded::process::socket_dir_for;

    #[test]
    fn the_relocated_home_is_named_after_the_data_dir_and_its_path() {
        let base = Path::new("/var/lib/deltran");
        let home = relocated_home(base, Path::new("/root/deltran/deltran-data"));
        assert_eq!(home.parent(), Some(base));
        let name = home.file_name().unwrap().to_str().unwrap();
        let (stem, hash) = name.rsplit_once('-').unwrap();
        assert_eq!(stem, "deltran-data");
        assert_eq!(hash.len(), 12);
        assert!(hash.chars().all(|c| c.is_ascii_hexdigit()), "{hash}");
        assert_eq!(
            relocated_home(base, Path::new("/root/deltran/deltran-data")),
            home,
            "the same path, the same home"
        );
    }

    #[test]
    fn the_relocated_home_is_stable_across_releases() {
        // FNV-1a of the path's bytes, not the std hasher (whose algorithm may change):
        // a restart after an upgrade must find the same cluster. The expected value
        // was computed apart from this code (Python, the FNV-1a 64 constants).
        assert_eq!(
            relocated_home(Path::new("/b"), Path::new("/root/deltran/deltran-data")),
            Path::new("/b/deltran-data-5c78aa2bb93f")
        );
    }

    #[test]
    fn two_data_dirs_of_the_same_name_get_two_homes() {
        let base = Path::new("/var/lib/deltran");
        let a = relocated_home(base, Path::new("/root/a/deltran-data"));
        let b = relocated_home(base, Path::new("/root/b/deltran-data"));
        assert_ne!(a, b);
    }

    #[test]
    fn odd_names_become_short_plain_ones() {
        let base = Path::new("/x");
        let odd = relocated_home(base, Path::new("/root/my data/dé ta;rm -rf"));
        let name = odd.file_name().unwrap().to_str().unwrap();
        assert!(name.starts_with("d__ta_rm_-rf-"), "{name}");
        let long = relocated_home(base, &Path::new("/root").join("n".repeat(200)));
        let name = long.file_name().unwrap().to_str().unwrap();
        assert_eq!(name.len(), 32 + 1 + 12, "{name}");
        let hidden = relocated_home(base, Path::new("/root/.data"));
        assert!(hidden
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("data-"));
        let root = relocated_home(base, Path::new("/"));
        assert!(root
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("data-"));
        // A socket directory under /tmp stays short whatever the data dir's name.
        let cluster = Location {
            home: long,
            relocated: true,
        }
        .cluster_dir();
        assert!(socket_dir_for(&cluster).as_os_str().len() < 40);
    }

    #[test]
    fn a_reachable_data_dir_keeps_its_cluster_and_a_private_one_is_relocated() {
        let scratch = std::env::temp_dir().join(format!(
            "deltran-locate-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        let data = scratch.join("home/checkout/deltran-data");
        fs::create_dir_all(&data).unwrap();
        fs::set_permissions(&scratch, fs::Permissions::from_mode(0o755)).unwrap();
        // A user that owns nothing here: only the "other" bits let it through.
        let nobody = RunAs {
            uid: 4_000_000_001,
            gid: 4_000_000_001,
        };
        fs::set_permissions(scratch.join("home"), fs::Permissions::from_mode(0o755)).unwrap();
        let here = locate(&data, Some(nobody)).unwrap();
        assert_eq!(
            here,
            Location {
                home: data.clone(),
                relocated: false
            }
        );
        assert_eq!(here.cluster_dir(), data.join("pg"));
        fs::set_permissions(scratch.join("home"), fs::Permissions::from_mode(0o700)).unwrap();
        let moved = locate(&data, Some(nobody)).unwrap();
        assert_eq!(
            moved,
            Location {
                home: relocated_home(Path::new(RELOCATED_BASE), &data),
                relocated: true
            }
        );
        // Not root: the cluster always stays in the data directory.
        assert!(!locate(&data, None).unwrap().relocated);
        fs::remove_dir_all(&scratch).unwrap();
    }
}
