//! Routes: which local object goes to (or comes from) which key expression,
//! and what happens when the far side cannot keep up.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use zenoh::key_expr::KeyExpr;

use crate::Error;

/// Which way messages flow on a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// From a local channel or cell to Zenoh.
    Out,
    /// From Zenoh into a local channel or cell.
    In,
}

/// What a route does when the far side (or the local reader) cannot keep up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backpressure {
    /// Never lose a message: the bridge waits, and so, in turn, does the
    /// producer. Out: Zenoh's `CongestionControl::Block`, and the route waits
    /// while no subscriber matches its key. In: the bridge waits for room in
    /// the local channel, and Zenoh holds the sender back meanwhile. The
    /// default for spsc and mpmc channels.
    Block,
    /// Never wait: drop the oldest (a broadcast channel or a `Latest` cell
    /// overwrites it) or, at a full spsc/mpmc channel, the newest message,
    /// and count the loss.
    /// Out: Zenoh's `CongestionControl::Drop`. The default for broadcast
    /// channels and `Latest` cells.
    Drop,
}

impl Backpressure {
    /// The default for a local object of this kind.
    pub fn default_for(kind: LocalKind) -> Backpressure {
        match kind {
            LocalKind::Spsc | LocalKind::Mpmc => Backpressure::Block,
            LocalKind::Broadcast | LocalKind::Latest => Backpressure::Drop,
        }
    }

    /// `"block"` or `"drop"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Backpressure::Block => "block",
            Backpressure::Drop => "drop",
        }
    }
}

/// The kinds of local object a route can bridge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LocalKind {
    /// [`filemap::channel::spsc`].
    Spsc,
    /// [`filemap::channel::mpmc`].
    Mpmc,
    /// [`filemap::channel::broadcast`].
    Broadcast,
    /// A byte `Latest` cell ([`filemap::sync::LatestBytesWriter`]).
    Latest,
}

impl LocalKind {
    /// `"spsc"`, `"mpmc"`, `"broadcast"` or `"latest"`.
    pub fn as_str(self) -> &'static str {
        match self {
            LocalKind::Spsc => "spsc",
            LocalKind::Mpmc => "mpmc",
            LocalKind::Broadcast => "broadcast",
            LocalKind::Latest => "latest",
        }
    }
}

/// One route of a bridge.
///
/// The local object is found by name when the route starts, and its kind is
/// read from its header; until it exists the route waits for it (and so it
/// does again when the object goes away and comes back).
///
/// ```
/// use filemap_zenoh::{Backpressure, Route};
///
/// let out = Route::out("sensors", "demo/sensors")?;
/// let inbound = Route::into_local("demo/cmds", "cmds")?.backpressure(Backpressure::Block);
/// assert_eq!(out.to_string(), "out sensors -> demo/sensors");
/// assert_eq!(inbound.to_string(), "in demo/cmds -> cmds (block)");
/// // The CLI's forms: `--out NAME:KEY`, `--in KEY:NAME`.
/// assert_eq!(Route::parse_out("sensors:demo/sensors")?, out);
/// # Ok::<(), filemap_zenoh::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub(crate) direction: Direction,
    pub(crate) local: String,
    pub(crate) key: String,
    pub(crate) backpressure: Option<Backpressure>,
    pub(crate) poll: Duration,
}

/// How often an Out route looks at a `Latest` cell for a new value.
pub const DEFAULT_POLL: Duration = Duration::from_millis(1);

impl Route {
    /// Messages from the local channel or cell `local` are published on `key`.
    ///
    /// # Errors
    /// [`Error::Route`] for an invalid name, or a key that is not a valid
    /// Zenoh key expression or has wildcards (a publication needs one key).
    pub fn out(local: &str, key: &str) -> Result<Route, Error> {
        let r = Route::new(Direction::Out, local, key);
        r.check()?;
        Ok(r)
    }

    /// Samples on the key expression `key` (wildcards allowed) are written
    /// into the local channel or cell `local`.
    ///
    /// # Errors
    /// [`Error::Route`] for an invalid name or key expression.
    pub fn into_local(key: &str, local: &str) -> Result<Route, Error> {
        let r = Route::new(Direction::In, local, key);
        r.check()?;
        Ok(r)
    }

    fn new(direction: Direction, local: &str, key: &str) -> Route {
        Route {
            direction,
            local: local.to_owned(),
            key: key.to_owned(),
            backpressure: None,
            poll: DEFAULT_POLL,
        }
    }

    /// Parses the CLI's `--out NAME:KEY` (split at the first `:`).
    ///
    /// # Errors
    /// [`Error::Route`] without a `:`, or as [`Route::out`].
    pub fn parse_out(s: &str) -> Result<Route, Error> {
        let (local, key) = split(s, "NAME:KEY")?;
        Route::out(local, key)
    }

    /// Parses the CLI's `--in KEY:NAME` (split at the last `:`).
    ///
    /// # Errors
    /// [`Error::Route`] without a `:`, or as [`Route::into_local`].
    pub fn parse_in(s: &str) -> Result<Route, Error> {
        let Some((key, local)) = s.rsplit_once(':') else {
            return Err(Error::Route {
                route: s.to_owned(),
                reason: "expected KEY:NAME".into(),
            });
        };
        Route::into_local(key, local)
    }

    /// Chooses the backpressure (the default depends on the local object's
    /// kind: see [`Backpressure`]).
    pub fn backpressure(mut self, b: Backpressure) -> Route {
        self.backpressure = Some(b);
        self
    }

    /// For an Out route from a `Latest` cell: how often to look for a new
    /// value (default [`DEFAULT_POLL`]).
    pub fn poll(mut self, every: Duration) -> Route {
        self.poll = every.max(Duration::from_micros(10));
        self
    }

    /// Which way it flows.
    pub fn direction(&self) -> Direction {
        self.direction
    }

    /// The local object's name.
    pub fn local(&self) -> &str {
        &self.local
    }

    /// The key expression.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The backpressure chosen, if any (else the kind's default).
    pub fn chosen_backpressure(&self) -> Option<Backpressure> {
        self.backpressure
    }

    fn check(&self) -> Result<(), Error> {
        let bad = |reason: String| Error::Route {
            route: self.to_string(),
            reason,
        };
        filemap::name::validate(&self.local).map_err(|e| bad(format!("bad local name: {e}")))?;
        let key = KeyExpr::try_from(self.key.as_str())
            .map_err(|e| bad(format!("`{}` is not a Zenoh key expression: {e}", self.key)))?;
        if self.direction == Direction::Out && (key.contains('*') || key.contains('$')) {
            return Err(bad(format!(
                "`{}` has wildcards: an Out route publishes on one key",
                self.key
            )));
        }
        Ok(())
    }
}

fn split<'a>(s: &'a str, form: &str) -> Result<(&'a str, &'a str), Error> {
    s.split_once(':').ok_or_else(|| Error::Route {
        route: s.to_owned(),
        reason: format!("expected {form}"),
    })
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.direction {
            Direction::Out => write!(f, "out {} -> {}", self.local, self.key)?,
            Direction::In => write!(f, "in {} -> {}", self.key, self.local)?,
        }
        if let Some(b) = self.backpressure {
            write!(f, " ({})", b.as_str())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_routes_are_refused_with_the_route_and_cause() {
        let e = Route::out("sensors", "demo/*").unwrap_err().to_string();
        assert!(
            e.contains("out sensors -> demo/*") && e.contains("wildcards"),
            "{e}"
        );
        let e = Route::out("sensors", "demo//x").unwrap_err().to_string();
        assert!(e.contains("not a Zenoh key expression"), "{e}");
        let e = Route::into_local("demo/x", "a/b").unwrap_err().to_string();
        assert!(e.contains("bad local name"), "{e}");
        let e = Route::parse_out("sensors").unwrap_err().to_string();
        assert!(e.contains("NAME:KEY"), "{e}");
        let e = Route::parse_in("cmds").unwrap_err().to_string();
        assert!(e.contains("KEY:NAME"), "{e}");
        // Wildcards are fine for a subscription.
        let r = Route::parse_in("demo/**:cmds").unwrap();
        assert_eq!((r.key(), r.local()), ("demo/**", "cmds"));
    }
}
