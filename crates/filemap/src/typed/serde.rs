//! Serialized values over the byte channels (feature `serde`): any type
//! that implements `serde`'s traits, encoded with `postcard` (compact,
//! maintained, no schema to ship). A message that does not decode as the
//! type asked for gives [`Error::Malformed`] and is dropped; nothing here
//! panics on what another process sent.
//!
//! ```
//! use filemap::channel::spsc::{Receiver, Sender};
//!
//! #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
//! struct Job { id: u64, path: String, tags: Vec<String> }
//!
//! let mut tx = Sender::create("filemap-doc-serde", 4096)?;
//! let mut rx = Receiver::open("filemap-doc-serde")?;
//! let job = Job { id: 1, path: "/tmp/a".into(), tags: vec!["urgent".into()] };
//! tx.send_serialized(&job)?;
//! assert_eq!(rx.recv_deserialized::<Job>()?, job);
//!
//! // Bytes that are not a `Job` are an error, not a panic:
//! tx.send(&[0xff; 3])?;
//! let e = rx.recv_deserialized::<Job>().unwrap_err();
//! assert!(matches!(e, filemap::Error::Malformed { .. }), "{e}");
//! # Ok::<(), filemap::Error>(())
//! ```

use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::channel::{broadcast, mpmc, spsc};
use crate::error::{Error, Result};

fn encode<V: Serialize + ?Sized>(object: &str, value: &V) -> Result<Vec<u8>> {
    postcard::to_allocvec(value).map_err(|e| Error::InvalidSize {
        object: object.to_owned(),
        reason: format!(
            "a value of `{}` could not be serialized: {e}",
            std::any::type_name::<V>()
        ),
    })
}

fn decode<V: DeserializeOwned>(object: &str, bytes: &[u8]) -> Result<V> {
    let bad = |why: String| Error::Malformed {
        object: object.to_owned(),
        reason: format!(
            "a message of {} bytes does not decode as `{}`: {why}",
            bytes.len(),
            std::any::type_name::<V>()
        ),
    };
    match postcard::take_from_bytes::<V>(bytes) {
        Ok((v, [])) => Ok(v),
        Ok((_, rest)) => Err(bad(format!("{} bytes are left over", rest.len()))),
        Err(e) => Err(bad(e.to_string())),
    }
}

impl spsc::Sender {
    /// Sends `value` serialized (postcard), if there is room now.
    ///
    /// # Errors
    /// As [`spsc::Sender::try_send`]; [`Error::InvalidSize`] for a value
    /// that does not serialize or is over the channel's limit.
    pub fn try_send_serialized<V: Serialize + ?Sized>(&mut self, value: &V) -> Result<bool> {
        let bytes = encode(self.label(), value)?;
        self.try_send(&bytes)
    }

    /// Sends `value` serialized, waiting as long as it takes for room.
    ///
    /// # Errors
    /// As [`spsc::Sender::try_send_serialized`], and [`Error::PeerGone`].
    pub fn send_serialized<V: Serialize + ?Sized>(&mut self, value: &V) -> Result<()> {
        let bytes = encode(self.label(), value)?;
        self.send(&bytes)
    }

    /// Sends `value` serialized, waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`spsc::Sender::send_serialized`], and [`Error::Timeout`].
    pub fn send_serialized_timeout<V: Serialize + ?Sized>(
        &mut self,
        value: &V,
        timeout: Duration,
    ) -> Result<()> {
        let bytes = encode(self.label(), value)?;
        self.send_timeout(&bytes, timeout)
    }

    /// Sends `value` serialized, waiting until `deadline` at most.
    ///
    /// # Errors
    /// As [`spsc::Sender::send_serialized`], and [`Error::Timeout`].
    pub fn send_serialized_deadline<V: Serialize + ?Sized>(
        &mut self,
        value: &V,
        deadline: Instant,
    ) -> Result<()> {
        let bytes = encode(self.label(), value)?;
        self.send_deadline(&bytes, deadline)
    }
}

impl spsc::Receiver {
    /// The next message, deserialized as `V`, if one is there now.
    ///
    /// # Errors
    /// As [`spsc::Receiver::try_recv`]; [`Error::Malformed`] for a message
    /// that does not decode (it is dropped).
    pub fn try_recv_deserialized<V: DeserializeOwned>(&mut self) -> Result<Option<V>> {
        match self.try_recv()? {
            Some(m) => decode(m.label(), &m.to_vec()).map(Some),
            None => Ok(None),
        }
    }

    /// The next message deserialized as `V`, waiting as long as it takes.
    ///
    /// # Errors
    /// As [`spsc::Receiver::recv`], and [`Error::Malformed`].
    pub fn recv_deserialized<V: DeserializeOwned>(&mut self) -> Result<V> {
        let m = self.recv()?;
        decode(m.label(), &m.to_vec())
    }

    /// The next message deserialized as `V`, waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`spsc::Receiver::recv_deserialized`], and [`Error::Timeout`].
    pub fn recv_deserialized_timeout<V: DeserializeOwned>(
        &mut self,
        timeout: Duration,
    ) -> Result<V> {
        let m = self.recv_timeout(timeout)?;
        decode(m.label(), &m.to_vec())
    }

    /// The next message deserialized as `V`, waiting until `deadline` at most.
    ///
    /// # Errors
    /// As [`spsc::Receiver::recv_deserialized`], and [`Error::Timeout`].
    pub fn recv_deserialized_deadline<V: DeserializeOwned>(
        &mut self,
        deadline: Instant,
    ) -> Result<V> {
        let m = self.recv_deadline(deadline)?;
        decode(m.label(), &m.to_vec())
    }
}

impl mpmc::Sender {
    /// Sends `value` serialized (postcard), if a slot is free now.
    ///
    /// # Errors
    /// As [`mpmc::Sender::try_send`]; [`Error::InvalidSize`] for a value
    /// that does not serialize or is over the slot size.
    pub fn try_send_serialized<V: Serialize + ?Sized>(&self, value: &V) -> Result<bool> {
        self.try_send(&encode(self.label(), value)?)
    }

    /// Sends `value` serialized, waiting as long as it takes.
    ///
    /// # Errors
    /// As [`mpmc::Sender::try_send_serialized`].
    pub fn send_serialized<V: Serialize + ?Sized>(&self, value: &V) -> Result<()> {
        self.send(&encode(self.label(), value)?)
    }

    /// Sends `value` serialized, waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`mpmc::Sender::send_serialized`], and [`Error::Timeout`].
    pub fn send_serialized_timeout<V: Serialize + ?Sized>(
        &self,
        value: &V,
        timeout: Duration,
    ) -> Result<()> {
        self.send_timeout(&encode(self.label(), value)?, timeout)
    }

    /// Sends `value` serialized, waiting until `deadline` at most.
    ///
    /// # Errors
    /// As [`mpmc::Sender::send_serialized`], and [`Error::Timeout`].
    pub fn send_serialized_deadline<V: Serialize + ?Sized>(
        &self,
        value: &V,
        deadline: Instant,
    ) -> Result<()> {
        self.send_deadline(&encode(self.label(), value)?, deadline)
    }
}

impl mpmc::Receiver {
    /// The next message deserialized as `V`, if one is there now.
    ///
    /// # Errors
    /// As [`mpmc::Receiver::try_recv`]; [`Error::Malformed`] for a message
    /// that does not decode (it is dropped).
    pub fn try_recv_deserialized<V: DeserializeOwned>(&self) -> Result<Option<V>> {
        match self.try_recv()? {
            Some(b) => decode(self.label(), &b).map(Some),
            None => Ok(None),
        }
    }

    /// The next message deserialized as `V`, waiting as long as it takes.
    ///
    /// # Errors
    /// As [`mpmc::Receiver::recv`], and [`Error::Malformed`].
    pub fn recv_deserialized<V: DeserializeOwned>(&self) -> Result<V> {
        decode(self.label(), &self.recv()?)
    }

    /// The next message deserialized as `V`, waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`mpmc::Receiver::recv_deserialized`], and [`Error::Timeout`].
    pub fn recv_deserialized_timeout<V: DeserializeOwned>(&self, timeout: Duration) -> Result<V> {
        decode(self.label(), &self.recv_timeout(timeout)?)
    }

    /// The next message deserialized as `V`, waiting until `deadline` at most.
    ///
    /// # Errors
    /// As [`mpmc::Receiver::recv_deserialized`], and [`Error::Timeout`].
    pub fn recv_deserialized_deadline<V: DeserializeOwned>(&self, deadline: Instant) -> Result<V> {
        decode(self.label(), &self.recv_deadline(deadline)?)
    }
}

impl broadcast::Sender {
    /// Sends `value` serialized (postcard) to every receiver (never waits).
    ///
    /// # Errors
    /// As [`broadcast::Sender::send`]; [`Error::InvalidSize`] for a value
    /// that does not serialize or is over the slot size.
    pub fn send_serialized<V: Serialize + ?Sized>(&mut self, value: &V) -> Result<()> {
        let bytes = encode(self.label(), value)?;
        self.send(&bytes)
    }
}

impl broadcast::Receiver {
    /// The next message deserialized as `V`, if one is there now.
    ///
    /// # Errors
    /// As [`broadcast::Receiver::try_recv`]; [`Error::Malformed`] for a
    /// message that does not decode (it is skipped).
    pub fn try_recv_deserialized<V: DeserializeOwned>(&mut self) -> Result<Option<V>> {
        match self.try_recv()? {
            Some(r) => decode(self.label(), &r.data).map(Some),
            None => Ok(None),
        }
    }

    /// The next message deserialized as `V`, waiting as long as it takes.
    ///
    /// # Errors
    /// As [`broadcast::Receiver::recv`], and [`Error::Malformed`].
    pub fn recv_deserialized<V: DeserializeOwned>(&mut self) -> Result<V> {
        let r = self.recv()?;
        decode(self.label(), &r.data)
    }

    /// The next message deserialized as `V`, waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`broadcast::Receiver::recv_deserialized`], and [`Error::Timeout`].
    pub fn recv_deserialized_timeout<V: DeserializeOwned>(
        &mut self,
        timeout: Duration,
    ) -> Result<V> {
        let r = self.recv_timeout(timeout)?;
        decode(self.label(), &r.data)
    }

    /// The next message deserialized as `V`, waiting until `deadline` at most.
    ///
    /// # Errors
    /// As [`broadcast::Receiver::recv_deserialized`], and [`Error::Timeout`].
    pub fn recv_deserialized_deadline<V: DeserializeOwned>(
        &mut self,
        deadline: Instant,
    ) -> Result<V> {
        let r = self.recv_deadline(deadline)?;
        decode(self.label(), &r.data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_truncation_and_corruption_of_a_message_is_an_error_not_a_panic() {
        #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
        struct V {
            a: u64,
            s: String,
            v: Vec<u32>,
        }
        let good = encode(
            "t",
            &V {
                a: 1 << 40,
                s: "héllo".into(),
                v: vec![1, 2, 3],
            },
        )
        .expect("encodes");
        assert!(decode::<V>("t", &good).is_ok());
        for n in 0..good.len() {
            assert!(
                matches!(decode::<V>("t", &good[..n]), Err(Error::Malformed { .. })),
                "cut at {n}"
            );
        }
        let mut longer = good.clone();
        longer.push(0);
        assert!(matches!(
            decode::<V>("t", &longer),
            Err(Error::Malformed { .. })
        ));
        // Every single-byte change decodes or errs; none panics.
        for i in 0..good.len() {
            for b in [0u8, 0x7f, 0x80, 0xff] {
                let mut bad = good.clone();
                bad[i] = b;
                let _ = decode::<V>("t", &bad);
            }
        }
    }
}
