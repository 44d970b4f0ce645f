//! The portable naming rule for named mappings.
//!
//! A name is an optional scope prefix, `Local\` or `Global\` (as on Windows), then
//! 1 to [`MAX_LEN`] characters from `[A-Za-z0-9._-]`, not starting with `.`.
//! The same name means the same object to every filemap process on the machine,
//! and to the platform's own tools:
//!
//! | name given | Linux | macOS | Windows |
//! |---|---|---|---|
//! | `jobs` | POSIX shm object `/jobs`, i.e. `/dev/shm/jobs` | POSIX shm object `/jobs` | section `jobs` (session-local, like `Local\jobs`) |
//! | `Local\jobs` | `/dev/shm/jobs` | `/jobs` | section `Local\jobs` |
//! | `Global\jobs` | `/dev/shm/jobs` | `/jobs` | section `Global\jobs` (needs `SeCreateGlobalPrivilege` to create) |
//!
//! So on Linux, Python's `multiprocessing.shared_memory.SharedMemory("jobs")` and
//! Boost's `shared_memory_object(open_only, "jobs", ...)` open the very bytes
//! that filemap's `jobs` names, and the other way round.
//!
//! **macOS** limits shm names to 31 bytes including the leading `/`. Names of up
//! to [`MACOS_DIRECT_LEN`] characters are used as they are; a longer name is
//! replaced by its first 12 characters, a `~`, and 16 hex digits of a 64-bit
//! FNV-1a hash of the whole name (29 characters in all). Every filemap process
//! computes the same replacement, so filemap programs agree with each other; a
//! non-filemap program on macOS must use the short form (see [`os_name`]).
//!
//! ```
//! use filemap::name;
//!
//! assert!(name::validate("Local\\orders-2024.v1").is_ok());
//! assert!(name::validate("has space").is_err());
//! assert!(name::validate(".hidden").is_err());
//! ```

use crate::error::{Error, Result};

/// The longest name, not counting a `Local\` or `Global\` prefix.
pub const MAX_LEN: usize = 200;

/// The longest name macOS gets unchanged (31 bytes less the leading `/` and a spare).
pub const MACOS_DIRECT_LEN: usize = 29;

/// A name checked against the rule, split into its scope prefix and its base.
#[derive(Debug, Clone)]
pub(crate) struct Name {
    /// As the caller gave it (used in error messages).
    pub given: String,
    /// The part after the prefix.
    pub base: String,
}

/// Checks `name` against the portable rule.
///
/// # Errors
/// [`Error::InvalidName`] saying which part of the rule is broken.
pub fn validate(name: &str) -> Result<()> {
    parse(name).map(|_| ())
}

pub(crate) fn parse(name: &str) -> Result<Name> {
    let bad = |reason: String| Error::InvalidName {
        name: name.to_owned(),
        reason,
    };
    let base = name
        .strip_prefix("Local\\")
        .or_else(|| name.strip_prefix("Global\\"))
        .unwrap_or(name);
    if base.is_empty() {
        return Err(bad(
            "it is empty; use 1 to 200 characters from [A-Za-z0-9._-]".into(),
        ));
    }
    if base.len() > MAX_LEN {
        return Err(bad(format!(
            "it is {} characters long; at most {MAX_LEN} are allowed",
            base.len()
        )));
    }
    if let Some(c) = base
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        let what = if c == '/' || c == '\\' {
            "a path separator (only the prefixes `Local\\` and `Global\\` may contain `\\`)"
                .to_owned()
        } else {
            format!("the character {c:?}")
        };
        return Err(bad(format!(
            "it contains {what}; only [A-Za-z0-9._-] are allowed"
        )));
    }
    if base.starts_with('.') {
        return Err(bad("it starts with `.`".into()));
    }
    Ok(Name {
        given: name.to_owned(),
        base: base.to_owned(),
    })
}

/// The name the OS sees for the portable `name`: `/base` for POSIX shm (hashed on
/// macOS when long), or the name unchanged on Windows.
///
/// # Errors
/// [`Error::InvalidName`] if `name` breaks the rule.
///
/// ```
/// # #[cfg(target_os = "linux")]
/// assert_eq!(filemap::name::os_name("Local\\jobs").unwrap(), "/jobs");
/// ```
pub fn os_name(name: &str) -> Result<String> {
    let n = parse(name)?;
    Ok(platform_name(&n))
}

pub(crate) fn platform_name(n: &Name) -> String {
    if cfg!(windows) {
        n.given.clone()
    } else if cfg!(target_vendor = "apple") {
        format!("/{}", macos_base(&n.base))
    } else {
        format!("/{}", n.base)
    }
}

/// The base name used on macOS: unchanged when short enough, else a hashed form.
pub(crate) fn macos_base(base: &str) -> String {
    if base.len() <= MACOS_DIRECT_LEN {
        return base.to_owned();
    }
    // FNV-1a, 64-bit: stable across processes, versions and platforms.
    let h = crate::hash::fnv1a(base.bytes());
    format!("{}~{h:016x}", &base[..12])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_portable_set_and_prefixes() {
        for ok in [
            "a",
            "A-b_c.9",
            "Local\\x",
            "Global\\x.y",
            &"n".repeat(MAX_LEN),
        ] {
            assert!(validate(ok).is_ok(), "{ok:?} should be valid");
        }
    }

    #[test]
    fn refuses_with_a_reason() {
        let cases = [
            ("", "empty"),
            ("Local\\", "empty"),
            ("a b", "' '"),
            ("a/b", "path separator"),
            ("Other\\x", "path separator"),
            (".x", "starts with"),
            ("é", "'é'"),
        ];
        for (name, why) in cases {
            match validate(name) {
                Err(Error::InvalidName { reason, .. }) => {
                    assert!(reason.contains(why), "{name:?}: {reason}")
                }
                other => panic!("{name:?}: expected InvalidName, got {other:?}"),
            }
        }
        let long = "n".repeat(MAX_LEN + 1);
        assert!(
            matches!(validate(&long), Err(Error::InvalidName { reason, .. }) if reason.contains("201"))
        );
    }

    #[test]
    fn macos_names_fit_31_bytes_and_stay_distinct() {
        assert_eq!(macos_base("short"), "short");
        let a = macos_base(&"a".repeat(40));
        let b = macos_base(&format!("{}b", "a".repeat(39)));
        assert_ne!(a, b);
        assert!(a.len() < 31 && b.len() < 31, "{a} {b}");
        assert_eq!(a, macos_base(&"a".repeat(40)), "stable");
    }

    #[test]
    fn scopes_share_one_posix_name() {
        if !cfg!(windows) && !cfg!(target_vendor = "apple") {
            assert_eq!(os_name("x").unwrap(), "/x");
            assert_eq!(os_name("Local\\x").unwrap(), "/x");
            assert_eq!(os_name("Global\\x").unwrap(), "/x");
        }
    }
}
