//! [`KeyStore`]: where the data subjects' keys live, and [`MemoryKeyStore`].

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};

use aes_gcm::aead::Generate;

use crate::Tenant;

/// One data subject's key: 32 random bytes for AES-256-GCM, and a random id that the sealed
/// fields carry, so that a field sealed under a forgotten key reads as forgotten even after a
/// new key was made for the same subject.
///
/// `Debug` never prints the secret.
///
/// ```
/// use eventsrc::personal::SubjectKey;
///
/// let key = SubjectKey::generate();
/// let again = SubjectKey::from_parts(key.id(), *key.secret());
/// assert_eq!(key, again);
/// assert!(!format!("{key:?}").contains(&format!("{:?}", key.secret())));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct SubjectKey {
    id: u64,
    secret: [u8; 32],
}

impl SubjectKey {
    /// A new key from the operating system's random source.
    pub fn generate() -> Self {
        Self {
            id: u64::generate(),
            secret: <[u8; 32]>::generate(),
        }
    }

    /// A key read back from storage (for key store authors).
    pub fn from_parts(id: u64, secret: [u8; 32]) -> Self {
        Self { id, secret }
    }

    /// The key's id, stored beside it and in every field it seals.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The key's 32 secret bytes (for key store authors: store them, or wrap them with a KMS).
    pub fn secret(&self) -> &[u8; 32] {
        &self.secret
    }
}

impl fmt::Debug for SubjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubjectKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// What a key store can fail with.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A stored key cannot be read (a secret of the wrong length, ...).
    #[error("the key of data subject `{subject}` is unreadable: {reason}")]
    Corrupt {
        /// The subject.
        subject: String,
        /// What is wrong.
        reason: String,
    },
    /// The key store's backend failed (a connection lost, a KMS refusing); may be retried.
    #[error("key store failed: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl KeyError {
    /// Wraps a backend's own error.
    pub fn backend(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Backend(Box::new(error))
    }
}

/// The future a [`KeyStore`] method returns: boxed, so that a key store works as
/// `Arc<dyn KeyStore>` as well as a concrete type.
pub type KeyFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, KeyError>> + Send + 'a>>;

/// Keeps one key per (tenant, data subject), and forgets it on request: the whole of
/// crypto-shredding's state. [`Encrypted`](super::Encrypted) asks it for keys; deleting a key
/// is what makes a subject's personal data unreadable everywhere it was sealed.
///
/// Implementations: [`MemoryKeyStore`], `eventsrc::sqlite::SqliteKeyStore` and
/// `eventsrc::postgres::PgKeyStore` (their own table beside the store's). Keep the keys apart
/// from the events where you can: whoever reads both reads everything.
///
/// **A KMS.** To keep the keys under a key management service (AWS KMS, Google Cloud KMS,
/// Vault's transit engine), implement this trait with envelope encryption: keep the 32-byte
/// secrets in any key store of your own, wrapped (encrypted) by the KMS's key encryption
/// key, and unwrap on [`key`](Self::key) (caching the unwrapped key for a short while if the
/// KMS's latency matters). Forgetting deletes the wrapped secret: the KMS key alone cannot
/// bring it back. The trait is object safe, so the store can be chosen at run time
/// (`Arc<dyn KeyStore>`).
///
/// ```
/// use eventsrc::personal::{KeyFuture, KeyStore, MemoryKeyStore, SubjectKey};
/// use eventsrc::Tenant;
///
/// /// A key store that counts what it is asked, in front of another one.
/// #[derive(Debug, Default)]
/// struct Counted { inner: MemoryKeyStore, asked: std::sync::atomic::AtomicU64 }
///
/// impl KeyStore for Counted {
///     fn key<'a>(&'a self, tenant: &'a Tenant, subject: &'a str) -> KeyFuture<'a, Option<SubjectKey>> {
///         self.asked.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
///         self.inner.key(tenant, subject)
///     }
///     fn key_or_create<'a>(&'a self, tenant: &'a Tenant, subject: &'a str) -> KeyFuture<'a, SubjectKey> {
///         self.inner.key_or_create(tenant, subject)
///     }
///     fn forget<'a>(&'a self, tenant: &'a Tenant, subject: &'a str) -> KeyFuture<'a, bool> {
///         self.inner.forget(tenant, subject)
///     }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
/// let keys: std::sync::Arc<dyn KeyStore> = std::sync::Arc::new(Counted::default());
/// let tenant = Tenant::default();
/// let made = keys.key_or_create(&tenant, "user-7").await?;
/// assert_eq!(keys.key(&tenant, "user-7").await?, Some(made));
/// assert!(keys.forget(&tenant, "user-7").await?);
/// assert_eq!(keys.key(&tenant, "user-7").await?, None);
/// # Ok::<(), Box<dyn std::error::Error>>(()) })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait KeyStore: Send + Sync {
    /// The subject's key, `None` if it has none (never had one, or was forgotten).
    fn key<'a>(&'a self, tenant: &'a Tenant, subject: &'a str)
    -> KeyFuture<'a, Option<SubjectKey>>;

    /// The subject's key, made and stored first if it has none. Two callers racing for a new
    /// subject must get the same key. After [`forget`](Self::forget), this makes a new key
    /// (with a new id): what was sealed under the old one stays unreadable.
    fn key_or_create<'a>(
        &'a self,
        tenant: &'a Tenant,
        subject: &'a str,
    ) -> KeyFuture<'a, SubjectKey>;

    /// Deletes the subject's key for good; `false` if it had none. Implementations must make
    /// sure the secret's bytes are gone from their storage (not only unreachable).
    fn forget<'a>(&'a self, tenant: &'a Tenant, subject: &'a str) -> KeyFuture<'a, bool>;
}

macro_rules! key_store_through {
    ($pointer:ty) => {
        impl<K: KeyStore + ?Sized> KeyStore for $pointer {
            fn key<'a>(
                &'a self,
                tenant: &'a Tenant,
                subject: &'a str,
            ) -> KeyFuture<'a, Option<SubjectKey>> {
                (**self).key(tenant, subject)
            }

            fn key_or_create<'a>(
                &'a self,
                tenant: &'a Tenant,
                subject: &'a str,
            ) -> KeyFuture<'a, SubjectKey> {
                (**self).key_or_create(tenant, subject)
            }

            fn forget<'a>(&'a self, tenant: &'a Tenant, subject: &'a str) -> KeyFuture<'a, bool> {
                (**self).forget(tenant, subject)
            }
        }
    };
}

key_store_through!(&K);
key_store_through!(Arc<K>);
key_store_through!(Box<K>);

/// Keys in process memory: for tests and for the [`MemoryStore`](crate::MemoryStore). Gone
/// when the process ends, and so is everything sealed under them: pair it only with a store
/// that is gone too.
///
/// ```
/// use eventsrc::personal::{KeyStore, MemoryKeyStore};
/// use eventsrc::Tenant;
///
/// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
/// let keys = MemoryKeyStore::new();
/// let (acme, globex) = (Tenant::new("acme"), Tenant::new("globex"));
/// let key = keys.key_or_create(&acme, "user-7").await?;
/// assert_eq!(keys.key_or_create(&acme, "user-7").await?, key);
/// assert_eq!(keys.key(&globex, "user-7").await?, None);
/// # Ok::<(), Box<dyn std::error::Error>>(()) })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct MemoryKeyStore {
    keys: Arc<Mutex<HashMap<(Tenant, String), SubjectKey>>>,
}

impl MemoryKeyStore {
    /// An empty key store.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut HashMap<(Tenant, String), SubjectKey>) -> T) -> T {
        f(&mut self.keys.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl KeyStore for MemoryKeyStore {
    fn key<'a>(
        &'a self,
        tenant: &'a Tenant,
        subject: &'a str,
    ) -> KeyFuture<'a, Option<SubjectKey>> {
        let key = self.with(|keys| keys.get(&(tenant.clone(), subject.to_owned())).cloned());
        Box::pin(async move { Ok(key) })
    }

    fn key_or_create<'a>(
        &'a self,
        tenant: &'a Tenant,
        subject: &'a str,
    ) -> KeyFuture<'a, SubjectKey> {
        let key = self.with(|keys| {
            keys.entry((tenant.clone(), subject.to_owned()))
                .or_insert_with(SubjectKey::generate)
                .clone()
        });
        Box::pin(async move { Ok(key) })
    }

    fn forget<'a>(&'a self, tenant: &'a Tenant, subject: &'a str) -> KeyFuture<'a, bool> {
        let removed =
            self.with(|keys| keys.remove(&(tenant.clone(), subject.to_owned())).is_some());
        Box::pin(async move { Ok(removed) })
    }
}
