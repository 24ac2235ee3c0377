//! The stock-change stream: one message per (SKU, location) per committed ledger
//! transaction, for downstream systems.
//!
//! | what | name (namespace `stockledger`) |
//! | --- | --- |
//! | stream | `STOCKLEDGER_STOCK`, subjects `stockledger.stock.>` |
//! | one (SKU, location) | `stockledger.stock.<sku>.<location>` (tokens encoded by [`encode_token`]) |
//! | one SKU, all locations | `stockledger.stock.<sku>.*` |
//! | one location, all SKUs | `stockledger.stock.*.<location>` |
//!
//! Every message carries its (SKU, location) sequence in the [`SEQ_HEADER`] header.
//! [`Bus::publish_stock_change`] publishes with `Nats-Expected-Last-Subject-Sequence`, so
//! a change is stored only right after the one before it on its subject: per-pair order
//! holds, and a change already published (by this relay before a crash, or by another
//! relay) is never stored twice, however long after.

use async_nats::HeaderMap;
use async_nats::jetstream::{self, stream};
use bytes::Bytes;

use crate::{Bus, BusError, Namespace};

/// The header holding the (SKU, location) sequence of a stock-change message.
pub const SEQ_HEADER: &str = "Stockledger-Seq";

/// Encodes any text as one subject token: ASCII letters, digits, `-` and `_` stay; every
/// other byte (UTF-8) becomes `%XX` (uppercase hex). Reversible and never a wildcard, a
/// dot or whitespace; an empty text is `%`.
pub fn encode_token(s: &str) -> String {
    if s.is_empty() {
        return "%".to_owned();
    }
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The inverse of [`encode_token`]; `None` for a token it could not have produced.
pub fn decode_token(t: &str) -> Option<String> {
    if t == "%" {
        return Some(String::new());
    }
    let bytes = t.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = t.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

impl Namespace {
    /// The stock-change stream.
    pub fn stock_stream(&self) -> String {
        format!("{}_STOCK", self.as_str().to_ascii_uppercase())
    }

    /// The wildcard subject of the stock-change stream.
    pub fn stock_wildcard(&self) -> String {
        format!("{}.stock.>", self.as_str())
    }

    /// The subject of one (SKU, location).
    pub fn stock_subject(&self, sku: &str, location: &str) -> String {
        format!(
            "{}.stock.{}.{}",
            self.as_str(),
            encode_token(sku),
            encode_token(location)
        )
    }
}

/// The last message stored on one stock subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastChange {
    /// Its (SKU, location) sequence.
    pub seq: u64,
    /// Its stream sequence.
    pub stream_seq: u64,
}

/// What happened to a stock-change publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StockPublish {
    /// Stored (or already stored with this message id) at this stream sequence.
    Stored(u64),
    /// Another message was stored on the subject since `expected`: read the last one again.
    Moved,
}

impl Bus {
    /// Creates the stock-change stream if missing, or updates it. Safe at every start.
    pub async fn ensure_stock_stream(&self) -> Result<(), BusError> {
        let ns = self.namespace();
        let config = stream::Config {
            name: ns.stock_stream(),
            subjects: vec![ns.stock_wildcard()],
            storage: stream::StorageType::File,
            retention: stream::RetentionPolicy::Limits,
            allow_direct: true,
            ..Default::default()
        };
        self.put_stream(config, crate::provision::Existing::Update)
            .await
    }

    /// The last change stored on `subject`, if any.
    pub async fn last_stock_change(&self, subject: &str) -> Result<Option<LastChange>, BusError> {
        let stream = self
            .jetstream()
            .get_stream_no_info(self.namespace().stock_stream())
            .await
            .map_err(BusError::unavailable)?;
        match stream.direct_get_last_for_subject(subject).await {
            Ok(msg) => {
                let seq = msg
                    .headers
                    .get(SEQ_HEADER)
                    .and_then(|v| v.as_str().parse::<u64>().ok())
                    .ok_or_else(|| {
                        BusError::refused(format!("stock message on {subject} has no {SEQ_HEADER}"))
                    })?;
                Ok(Some(LastChange {
                    seq,
                    stream_seq: msg.sequence,
                }))
            }
            Err(e) if e.kind() == jetstream::stream::DirectGetErrorKind::NotFound => Ok(None),
            Err(e) => Err(BusError::unavailable(e)),
        }
    }

    /// Publishes one stock change with sequence `seq` on `subject`, stored only if the last
    /// message on the subject is still the one at stream sequence `expected_stream_seq`
    /// (0: none). Awaits the ack within the publish timeout.
    pub async fn publish_stock_change(
        &self,
        subject: String,
        seq: u64,
        payload: Bytes,
        expected_stream_seq: u64,
    ) -> Result<StockPublish, BusError> {
        let mut headers = HeaderMap::new();
        headers.insert(SEQ_HEADER, seq.to_string().as_str());
        let msg_id = format!("{subject}:{seq}");
        let msg = jetstream::message::PublishMessage::build()
            .payload(payload)
            .headers(headers)
            .message_id(msg_id)
            .expected_last_subject_sequence(expected_stream_seq);
        if !self.is_connected() {
            return Err(BusError::unavailable("not connected to NATS"));
        }
        let publish = async {
            let ack = self.jetstream().send_publish(subject, msg).await?;
            ack.await
        };
        match tokio::time::timeout(self.publish_timeout(), publish).await {
            Err(_) => Err(BusError::unavailable(
                "stock change not acknowledged in time",
            )),
            Ok(Ok(ack)) => Ok(StockPublish::Stored(ack.sequence)),
            Ok(Err(e)) if e.kind() == jetstream::context::PublishErrorKind::WrongLastSequence => {
                Ok(StockPublish::Moved)
            }
            Ok(Err(e)) => Err(BusError::unavailable(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_never_contain_subject_syntax() {
        for s in ["tee-black-m", "a.b", "x y", "*", ">", "ü€", "", "%41", "a%"] {
            let t = encode_token(s);
            assert!(!t.contains(['.', '*', '>', ' ', '\t']), "{t}");
            assert_eq!(decode_token(&t).as_deref(), Some(s));
        }
        assert_eq!(encode_token("SKU-1_a"), "SKU-1_a");
        assert_eq!(encode_token("a.b"), "a%2Eb");
    }
}
