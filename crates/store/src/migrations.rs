//! The migrations of each backend, assembled from two folders (`migrations/README.md`):
//! `migrations/common` holds the files whose SQL is the same on SQLite and PostgreSQL,
//! `migrations/sqlite` and `migrations/postgres` only the files whose SQL differs. Each
//! backend's [`Migrator`] is the union of the common files and its own, in version order.
//!
//! Released files never change: sqlx records each migration's version, description and
//! checksum in `_sqlx_migrations` and refuses a database whose applied migrations no longer
//! match. The test below pins that list to what the two separate folders of earlier
//! releases produced, so moving a file between folders can never change it.

use sqlx::migrate::Migrator;

use crate::Backend;

/// The migrator of `backend`: the common migrations followed by the backend's own.
pub(crate) fn migrator(backend: Backend) -> Migrator {
    // `migrate!` embeds each folder at compile time (`build.rs` reruns on changes); the
    // folders are joined here because sqlx reads exactly one folder per `migrate!`.
    let common = sqlx::migrate!("./migrations/common");
    let own = match backend {
        Backend::Sqlite => sqlx::migrate!("./migrations/sqlite"),
        Backend::Postgres => sqlx::migrate!("./migrations/postgres"),
    };
    // `with_migrations` sorts by version and keeps sqlx's defaults (locking, one
    // transaction per migration, the `_sqlx_migrations` table), as `migrate!` does. The
    // checksums are the embedded ones, copied, not recomputed.
    Migrator::with_migrations(common.iter().chain(own.iter()).cloned().collect())
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;

    use sqlx::migrate::MigrationType;

    use super::*;

    /// `(version, description, SHA-384 checksum)` of every migration as released, recorded
    /// from `sqlx::migrate!` of the per-backend folders before the common files moved to
    /// `migrations/common`. An already-migrated database validates against exactly this.
    const COMMON: &[(i64, &str, &str)] = &[
        (
            1,
            "ledger",
            "ea881109bc127871cccfcdaff15259e49c2d315ecf4a7fe059d1cdfc131a2590a4c2ceb259d61a3d0d4a4c8e95bb4d52",
        ),
        (
            2,
            "exception queue",
            "b74b7eb2b276698fbf388981246904dbb50bc07ea9c3cd05ac17760ea50d6fbbc21d04d4f90284cc0838a95b9275b22d",
        ),
        (
            3,
            "stock outbox",
            "afac6917b50f7996c9362d4e4ae31a1e005a45c7b269905eac438e909da3f1b9c1670dc1e57b83b280292ec4a070b46b",
        ),
        (
            4,
            "stream positions",
            "68a92282caf0aeece0b16af82b40d202074409e0ba33e9ccabaae6a6700f36e344af231f4c6c25a9d449ff4d30aebae0",
        ),
    ];
    /// Common migrations numbered after the backends' own 0005.
    const COMMON_AFTER_OWN: &[(i64, &str, &str)] = &[(
        6,
        "exception sku location",
        "92eb370e1f3b26087a32f9eb16ca05409e5feb9075e8e361607972a80afe29f47ccee441979bd9b5e8f1e5b6430effc0",
    )];
    const SQLITE_OWN: &[(i64, &str, &str)] = &[(
        5,
        "operator actions as events",
        "5496bc1503eab73fb067f04bd0f2aa22504a83d837dfd6f51d02b14c687796fa0f7504496dc741dbc09a730e215c69e4",
    )];
    const POSTGRES_OWN: &[(i64, &str, &str)] = &[(
        5,
        "operator actions as events",
        "d3b4c6604b3bef7a786ccaa069f54fd6b5a3e6c5b4f98b78df761ab33b9a7f00948fbfd24f40b336184488840ae84a84",
    )];

    fn listed(m: &Migrator) -> Vec<(i64, String, String)> {
        m.iter()
            .map(|m| {
                // Every released migration is a plain up migration run in a transaction.
                assert_eq!(m.migration_type, MigrationType::Simple, "{}", m.version);
                assert!(!m.no_tx, "{}", m.version);
                let mut hex = String::new();
                for b in m.checksum.iter() {
                    let _ = write!(hex, "{b:02x}");
                }
                (m.version, m.description.to_string(), hex)
            })
            .collect()
    }

    /// The backends' own migrations numbered after the common 0006.
    const SQLITE_OWN_AFTER: &[(i64, &str, &str)] = &[(
        7,
        "reconciliation",
        "232a91e217db3e15fecae291b687a59e6587ec23fffe89e843b2088c1e4ede00f7a2aeeeeb841d9893192247e1808998",
    )];
    const POSTGRES_OWN_AFTER: &[(i64, &str, &str)] = &[(
        7,
        "reconciliation",
        "2e53fb9d1a3bcc0ee773f2e458b19ddb2c538b4666e2bc04b8240649f82990d55da08b34adec7a77033bd1a56065dd57",
    )];

    /// Common migrations numbered after the backends' own 0007.
    const COMMON_AFTER_OWN_AFTER: &[(i64, &str, &str)] = &[
        (
            8,
            "stock policy",
            "82fd4bdc60abae607df0665c1b755b36a135910d2af77278a19f57e8faa618a63d00a7313010a48a3d5173183767957d",
        ),
        (
            9,
            "reservation deadline",
            "b2e9a253339921c3b2b959bd1d492b634cac9cc63ac259659a5218b0ce1673e518bf8c282bdc46129442fbae5cf01347",
        ),
    ];

    fn expected(
        own: &[(i64, &str, &str)],
        own_after: &[(i64, &str, &str)],
    ) -> Vec<(i64, String, String)> {
        COMMON
            .iter()
            .chain(own)
            .chain(COMMON_AFTER_OWN)
            .chain(own_after)
            .chain(COMMON_AFTER_OWN_AFTER)
            .map(|(v, d, c)| (*v, (*d).to_owned(), (*c).to_owned()))
            .collect()
    }

    #[test]
    fn each_backend_keeps_the_released_versions_descriptions_and_checksums() {
        assert_eq!(
            listed(&migrator(Backend::Sqlite)),
            expected(SQLITE_OWN, SQLITE_OWN_AFTER)
        );
        assert_eq!(
            listed(&migrator(Backend::Postgres)),
            expected(POSTGRES_OWN, POSTGRES_OWN_AFTER)
        );
    }
}
