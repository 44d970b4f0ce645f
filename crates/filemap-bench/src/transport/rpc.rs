//! filemap request-response ([`TransportKind::Rpc`](crate::TransportKind::Rpc)):
//! the parent is a client that calls (`Client::call`, blocking: spin
//! briefly, then park), the child a server answering each request with a
//! response of the same size. Round trips only.

use filemap::rpc::{Client, Config, Server};

use super::{Case, ParentSide, Transport};
use crate::error::{BenchError, Result};

pub(crate) struct Rpc;

pub(crate) struct Parent {
    /// Keeps the service while the child starts.
    server_slot: Option<Server>,
    client: Option<Client>,
    buf: Vec<u8>,
}

fn config(case: &Case) -> Config {
    Config::new()
        .max_request(case.size as u64)
        .max_response(case.size as u64)
        .clients(4)
}

impl Transport for Rpc {
    type Parent = Parent;

    fn setup(case: &Case) -> Result<Parent> {
        // The parent creates the service (so the child can open it) and
        // its client; the creating server leaves once the child serves.
        let server = Server::create(&case.name, &config(case))?;
        let client = Client::open(&case.name)?;
        Ok(Parent {
            server_slot: Some(server),
            client: Some(client),
            buf: vec![0x5a; case.size],
        })
    }

    fn child(case: &Case, ready: &dyn Fn()) -> Result<()> {
        let server = Server::open(&case.name)?;
        ready();
        for _ in 0..case.total {
            let r = server.recv_request()?;
            // The response is the request's bytes (a copy out and back in).
            let out = r.data().to_vec();
            r.respond(&out)?;
        }
        Ok(())
    }
}

impl ParentSide for Parent {
    fn attach(&mut self, _child: &mut std::process::Child, _case: &Case) -> Result<()> {
        // Only the child's server answers from now on.
        self.server_slot = None;
        Ok(())
    }

    fn round_trip(&mut self, _i: u64) -> Result<()> {
        let c = self
            .client
            .as_mut()
            .ok_or_else(|| BenchError::Unsupported("no client".into()))?;
        let got = c.call(&self.buf)?;
        if got.len() != self.buf.len() {
            return Err(BenchError::Unsupported(format!(
                "a response of {} bytes to a request of {}",
                got.len(),
                self.buf.len()
            )));
        }
        Ok(())
    }

    fn receive(&mut self, _i: u64) -> Result<()> {
        Err(BenchError::Unsupported(
            "request-response has no streaming row".into(),
        ))
    }
}
