//! iceoryx2 publish-subscribe (feature `iceoryx2`, Linux): a publisher and a
//! subscriber on two services of byte slices (`ping` parent to child, `pong`
//! back; streaming uses `pong` only), configured for low latency: a small
//! subscriber buffer, no history, busy-polling `receive`, and the publisher
//! blocking rather than dropping when the subscriber's buffer is full (so no
//! message is lost).

use iceoryx2::port::publisher::Publisher;
use iceoryx2::port::subscriber::Subscriber;
use iceoryx2::prelude::*;

use super::{Case, ParentSide, Transport};
use crate::error::{BenchError, Result};

pub(crate) struct Iceoryx2;

type Pub = Publisher<ipc::Service, [u8], ()>;
type Sub = Subscriber<ipc::Service, [u8], ()>;

pub(crate) struct Ports {
    _node: Node<ipc::Service>,
    publ: Option<Pub>,
    sub: Option<Sub>,
    buf: Vec<u8>,
}

fn err(e: impl std::fmt::Display) -> BenchError {
    BenchError::library("iceoryx2", e)
}

impl Ports {
    fn make(case: &Case, send_on: Option<&str>, recv_on: Option<&str>) -> Result<Ports> {
        // Its default configuration is what we measure; no notice about it.
        set_log_level(LogLevel::Error);
        let node = NodeBuilder::new().create::<ipc::Service>().map_err(err)?;
        let service = |svc: &str| {
            let sname: ServiceName = format!("filemap-bench/{}/{svc}", case.name)
                .as_str()
                .try_into()
                .map_err(err)?;
            node.service_builder(&sname)
                .publish_subscribe::<[u8]>()
                .subscriber_max_buffer_size(16)
                .history_size(0)
                .enable_safe_overflow(false)
                .open_or_create()
                .map_err(err)
        };
        let publ = match send_on {
            Some(svc) => Some(
                service(svc)?
                    .publisher_builder()
                    .initial_max_slice_len(case.size.max(1))
                    .unable_to_deliver_strategy(UnableToDeliverStrategy::Block)
                    .create()
                    .map_err(err)?,
            ),
            None => None,
        };
        let sub = match recv_on {
            Some(svc) => Some(
                service(svc)?
                    .subscriber_builder()
                    .buffer_size(16)
                    .create()
                    .map_err(err)?,
            ),
            None => None,
        };
        Ok(Ports {
            _node: node,
            publ,
            sub,
            buf: vec![0; case.size],
        })
    }

    fn send(&mut self) -> Result<()> {
        let p = self.publ.as_ref().ok_or_else(|| err("no publisher"))?;
        let sample = p.loan_slice_uninit(self.buf.len()).map_err(err)?;
        sample.write_from_slice(&self.buf).send().map_err(err)?;
        Ok(())
    }

    fn recv(&mut self) -> Result<()> {
        let s = self.sub.as_ref().ok_or_else(|| err("no subscriber"))?;
        loop {
            if let Some(sample) = s.receive().map_err(err)? {
                self.buf.copy_from_slice(sample.payload());
                return Ok(());
            }
            std::hint::spin_loop();
        }
    }
}

impl Transport for Iceoryx2 {
    type Parent = Ports;

    fn setup(case: &Case) -> Result<Ports> {
        Ports::make(case, case.latency().then_some("ping"), Some("pong"))
    }

    fn child(case: &Case, ready: &dyn Fn()) -> Result<()> {
        let mut p = Ports::make(case, Some("pong"), case.latency().then_some("ping"))?;
        ready();
        for _ in 0..case.total {
            if case.latency() {
                p.recv()?;
            }
            p.send()?;
        }
        Ok(())
    }
}

impl ParentSide for Ports {
    fn round_trip(&mut self, _i: u64) -> Result<()> {
        self.send()?;
        self.recv()
    }

    fn receive(&mut self, _i: u64) -> Result<()> {
        self.recv()
    }
}
