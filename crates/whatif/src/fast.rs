//! The hash of the runs' maps. Their keys are the ledger's own identifiers (SKU and
//! location, order reference, event id), never chosen against this process, so a fast
//! non-cryptographic hash (foldhash, with a fixed seed: runs are reproducible) replaces the
//! standard library's SipHash, which costs more than the rest of a lookup for short strings.

use std::collections::{HashMap, HashSet};

/// A `HashMap` with foldhash.
pub(crate) type FastMap<K, V> = HashMap<K, V, foldhash::fast::FixedState>;

/// A `HashSet` with foldhash.
pub(crate) type FastSet<T> = HashSet<T, foldhash::fast::FixedState>;
