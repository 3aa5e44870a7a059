//! The catalog index this gateway last accepted, and the rollback rule that guards replacing it.
//!
//! Rollback protection (the original has none): the stored index's `generated` time and SHA-256 are the
//! high-water mark. [`Store::catalog_accept`] refuses an index generated earlier, or at the same time with
//! other bytes, in the same transaction as the write, so two fetches racing cannot step back either. The mark
//! lives in the database and so survives restarts.

use rusqlite::OptionalExtension;
use thiserror::Error;

use crate::{Store, StoreError, now};

#[derive(Debug, Clone)]
pub struct StoredIndex {
    pub raw: Vec<u8>,
    pub signature: String,
    /// The key (hex) the signature was checked with when the index was accepted.
    pub public_key: String,
    /// Unix seconds.
    pub generated: i64,
    pub sha256: String,
    /// Where it was fetched from.
    pub source: String,
    pub accepted_at: i64,
}

/// An index to accept: its bytes, already verified against the configured key and parsed.
pub struct NewIndex<'a> {
    pub raw: &'a [u8],
    pub signature: &'a str,
    pub public_key: &'a str,
    pub generated: i64,
    pub sha256: &'a str,
    pub source: &'a str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// A newer index replaced the stored one (or there was none).
    Replaced,
    /// The same bytes as the stored index.
    Unchanged,
}

#[derive(Debug, Error)]
pub enum CatalogStoreError {
    #[error(
        "refused a rollback: the index was generated at {offered} (Unix time), before the one already accepted \
         ({accepted})"
    )]
    Older { offered: i64, accepted: i64 },
    #[error(
        "refused a rollback: the index has the generated time of the one already accepted ({generated}, Unix \
         time) but other bytes"
    )]
    SameTimeOtherBytes { generated: i64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for CatalogStoreError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Store(e.into())
    }
}

impl Store {
    pub fn catalog_index(&self) -> Result<Option<StoredIndex>, StoreError> {
        Ok(self
            .lock()
            .query_row(
                "SELECT raw, signature, public_key, generated, sha256, source, accepted_at FROM catalog_index
                 WHERE id = 1",
                [],
                |r| {
                    Ok(StoredIndex {
                        raw: r.get(0)?,
                        signature: r.get(1)?,
                        public_key: r.get(2)?,
                        generated: r.get(3)?,
                        sha256: r.get(4)?,
                        source: r.get(5)?,
                        accepted_at: r.get(6)?,
                    })
                },
            )
            .optional()?)
    }

    /// The accepted index's SHA-256 and source, without its bytes: what a reader checks its parsed copy against.
    pub fn catalog_index_head(&self) -> Result<Option<(String, String)>, StoreError> {
        Ok(self
            .lock()
            .query_row("SELECT sha256, source FROM catalog_index WHERE id = 1", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?)
    }

    /// Stores `index` unless that would step back from the one accepted before (see the module's doc).
    pub fn catalog_accept(&self, index: &NewIndex<'_>) -> Result<Accepted, CatalogStoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let current: Option<(i64, String)> = tx
            .query_row("SELECT generated, sha256 FROM catalog_index WHERE id = 1", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        if let Some((accepted, sha256)) = current {
            if index.generated < accepted {
                return Err(CatalogStoreError::Older {
                    offered: index.generated,
                    accepted,
                });
            }
            if index.generated == accepted {
                return if sha256 == index.sha256 {
                    Ok(Accepted::Unchanged)
                } else {
                    Err(CatalogStoreError::SameTimeOtherBytes { generated: accepted })
                };
            }
        }
        tx.execute(
            "INSERT INTO catalog_index (id, raw, signature, public_key, generated, sha256, source, accepted_at)
             VALUES (1, ?1, ?2, ?7, ?3, ?4, ?5, ?6)
             ON CONFLICT (id) DO UPDATE SET raw = ?1, signature = ?2, public_key = ?7, generated = ?3,
                 sha256 = ?4, source = ?5, accepted_at = ?6",
            rusqlite::params![
                index.raw,
                index.signature,
                index.generated,
                index.sha256,
                index.source,
                now(),
                index.public_key
            ],
        )?;
        tx.commit()?;
        Ok(Accepted::Replaced)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(generated: i64, sha256: &str) -> NewIndex<'_> {
        NewIndex {
            raw: sha256.as_bytes(),
            signature: "sig",
            public_key: "key",
            generated,
            sha256,
            source: "file:///index.json",
        }
    }

    #[test]
    fn an_older_index_or_other_bytes_at_the_same_time_are_refused() {
        let (_dir, store) = crate::test_store();
        assert_eq!(store.catalog_accept(&offer(100, "a")).unwrap(), Accepted::Replaced);
        assert_eq!(store.catalog_accept(&offer(100, "a")).unwrap(), Accepted::Unchanged);
        assert!(matches!(
            store.catalog_accept(&offer(99, "b")),
            Err(CatalogStoreError::Older {
                offered: 99,
                accepted: 100
            })
        ));
        assert!(matches!(
            store.catalog_accept(&offer(100, "b")),
            Err(CatalogStoreError::SameTimeOtherBytes { generated: 100 })
        ));
        assert_eq!(
            store.catalog_index().unwrap().unwrap().sha256,
            "a",
            "refusals change nothing"
        );
        assert_eq!(store.catalog_accept(&offer(101, "c")).unwrap(), Accepted::Replaced);
        assert_eq!(store.catalog_index().unwrap().unwrap().raw, b"c");
    }
}
