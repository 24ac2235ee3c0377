//! Group commit for event publishes: several events in one JetStream message, so that
//! ingestion is not capped by one stream's fsync per message (`sync_interval: always`).
//!
//! How a group forms: every [`crate::Bus::publish_event`] call of a process goes to one
//! queue. A sender task takes the first waiting event, waits for one of
//! [`GroupSettings::inflight_max`] publish slots, then takes everything else waiting (up to
//! the limits) and publishes one message per subject. While the slots are busy, new events
//! wait, so under load groups grow by themselves, and with no load an event leaves alone
//! at once: grouping never adds a fixed delay.
//!
//! The wire form is the one place that knows it: a group is the events' envelopes, each
//! one line of compact JSON, joined by `\n`, with the header [`GROUP_HEADER`] giving the
//! count. A message without the header is one event, exactly as before grouping existed,
//! so readers of old streams and single events need nothing new. [`split`] is the only
//! way a consumer turns a message into events.
//!
//! What stays per event: every event keeps its own event id (the ledger deduplicates by
//! it forever), its subject (a group holds events of one subject only, so replaying a
//! subject still selects exactly its events), its own decision announcement, and its own
//! answer to its caller (the ack of the message that carries it). What is per message: the
//! `Nats-Msg-Id` of a group is a digest of its events' ids, so JetStream's short-window
//! dedupe catches a group sent twice, while an event retried by its caller in another
//! group is stored twice and recorded once by the ledger as a duplicate.

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream;
use bytes::{Bytes, BytesMut};
use sha2::{Digest, Sha256};
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::trace::{TRACEPARENT, TraceContext, UNTRACED};
use crate::{BusError, Published};

/// The header that marks a message carrying several events; its value is the count.
pub const GROUP_HEADER: &str = "Stockledger-Group";

/// Limits of group commit, each from one documented variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupSettings {
    /// `STOCKLEDGER_PUBLISH_GROUP_MAX`, default 64: events per message at most; 1 turns
    /// grouping off (one event per message).
    pub max_events: usize,
    /// Bytes of payload per message at most (below NATS's default 1 MiB `max_payload`).
    pub max_bytes: usize,
    /// `STOCKLEDGER_PUBLISH_INFLIGHT_MAX`, default 4: messages of this process awaiting
    /// JetStream's ack at once. Events arriving while all are busy wait and leave together.
    pub inflight_max: usize,
    /// Events waiting for a slot at most; a caller beyond it waits to enqueue.
    pub queue_max: usize,
}

impl Default for GroupSettings {
    fn default() -> Self {
        Self {
            max_events: 64,
            max_bytes: 512 * 1024,
            inflight_max: 4,
            queue_max: 8192,
        }
    }
}

impl GroupSettings {
    /// True when events are grouped at all.
    pub fn enabled(&self) -> bool {
        self.max_events > 1
    }
}

/// One event waiting to be published, with the way back to its caller.
struct Pending {
    subject: String,
    msg_id: String,
    payload: Bytes,
    /// The trace context of the request that caused the event, if any.
    trace: Option<TraceContext>,
    done: oneshot::Sender<Result<Published, BusError>>,
}

/// The handle publishers use; the sender task owns the rest.
#[derive(Debug, Clone)]
pub(crate) struct Grouper {
    tx: mpsc::Sender<Pending>,
}

impl Grouper {
    /// Starts the sender task on the current tokio runtime.
    pub(crate) fn start(
        js: jetstream::Context,
        settings: GroupSettings,
        timeout: Duration,
    ) -> Grouper {
        let (tx, rx) = mpsc::channel(settings.queue_max.max(1));
        tokio::spawn(send_loop(js, rx, settings, timeout));
        Grouper { tx }
    }

    /// Queues one event and waits for the ack of the message that carries it.
    pub(crate) async fn publish(
        &self,
        subject: String,
        msg_id: &str,
        payload: Bytes,
        trace: Option<&TraceContext>,
    ) -> Result<Published, BusError> {
        let (done, answer) = oneshot::channel();
        let pending = Pending {
            subject,
            msg_id: msg_id.to_owned(),
            payload,
            trace: trace.cloned(),
            done,
        };
        self.tx
            .send(pending)
            .await
            .map_err(|_| BusError::unavailable("the publisher has stopped"))?;
        answer
            .await
            .map_err(|_| BusError::unavailable("the publisher has stopped"))?
    }
}

async fn send_loop(
    js: jetstream::Context,
    mut rx: mpsc::Receiver<Pending>,
    settings: GroupSettings,
    timeout: Duration,
) {
    let slots = std::sync::Arc::new(Semaphore::new(settings.inflight_max.max(1)));
    let drain_max = settings
        .max_events
        .saturating_mul(settings.inflight_max.max(1) * 4);
    while let Some(first) = rx.recv().await {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let mut waiting = vec![first];
        while waiting.len() < drain_max {
            match rx.try_recv() {
                Ok(p) => waiting.push(p),
                Err(_) => break,
            }
        }
        let js = js.clone();
        tokio::spawn(async move {
            let sends = groups(waiting, &settings)
                .into_iter()
                .map(|g| send_group(&js, g, timeout));
            futures::future::join_all(sends).await;
            drop(slot);
        });
    }
}

/// Cuts the waiting events into messages: one subject per message, in arrival order,
/// within the event and byte limits. An event that cannot share a line-based message (its
/// payload holds a newline) goes alone.
fn groups(waiting: Vec<Pending>, settings: &GroupSettings) -> Vec<Vec<Pending>> {
    let mut out: Vec<Vec<Pending>> = Vec::new();
    let mut open: std::collections::HashMap<String, (usize, usize)> = Default::default();
    for p in waiting {
        let alone = p.payload.contains(&b'\n');
        let size = p.payload.len() + 1;
        let fits = |i: usize, bytes: usize, out: &Vec<Vec<Pending>>| {
            out[i].len() < settings.max_events && bytes + size <= settings.max_bytes
        };
        match open.get_mut(&p.subject) {
            Some((i, bytes)) if !alone && fits(*i, *bytes, &out) => {
                *bytes += size;
                out[*i].push(p);
            }
            _ => {
                if !alone {
                    open.insert(p.subject.clone(), (out.len(), size));
                }
                out.push(vec![p]);
            }
        }
    }
    out
}

async fn send_group(js: &jetstream::Context, group: Vec<Pending>, timeout: Duration) {
    // The same event asked for twice at once (one webhook to two handlers of this
    // process) travels once; the second caller hears the same ack as a duplicate.
    let mut seen = std::collections::HashSet::new();
    let mut riders = Vec::new();
    let mut unique = Vec::with_capacity(group.len());
    for p in group {
        if seen.insert(p.msg_id.clone()) {
            unique.push(p);
        } else {
            riders.push(p.done);
        }
    }
    let group = unique;
    let Some(first) = group.first() else { return };
    let subject = first.subject.clone();
    let msg = if group.len() == 1 {
        let mut msg = jetstream::message::PublishMessage::build().payload(first.payload.clone());
        if let Some(trace) = &first.trace {
            // Headers first: `headers` replaces the map `message_id` writes into.
            let mut headers = HeaderMap::new();
            headers.insert(TRACEPARENT, trace.to_string().as_str());
            msg = msg.headers(headers);
        }
        msg.message_id(first.msg_id.as_str())
    } else {
        let mut headers = HeaderMap::new();
        headers.insert(GROUP_HEADER, group.len().to_string().as_str());
        if group.iter().any(|p| p.trace.is_some()) {
            // One value per event, in order, so each event keeps its own context.
            for p in &group {
                let value = p
                    .trace
                    .as_ref()
                    .map_or(UNTRACED.to_owned(), |t| t.to_string());
                headers.append(TRACEPARENT, value.as_str());
            }
        }
        jetstream::message::PublishMessage::build()
            .payload(join(&group))
            .headers(headers)
            .message_id(group_id(&group).as_str())
    };
    let publish = async {
        let ack = js.send_publish(subject, msg).await?;
        ack.await
    };
    let result = match tokio::time::timeout(timeout, publish).await {
        Err(_) => Err(BusError::unavailable("publish not acknowledged in time")),
        Ok(Err(e)) => Err(crate::classify_publish(e)),
        Ok(Ok(ack)) => Ok(Published {
            stream_seq: ack.sequence,
            duplicate: ack.duplicate,
        }),
    };
    for p in group {
        // A caller that gave up (its own deadline) no longer listens; nothing to do.
        let _ = p.done.send(result.clone());
    }
    for done in riders {
        let _ = done.send(result.clone().map(|published| Published {
            duplicate: true,
            ..published
        }));
    }
}

fn join(group: &[Pending]) -> Bytes {
    let len = group.iter().map(|p| p.payload.len() + 1).sum();
    let mut buf = BytesMut::with_capacity(len);
    for (i, p) in group.iter().enumerate() {
        if i > 0 {
            buf.extend_from_slice(b"\n");
        }
        buf.extend_from_slice(&p.payload);
    }
    buf.freeze()
}

/// The `Nats-Msg-Id` of a group: a digest of its events' ids, in order.
fn group_id(group: &[Pending]) -> String {
    let mut h = Sha256::new();
    for p in group {
        h.update(p.msg_id.as_bytes());
        h.update(b"\n");
    }
    let digest = h.finalize();
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("group:{hex}")
}

/// How many events a message carries, from its header (1 without one).
pub fn event_count(headers: Option<&HeaderMap>) -> usize {
    headers
        .and_then(|h| h.get(GROUP_HEADER))
        .and_then(|v| v.as_str().parse::<usize>().ok())
        .unwrap_or(1)
        .max(1)
}

/// Like [`split`], each event paired with the trace context it was published with (`None`
/// when it had none, or when the message's `traceparent` values do not match its events).
pub fn split_traced(
    headers: Option<&HeaderMap>,
    payload: &Bytes,
) -> Vec<(Bytes, Option<TraceContext>)> {
    let parts = split(headers, payload);
    let traces: Vec<Option<TraceContext>> = headers
        .map(|h| {
            h.get_all(TRACEPARENT)
                .map(|v| TraceContext::parse(v.as_str()))
                .collect()
        })
        .unwrap_or_default();
    if traces.len() == parts.len() {
        parts.into_iter().zip(traces).collect()
    } else {
        parts.into_iter().map(|p| (p, None)).collect()
    }
}

/// The events one message carries, in order: the lines of a group, or the payload itself.
pub fn split(headers: Option<&HeaderMap>, payload: &Bytes) -> Vec<Bytes> {
    let grouped = headers.and_then(|h| h.get(GROUP_HEADER)).is_some();
    if !grouped {
        return vec![payload.clone()];
    }
    let mut parts = Vec::new();
    let mut start = 0;
    for (i, b) in payload.iter().enumerate() {
        if *b == b'\n' {
            parts.push(payload.slice(start..i));
            start = i + 1;
        }
    }
    parts.push(payload.slice(start..));
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(subject: &str, body: &str) -> Pending {
        let (done, _) = oneshot::channel();
        Pending {
            subject: subject.into(),
            msg_id: body.into(),
            payload: Bytes::from(body.to_owned()),
            trace: None,
            done,
        }
    }

    #[test]
    fn each_event_of_a_group_keeps_its_own_trace_context() {
        let a = TraceContext::new_root();
        let b = TraceContext::new_root();
        let mut h = HeaderMap::new();
        h.insert(GROUP_HEADER, "3");
        h.append(TRACEPARENT, a.to_string().as_str());
        h.append(TRACEPARENT, UNTRACED);
        h.append(TRACEPARENT, b.to_string().as_str());
        let parts = split_traced(Some(&h), &Bytes::from_static(b"1\n2\n3"));
        let traces: Vec<_> = parts.into_iter().map(|(_, t)| t).collect();
        assert_eq!(traces, vec![Some(a.clone()), None, Some(b)]);
        // A message whose values do not match its events keeps none.
        let mut h = HeaderMap::new();
        h.insert(GROUP_HEADER, "2");
        h.insert(TRACEPARENT, a.to_string().as_str());
        let parts = split_traced(Some(&h), &Bytes::from_static(b"1\n2"));
        assert!(parts.iter().all(|(_, t)| t.is_none()));
        // A single event with its header.
        let mut h = HeaderMap::new();
        h.insert(TRACEPARENT, a.to_string().as_str());
        let parts = split_traced(Some(&h), &Bytes::from_static(b"1"));
        assert_eq!(parts[0].1, Some(a));
    }

    #[test]
    fn groups_keep_one_subject_and_arrival_order_within_the_limits() {
        let s = GroupSettings {
            max_events: 2,
            ..GroupSettings::default()
        };
        let waiting = vec![
            pending("a", "1"),
            pending("b", "2"),
            pending("a", "3"),
            pending("a", "4"),
            pending("a", "x\ny"),
        ];
        let bodies: Vec<Vec<String>> = groups(waiting, &s)
            .iter()
            .map(|g| {
                g.iter()
                    .map(|p| String::from_utf8_lossy(&p.payload).into_owned())
                    .collect()
            })
            .collect();
        assert_eq!(
            bodies,
            vec![vec!["1", "3"], vec!["2"], vec!["4"], vec!["x\ny"]]
        );
    }

    #[test]
    fn a_group_splits_back_into_its_events_and_a_single_event_stays_whole() {
        let group = vec![pending("a", "{\"n\":1}"), pending("a", "{\"n\":2}")];
        let mut h = HeaderMap::new();
        h.insert(GROUP_HEADER, "2");
        let parts = split(Some(&h), &join(&group));
        assert_eq!(
            parts,
            vec![Bytes::from("{\"n\":1}"), Bytes::from("{\"n\":2}")]
        );
        let one = Bytes::from("{\"a\":\"x\\ny\"}");
        assert_eq!(split(None, &one), vec![one.clone()]);
    }

    #[test]
    fn a_group_id_depends_on_every_event() {
        let a = [pending("s", "1"), pending("s", "2")];
        let b = [pending("s", "1"), pending("s", "3")];
        assert_ne!(group_id(&a), group_id(&b));
        assert_eq!(
            group_id(&a),
            group_id(&[pending("s", "1"), pending("s", "2")])
        );
    }
}
