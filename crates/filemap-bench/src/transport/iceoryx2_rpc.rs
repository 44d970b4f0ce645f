//! iceoryx2 request-response (feature `iceoryx2`, Linux): the parent a
//! client, the child a server, on one service of byte slices; each request
//! is answered with a response of the same size, both sides busy-polling
//! (`PendingResponse::receive`, `Server::receive`): iceoryx2's fastest way.

use iceoryx2::port::client::Client;
use iceoryx2::port::server::Server;
use iceoryx2::prelude::*;

use super::{Case, ParentSide, Transport};
use crate::error::{BenchError, Result};

pub(crate) struct Iceoryx2Rpc;

pub(crate) struct Parent {
    _node: Node<ipc::Service>,
    client: Client<ipc::Service, [u8], (), [u8], ()>,
    buf: Vec<u8>,
}

fn err(e: impl std::fmt::Display) -> BenchError {
    BenchError::library("iceoryx2", e)
}

type Svc = iceoryx2::service::port_factory::request_response::PortFactory<
    ipc::Service,
    [u8],
    (),
    [u8],
    (),
>;

fn service(node: &Node<ipc::Service>, case: &Case) -> Result<Svc> {
    let name: ServiceName = format!("filemap-bench/{}/rpc", case.name)
        .as_str()
        .try_into()
        .map_err(err)?;
    node.service_builder(&name)
        .request_response::<[u8], [u8]>()
        .open_or_create()
        .map_err(err)
}

impl Transport for Iceoryx2Rpc {
    type Parent = Parent;

    fn setup(case: &Case) -> Result<Parent> {
        set_log_level(LogLevel::Error);
        let node = NodeBuilder::new().create::<ipc::Service>().map_err(err)?;
        let client = service(&node, case)?
            .client_builder()
            .initial_max_slice_len(case.size.max(1))
            .create()
            .map_err(err)?;
        Ok(Parent {
            _node: node,
            client,
            buf: vec![0x5a; case.size],
        })
    }

    fn child(case: &Case, ready: &dyn Fn()) -> Result<()> {
        set_log_level(LogLevel::Error);
        let node = NodeBuilder::new().create::<ipc::Service>().map_err(err)?;
        let server: Server<ipc::Service, [u8], (), [u8], ()> = service(&node, case)?
            .server_builder()
            .initial_max_slice_len(case.size.max(1))
            .create()
            .map_err(err)?;
        ready();
        let mut answered = 0;
        while answered < case.total {
            match server.receive().map_err(err)? {
                Some(req) => {
                    let n = req.payload().len();
                    let resp = req.loan_slice_uninit(n).map_err(err)?;
                    resp.write_from_slice(req.payload()).send().map_err(err)?;
                    answered += 1;
                }
                None => std::hint::spin_loop(),
            }
        }
        Ok(())
    }
}

impl ParentSide for Parent {
    fn round_trip(&mut self, _i: u64) -> Result<()> {
        let req = self.client.loan_slice_uninit(self.buf.len()).map_err(err)?;
        let pending = req.write_from_slice(&self.buf).send().map_err(err)?;
        loop {
            if let Some(resp) = pending.receive().map_err(err)? {
                self.buf.copy_from_slice(resp.payload());
                return Ok(());
            }
            std::hint::spin_loop();
        }
    }

    fn receive(&mut self, _i: u64) -> Result<()> {
        Err(BenchError::Unsupported(
            "request-response has no streaming row".into(),
        ))
    }
}
