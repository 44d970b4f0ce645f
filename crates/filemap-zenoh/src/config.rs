//! A bridge's configuration: Zenoh's own configuration, passed through, and
//! the routes; from code or from a JSON5 file.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::route::{Backpressure, Direction, Route};
use crate::Error;

/// What a [`Bridge`](crate::Bridge) is made of.
///
/// The Zenoh part is Zenoh's own [`zenoh::Config`]: mode (peer, client),
/// connect and listen endpoints, scouting, TLS and authentication all come
/// from it, as documented by Zenoh.
///
/// A file (JSON5, like Zenoh's own) holds both:
///
/// ```
/// let config = filemap_zenoh::Config::from_json5(r#"{
///     // Zenoh's configuration, as in a zenohd config file.
///     zenoh: {
///         mode: "peer",
///         connect: { endpoints: ["tcp/127.0.0.1:7447"] },
///         scouting: { multicast: { enabled: false } },
///     },
///     routes: [
///         // A local channel or Latest cell, published on a key.
///         { out: "sensors", key: "demo/sensors" },
///         // Samples on a key expression, written into a local channel.
///         { in: "demo/cmds", to: "cmds", backpressure: "block" },
///         // A Latest cell polled every 5 ms.
///         { out: "pose", key: "demo/pose", poll_ms: 5 },
///     ],
/// }"#)?;
/// assert_eq!(config.routes().len(), 3);
/// # Ok::<(), filemap_zenoh::Error>(())
/// ```
#[derive(Debug)]
pub struct Config {
    /// Zenoh's configuration.
    pub zenoh: zenoh::Config,
    routes: Vec<Route>,
}

/// One route in a file: `{ out: NAME, key: KEY }` or `{ in: KEY, to: NAME }`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRoute {
    out: Option<String>,
    key: Option<String>,
    #[serde(rename = "in")]
    inbound: Option<String>,
    to: Option<String>,
    backpressure: Option<Backpressure>,
    poll_ms: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    zenoh: Option<serde_json::Value>,
    #[serde(default)]
    routes: Vec<FileRoute>,
}

impl Config {
    /// A configuration with Zenoh's `zenoh` and no routes yet.
    pub fn new(zenoh: zenoh::Config) -> Config {
        Config {
            zenoh,
            routes: Vec::new(),
        }
    }

    /// Adds a route.
    pub fn route(&mut self, r: Route) -> &mut Config {
        self.routes.push(r);
        self
    }

    /// The routes.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// Reads a bridge configuration file (see [`Config`]).
    ///
    /// # Errors
    /// [`Error::Config`] naming the file and what is wrong in it.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Config, Error> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("cannot read {}: {e}", path.display())))?;
        Config::from_json5(&text).map_err(|e| match e {
            Error::Config(m) => Error::Config(format!("{}: {m}", path.display())),
            other => other,
        })
    }

    /// Parses a bridge configuration (see [`Config`]).
    ///
    /// # Errors
    /// [`Error::Config`] for a malformed file, an unknown field, a route
    /// that is neither `out` nor `in`, or a Zenoh part Zenoh refuses;
    /// [`Error::Route`] for a bad route.
    pub fn from_json5(text: &str) -> Result<Config, Error> {
        let file: File = json5::from_str(text).map_err(|e| Error::Config(e.to_string()))?;
        let zenoh = match file.zenoh {
            None => zenoh::Config::default(),
            Some(v) => zenoh::Config::from_json5(&v.to_string())
                .map_err(|e| Error::Config(format!("its `zenoh` part: {e}")))?,
        };
        let mut config = Config::new(zenoh);
        for (i, r) in file.routes.into_iter().enumerate() {
            let which = |what: &str| Error::Config(format!("route {}: {what}", i + 1));
            let mut route = match (r.out, r.key, r.inbound, r.to) {
                (Some(local), Some(key), None, None) => Route::out(&local, &key)?,
                (None, None, Some(key), Some(local)) => Route::into_local(&key, &local)?,
                _ => {
                    return Err(which(
                        "expected { out: NAME, key: KEY } or { in: KEY, to: NAME }",
                    ))
                }
            };
            if let Some(b) = r.backpressure {
                route = route.backpressure(b);
            }
            if let Some(ms) = r.poll_ms {
                if route.direction() == Direction::In {
                    return Err(which("`poll_ms` is for Out routes"));
                }
                route = route.poll(Duration::from_millis(ms));
            }
            config.route(route);
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_checked_field_by_field() {
        let err = |t: &str| Config::from_json5(t).unwrap_err().to_string();
        assert!(err("{ routes: [ { out: 'a' } ] }").contains("route 1: expected"));
        assert!(err("{ routes: [ { out: 'a', key: 'k', colour: 1 } ] }").contains("colour"));
        assert!(err("{ routes: [ { in: 'k', to: 'a', poll_ms: 3 } ] }").contains("Out routes"));
        assert!(err("{ routes: [ { out: 'a', key: 'k/*' } ] }").contains("wildcards"));
        assert!(err("{ zenoh: { mode: 'sideways' } }").contains("zenoh"));
        let c = Config::from_json5("{ routes: [ { in: 'k/**', to: 'a', backpressure: 'drop' } ] }")
            .unwrap();
        assert_eq!(c.routes()[0].to_string(), "in k/** -> a (drop)");
    }
}
