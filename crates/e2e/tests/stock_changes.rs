//! The stock-change stream, on SQLite and PostgreSQL: across 10k mixed events, with the
//! ledger killed at points that fall between a commit and the publish of its changes, a
//! subscriber sees every change of every (SKU, location) exactly once and in order, and the
//! last message per subject is the ledger's current balance.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bus::read::ReadFrom;
use contract::stock_change::StockChange;
use e2e::{Harness, test_settings, workload};
use testkit::Backend;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_once_and_in_order_sqlite() {
    every_change_once_and_in_order(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_once_and_in_order_postgres() {
    every_change_once_and_in_order(Backend::Postgres).await;
}

async fn every_change_once_and_in_order(backend: Backend) {
    let h = Harness::new(backend).await.unwrap();
    let events = workload::mixed(10_000, 200, 9);
    for (identity, e) in &events {
        h.publish(identity, e).await.unwrap();
    }
    let n = events
        .iter()
        .map(|(_, e)| e.id)
        .collect::<std::collections::BTreeSet<_>>()
        .len() as i64;
    let mut settings = test_settings();
    settings.fetch_batch_max = 64;
    for progress in [1500, 4000, 7000] {
        let ledger = h.start_ledger(settings.clone()).await.unwrap();
        h.wait_processed(progress, Duration::from_secs(120))
            .await
            .unwrap();
        ledger.kill().await;
    }
    let ledger = h.start_ledger(settings).await.unwrap();
    assert_eq!(
        h.wait_processed(n, Duration::from_secs(300)).await.unwrap(),
        n
    );
    let start = Instant::now();
    while h.store.stock_outbox_len().await.unwrap() > 0 {
        if start.elapsed() > Duration::from_secs(60) {
            // Say what is stuck: the oldest waiting changes and what their subjects hold.
            let mut stuck = String::new();
            for c in h.store.pending_stock_changes(5).await.unwrap() {
                let subject = h.bus.namespace().stock_subject(&c.sku, &c.location);
                let last = h.bus.last_stock_change(&subject).await;
                stuck.push_str(&format!("\n{subject} seq {}: stream has {last:?}", c.seq));
            }
            panic!(
                "the outbox drains: {} changes left{stuck}",
                h.store.stock_outbox_len().await.unwrap()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ns = h.bus.namespace();
    // Everything, from the start: per (SKU, location), sequences 1, 2, 3 … once each.
    let mut reader = h
        .bus
        .read(&ns.stock_stream(), &ns.stock_wildcard(), ReadFrom::Start)
        .await
        .unwrap();
    let mut seen: BTreeMap<(String, String), Vec<StockChange>> = BTreeMap::new();
    while let Some(msg) = reader.next().await {
        let msg = msg.unwrap();
        let change = StockChange::parse(&msg.payload).expect("a v1 stock change");
        assert_eq!(msg.subject, ns.stock_subject(&change.sku, &change.location));
        seen.entry((change.sku.clone(), change.location.clone()))
            .or_default()
            .push(change);
    }
    let balances = h.store.all_balances().await.unwrap();
    assert_eq!(
        seen.len(),
        balances.len(),
        "one subject per (SKU, location)"
    );
    for (sku, location, b) in &balances {
        let changes = &seen[&(sku.clone(), location.clone())];
        let seqs: Vec<u64> = changes.iter().map(|c| c.seq).collect();
        let last_seqs_per_change: Vec<u64> = seqs.clone();
        // Entries of one transaction share one change (its last sequence); changes are
        // strictly increasing and end at the ledger's sequence.
        assert!(
            last_seqs_per_change.windows(2).all(|w| w[0] < w[1]),
            "{sku}@{location}: {seqs:?}"
        );
        assert_eq!(seqs.last().copied(), Some(b.seq), "{sku}@{location}");
        let last = changes.last().unwrap();
        assert_eq!(
            (
                last.balances.available,
                last.balances.reserved,
                last.balances.sold
            ),
            (b.available, b.reserved, b.sold)
        );
    }
    // One change per (SKU, location) per moving transaction: each change is the state after
    // a real entry of its cause (same pair, same sequence), and there are never more changes
    // than (event, pair) movements.
    let entries = entry_causes(&h).await;
    for ((sku, location), changes) in &seen {
        for c in changes {
            assert_eq!(
                entries.get(&(sku.clone(), location.clone(), c.seq)),
                Some(&c.cause.event_id),
                "{sku}@{location} seq {}: the change is the entry of its cause",
                c.seq
            );
        }
    }
    let moved_pairs: i64 = store_count_pairs(&h).await;
    let total_changes: usize = seen.values().map(Vec::len).sum();
    assert!(
        total_changes as i64 <= moved_pairs && total_changes >= balances.len(),
        "every transaction's change once: {total_changes} changes, {moved_pairs} movements"
    );
    // A late subscriber's snapshot: the last message of every subject is the current state.
    let mut snapshot = h
        .bus
        .read(
            &ns.stock_stream(),
            &ns.stock_wildcard(),
            ReadFrom::LastPerSubject,
        )
        .await
        .unwrap();
    let mut count = 0;
    while let Some(msg) = snapshot.next().await {
        let c = StockChange::parse(&msg.unwrap().payload).unwrap();
        let b = balances
            .iter()
            .find(|(s, l, _)| *s == c.sku && *l == c.location)
            .unwrap();
        assert_eq!(c.seq, b.2.seq);
        count += 1;
    }
    assert_eq!(count, balances.len());
    ledger.stop().await;
}

/// (SKU, location, seq) → the event of that ledger entry.
async fn entry_causes(h: &Harness) -> BTreeMap<(String, String, u64), String> {
    let sql = "SELECT sku, location, seq, event_id FROM ledger_entries";
    store::sqlx::query_as::<_, (String, String, i64, String)>(sql)
        .fetch_all(h.store.pool())
        .await
        .unwrap()
        .into_iter()
        .map(|(s, l, q, e)| ((s, l, q as u64), e))
        .collect()
}

/// The number of distinct (event, SKU, location) among ledger entries: at most one stock
/// change each.
async fn store_count_pairs(h: &Harness) -> i64 {
    let sql =
        "SELECT COUNT(*) FROM (SELECT DISTINCT event_id, sku, location FROM ledger_entries) AS t";
    store::sqlx::query_scalar::<_, i64>(sql)
        .fetch_one(h.store.pool())
        .await
        .unwrap()
}
