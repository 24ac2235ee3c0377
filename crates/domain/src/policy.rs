//! The stock policy: *when* a payment moves stock, chosen by the merchant
//! (`STOCKLEDGER_STOCK_POLICY`, `docs/trigger-matrix.md`, "Stock policy"), and the
//! reservation TTLs that bound how long a reservation may block stock.
//!
//! Both are values, never read from the environment here: the policy in force is part of
//! the [`crate::State`] (it changes only through a `policy.changed` event, so a replay or
//! a rebuild applies every event under the policy that was in force when it was accepted);
//! the TTLs are limits passed in by the caller.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::types::Provider;

/// When a payment moves stock.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum StockPolicy {
    /// Authorization reserves (`available → reserved`), capture sells the reservation
    /// (`reserved → sold`). The expensive failure it avoids is oversell.
    #[default]
    ReserveOnAuthorization,
    /// Authorization moves nothing; capture sells from `available`. Stock is never blocked
    /// by payments that do not finish, at the price of oversells caught at capture.
    DeductOnCapture,
    /// Authorization and capture move nothing; settlement sells from `available`.
    DeductOnSettlement,
}

impl StockPolicy {
    /// Every policy, in the order the docs list them.
    pub const ALL: [StockPolicy; 3] = [
        StockPolicy::ReserveOnAuthorization,
        StockPolicy::DeductOnCapture,
        StockPolicy::DeductOnSettlement,
    ];

    /// The policy's code, as configured and as recorded with outcomes.
    pub fn code(self) -> &'static str {
        match self {
            StockPolicy::ReserveOnAuthorization => "reserve_on_authorization",
            StockPolicy::DeductOnCapture => "deduct_on_capture",
            StockPolicy::DeductOnSettlement => "deduct_on_settlement",
        }
    }
}

impl fmt::Display for StockPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A policy text that is not one of [`StockPolicy::ALL`] or not a valid policy list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidPolicy(pub String);

impl FromStr for StockPolicy {
    type Err = InvalidPolicy;

    fn from_str(s: &str) -> Result<Self, InvalidPolicy> {
        StockPolicy::ALL
            .into_iter()
            .find(|p| p.code() == s.trim())
            .ok_or_else(|| {
                InvalidPolicy(format!(
                    "unknown stock policy {s:?}: expected one of reserve_on_authorization, \
                     deduct_on_capture, deduct_on_settlement"
                ))
            })
    }
}

/// The policy for every provider: one default and per-provider overrides.
///
/// Written as text (configuration, `stockctl policy set`, the `policy.changed` event) as a
/// comma-separated list: an item without `=` is the default, `provider=policy` overrides
/// one provider. `deduct_on_capture`, `stripe=deduct_on_capture,adyen=reserve_on_authorization`
/// and `deduct_on_capture,portone=reserve_on_authorization` are all valid; the default is
/// `reserve_on_authorization` when no item sets it. [`fmt::Display`] writes the canonical
/// form (default first, providers in name order, overrides equal to the default dropped),
/// so two equal sets always print the same text.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PolicySet {
    /// The policy of every provider without an override.
    pub default: StockPolicy,
    /// Per-provider overrides (never equal to `default`).
    pub providers: BTreeMap<Provider, StockPolicy>,
}

impl PolicySet {
    /// One policy for every provider.
    pub fn uniform(policy: StockPolicy) -> Self {
        PolicySet {
            default: policy,
            providers: BTreeMap::new(),
        }
    }

    /// The policy in force for events of `provider`.
    pub fn for_provider(&self, provider: &Provider) -> StockPolicy {
        self.providers
            .get(provider)
            .copied()
            .unwrap_or(self.default)
    }

    /// Drops overrides equal to the default, so equal sets compare equal.
    fn normalized(mut self) -> Self {
        let default = self.default;
        self.providers.retain(|_, p| *p != default);
        self
    }
}

impl FromStr for PolicySet {
    type Err = InvalidPolicy;

    fn from_str(s: &str) -> Result<Self, InvalidPolicy> {
        let mut default = None;
        let mut providers = BTreeMap::new();
        for item in s.split(',').map(str::trim) {
            if item.is_empty() {
                return Err(InvalidPolicy(format!(
                    "empty item in stock policy {s:?}: write e.g. \
                     \"deduct_on_capture\" or \"stripe=deduct_on_capture,adyen=reserve_on_authorization\""
                )));
            }
            match item.split_once('=') {
                None => {
                    if default.replace(item.parse::<StockPolicy>()?).is_some() {
                        return Err(InvalidPolicy(format!(
                            "stock policy {s:?} names the default policy twice"
                        )));
                    }
                }
                Some((provider, policy)) => {
                    let provider = Provider::parse(provider.trim())
                        .map_err(|e| InvalidPolicy(format!("stock policy {s:?}: {e}")))?;
                    let policy = policy.parse::<StockPolicy>()?;
                    if providers.insert(provider.clone(), policy).is_some() {
                        return Err(InvalidPolicy(format!(
                            "stock policy {s:?} names provider {provider} twice"
                        )));
                    }
                }
            }
        }
        Ok(PolicySet {
            default: default.unwrap_or_default(),
            providers,
        }
        .normalized())
    }
}

impl fmt::Display for PolicySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.default.code())?;
        for (provider, policy) in &self.providers {
            if *policy != self.default {
                write!(f, ",{provider}={policy}")?;
            }
        }
        Ok(())
    }
}

impl TryFrom<String> for PolicySet {
    type Error = InvalidPolicy;
    fn try_from(s: String) -> Result<Self, InvalidPolicy> {
        s.parse()
    }
}

impl From<PolicySet> for String {
    fn from(p: PolicySet) -> String {
        p.to_string()
    }
}

/// How long a reservation may block stock before the sweeper releases it: per provider,
/// and per (provider, payment method) where the provider's event names the method.
/// The most specific entry wins: (provider, method), then provider, then `default`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservationTtls {
    /// For providers (and methods) without an entry.
    pub default: Duration,
    /// Per provider.
    pub providers: BTreeMap<Provider, Duration>,
    /// Per (provider, payment method), the method as the provider names it.
    pub methods: BTreeMap<(Provider, String), Duration>,
}

impl ReservationTtls {
    /// One TTL for every reservation.
    pub fn uniform(ttl: Duration) -> Self {
        ReservationTtls {
            default: ttl,
            providers: BTreeMap::new(),
            methods: BTreeMap::new(),
        }
    }

    /// The providers' documented authorization windows (`docs/providers.md`, "How long a
    /// reservation holds"): a reservation blocks stock as long as the money can still be
    /// captured, and no longer.
    ///
    /// | provider | method | TTL | why |
    /// | --- | --- | --- | --- |
    /// | stripe | (card, online) | 7 days | Stripe cancels an uncaptured PaymentIntent after 7 days |
    /// | stripe | `card_present` | 2 days | in-person card authorizations (Mastercard, Amex, Discover) |
    /// | stripe | `klarna` | 28 days | Klarna payments must be captured within 28 days |
    /// | adyen | (cards) | 7 days | the schemes' customer-initiated online window |
    /// | adyen | `klarna`, `klarna_account`, `klarna_paynow` | 28 days | as above |
    /// | portone | | 1 day | PortOne approves within its 10-second confirmation call; a day lets its webhook retries arrive |
    /// | any other | | 7 days | the common card window |
    pub fn documented() -> Self {
        const DAY: u64 = 86_400;
        let days = |n: u64| Duration::from_secs(n * DAY);
        let mut ttls = ReservationTtls::uniform(days(7));
        let entries: [(&'static str, Option<&str>, Duration); 8] = [
            ("stripe", None, days(7)),
            ("stripe", Some("card_present"), days(2)),
            ("stripe", Some("klarna"), days(28)),
            ("adyen", None, days(7)),
            ("adyen", Some("klarna"), days(28)),
            ("adyen", Some("klarna_account"), days(28)),
            ("adyen", Some("klarna_paynow"), days(28)),
            ("portone", None, days(1)),
        ];
        for (provider, method, ttl) in entries {
            let provider = Provider::named(provider);
            match method {
                None => {
                    ttls.providers.insert(provider, ttl);
                }
                Some(m) => {
                    ttls.methods.insert((provider, m.to_owned()), ttl);
                }
            }
        }
        ttls
    }

    /// [`ReservationTtls::documented`], built once: for a [`crate::Context`] that lives
    /// anywhere (tools, tests).
    pub fn documented_ref() -> &'static ReservationTtls {
        static DOCUMENTED: std::sync::LazyLock<ReservationTtls> =
            std::sync::LazyLock::new(ReservationTtls::documented);
        &DOCUMENTED
    }

    /// The TTL of a reservation made by a payment of `provider` with `method`.
    pub fn ttl(&self, provider: &Provider, method: Option<&str>) -> Duration {
        method
            .and_then(|m| self.methods.get(&(provider.clone(), m.to_owned())))
            .or_else(|| self.providers.get(provider))
            .copied()
            .unwrap_or(self.default)
    }
}

impl Default for ReservationTtls {
    fn default() -> Self {
        ReservationTtls::documented()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Provider {
        Provider::parse(s).unwrap()
    }

    #[test]
    fn policy_lists_parse_and_print_canonically() {
        let set: PolicySet = "stripe=deduct_on_capture, adyen=reserve_on_authorization"
            .parse()
            .unwrap();
        assert_eq!(set.default, StockPolicy::ReserveOnAuthorization);
        assert_eq!(set.for_provider(&p("stripe")), StockPolicy::DeductOnCapture);
        assert_eq!(
            set.for_provider(&p("adyen")),
            StockPolicy::ReserveOnAuthorization
        );
        assert_eq!(
            set.to_string(),
            "reserve_on_authorization,stripe=deduct_on_capture"
        );
        assert_eq!(set.to_string().parse::<PolicySet>().unwrap(), set);
        let uniform: PolicySet = "deduct_on_settlement".parse().unwrap();
        assert_eq!(uniform, PolicySet::uniform(StockPolicy::DeductOnSettlement));
        for bad in [
            "",
            "sometimes",
            "stripe=never",
            "a,b",
            "deduct_on_capture,,x",
            "stripe=deduct_on_capture,stripe=deduct_on_capture",
        ] {
            assert!(bad.parse::<PolicySet>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_most_specific_ttl_wins() {
        let mut ttls = ReservationTtls::uniform(Duration::from_secs(60));
        ttls.providers.insert(p("stripe"), Duration::from_secs(120));
        ttls.methods
            .insert((p("stripe"), "klarna".to_owned()), Duration::from_secs(180));
        assert_eq!(ttls.ttl(&p("adyen"), None), Duration::from_secs(60));
        assert_eq!(
            ttls.ttl(&p("stripe"), Some("card")),
            Duration::from_secs(120)
        );
        assert_eq!(
            ttls.ttl(&p("stripe"), Some("klarna")),
            Duration::from_secs(180)
        );
    }

    #[test]
    fn documented_windows() {
        let ttls = ReservationTtls::documented();
        let day = Duration::from_secs(86_400);
        assert_eq!(ttls.ttl(&p("stripe"), Some("card")), 7 * day);
        assert_eq!(ttls.ttl(&p("stripe"), Some("card_present")), 2 * day);
        assert_eq!(ttls.ttl(&p("adyen"), Some("klarna_account")), 28 * day);
        assert_eq!(ttls.ttl(&p("adyen"), Some("visa")), 7 * day);
        assert_eq!(ttls.ttl(&p("portone"), None), day);
        assert_eq!(ttls.ttl(&p("merchant"), None), 7 * day);
    }
}
