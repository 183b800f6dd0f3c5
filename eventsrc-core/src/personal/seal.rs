//! Sealing and opening: AES-256-GCM over one field's JSON, and the envelope that replaces the
//! field in the stored payload.
//!
//! A sealed field is stored as `{"$personal": "<base64>", "subject": "<subject>"}`, the base64
//! holding the key's id (8 bytes, big-endian), a random nonce (12 bytes) and the ciphertext
//! with its tag. The associated data binds it to its tenant, stream, field and subject: a
//! sealed value moved anywhere else does not open.

use std::collections::HashMap;

use aes_gcm::aead::{Aead, Generate, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value};

use super::keys::SubjectKey;
use crate::registry::{PersonalRegistration, SEALED, may_hold_sealed};

/// The key of the envelope's subject.
pub(crate) const SUBJECT: &str = "subject";

const ID_LEN: usize = 8;
const NONCE_LEN: usize = 12;

/// The associated data of one sealed value: every part length-prefixed, so that no two
/// different sets of parts give the same bytes.
pub(crate) fn associated_data(parts: &[&str]) -> Vec<u8> {
    let mut aad = b"eventsrc.personal.v1".to_vec();
    for part in parts {
        aad.extend_from_slice(&(part.len() as u64).to_be_bytes());
        aad.extend_from_slice(part.as_bytes());
    }
    aad
}

/// A subject's key ready to use: its id and its cipher, whose key schedule is computed once
/// for all the fields of a batch.
pub(crate) struct Cipher {
    id: u64,
    cipher: Aes256Gcm,
}

impl Cipher {
    pub(crate) fn new(key: &SubjectKey) -> Self {
        Self {
            id: key.id(),
            cipher: Aes256Gcm::new(&(*key.secret()).into()),
        }
    }
}

/// The ciphers of some subjects, `None` for a forgotten one.
pub(crate) type Ciphers = HashMap<String, Option<Cipher>>;

/// `plaintext` sealed under `key`: the key's id, a fresh random nonce, the ciphertext.
pub(crate) fn seal(key: &Cipher, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let cipher = &key.cipher;
    let nonce = <[u8; NONCE_LEN]>::generate();
    let payload = Payload {
        msg: plaintext,
        aad,
    };
    // AES-GCM refuses only inputs longer than 64 GiB, far beyond any event.
    let ciphertext = cipher
        .encrypt(&Nonce::from(nonce), payload)
        .unwrap_or_default();
    let mut sealed = Vec::with_capacity(ID_LEN + NONCE_LEN + ciphertext.len());
    sealed.extend_from_slice(&key.id.to_be_bytes());
    sealed.extend_from_slice(&nonce);
    sealed.extend_from_slice(&ciphertext);
    sealed
}

/// Opens what [`seal`] made. `Ok(None)` when it was sealed under a key that is gone (no key,
/// or a key with another id: the one it was sealed under was forgotten); an error when the
/// bytes are malformed or do not authenticate (changed, or moved from elsewhere).
pub(crate) fn open(
    key: Option<&Cipher>,
    aad: &[u8],
    sealed: &[u8],
) -> Result<Option<Vec<u8>>, String> {
    if sealed.len() < ID_LEN + NONCE_LEN + 16 {
        return Err(format!(
            "the sealed value is {} bytes, shorter than a key id, a nonce and a tag",
            sealed.len()
        ));
    }
    // The lengths were checked: the conversions cannot fall back to zeros.
    let (id, rest) = sealed.split_at(ID_LEN);
    let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
    let id = u64::from_be_bytes(id.try_into().unwrap_or_default());
    let nonce = <[u8; NONCE_LEN]>::try_from(nonce).unwrap_or_default();
    let Some(key) = key.filter(|key| key.id == id) else {
        return Ok(None);
    };
    let payload = Payload {
        msg: ciphertext,
        aad,
    };
    key.cipher
        .decrypt(&Nonce::from(nonce), payload)
        .map(Some)
        .map_err(|_| {
            "the sealed value does not authenticate under its subject's key: it was changed, or moved from another event or field".to_owned()
        })
}

/// The subject an event's payload names in its subject field: a string, or a number's text.
/// `None` when the field is missing or `null`.
pub(crate) fn subject_of(
    registration: &PersonalRegistration,
    payload: &Map<String, Value>,
) -> Result<Option<String>, String> {
    match payload.get(registration.subject) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(subject)) => Ok(Some(subject.clone())),
        Some(Value::Number(number)) => Ok(Some(number.to_string())),
        Some(other) => Err(format!(
            "the subject field `{}` holds {other}; a subject is a string or a number",
            registration.subject
        )),
    }
}

/// The envelope of a sealed field, if `value` is one: its sealed bytes (still base64) and its
/// subject.
fn envelope(value: &Value) -> Option<(&str, &str)> {
    let object = value.as_object()?;
    let sealed = object.get(SEALED)?.as_str()?;
    let subject = object.get(SUBJECT)?.as_str()?;
    Some((sealed, subject))
}

/// `payload` parsed, if it holds a sealed field, with the subjects of its sealed fields added
/// to `subjects`. A payload that cannot hold one (the quick test before parsing) or is not a
/// JSON object (decoding reports it) is `None`.
pub(crate) fn sealed_payload(
    payload: &str,
    subjects: &mut Vec<String>,
) -> Option<Map<String, Value>> {
    if !may_hold_sealed(payload) {
        return None;
    }
    let payload: Map<String, Value> = serde_json::from_str(payload).ok()?;
    let mut any = false;
    for (_, subject) in payload.values().filter_map(envelope) {
        any = true;
        if !subjects.iter().any(|s| s == subject) {
            subjects.push(subject.to_owned());
        }
    }
    any.then_some(payload)
}

/// Replaces each personal field of `payload` (those not `null`) by its envelope.
pub(crate) fn seal_fields(
    registration: &PersonalRegistration,
    payload: &mut Map<String, Value>,
    key: &Cipher,
    subject: &str,
    scope: &[&str],
) -> Result<(), String> {
    for field in registration.fields {
        let Some(value) = payload.get_mut(*field) else {
            continue;
        };
        if value.is_null() {
            continue;
        }
        let plaintext = serde_json::to_vec(value).map_err(|e| e.to_string())?;
        let aad = associated_data(&[scope, &[field, subject]].concat());
        let sealed = BASE64.encode(seal(key, &aad, &plaintext));
        let mut envelope = Map::with_capacity(2);
        envelope.insert(SEALED.to_owned(), Value::String(sealed));
        envelope.insert(SUBJECT.to_owned(), Value::String(subject.to_owned()));
        *value = Value::Object(envelope);
    }
    Ok(())
}

/// Replaces each envelope of `payload` by the value it seals, or by `null` when its subject's
/// key is gone. `keys` holds every subject of the payload's envelopes.
pub(crate) fn open_fields(
    payload: &mut Map<String, Value>,
    keys: &Ciphers,
    scope: &[&str],
) -> Result<(), String> {
    for (field, value) in payload.iter_mut() {
        let Some((sealed, subject)) = envelope(value) else {
            continue;
        };
        let bytes = BASE64
            .decode(sealed)
            .map_err(|e| format!("personal field `{field}` is not base64: {e}"))?;
        let aad = associated_data(&[scope, &[field, subject]].concat());
        let key = keys.get(subject).and_then(Option::as_ref);
        let opened =
            open(key, &aad, &bytes).map_err(|e| format!("personal field `{field}`: {e}"))?;
        *value = match opened {
            Some(plaintext) => serde_json::from_slice(&plaintext)
                .map_err(|e| format!("personal field `{field}` opens to no JSON: {e}"))?,
            None => Value::Null,
        };
    }
    Ok(())
}

/// The base64 text of sealed bytes, and back: for sealed snapshots.
pub(crate) fn to_text(bytes: &[u8]) -> String {
    BASE64.encode(bytes)
}

pub(crate) fn from_text(text: &str) -> Result<Vec<u8>, String> {
    BASE64.decode(text).map_err(|e| format!("not base64: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_only_with_its_key_and_associated_data() {
        let key = Cipher::new(&SubjectKey::generate());
        let aad = associated_data(&["t", "cart-1", "name", "u-1"]);
        let sealed = seal(&key, &aad, b"\"Ada\"");
        assert_eq!(
            open(Some(&key), &aad, &sealed).unwrap(),
            Some(b"\"Ada\"".to_vec())
        );
        // Another key id: the key it was sealed under is gone.
        let other = Cipher::new(&SubjectKey::generate());
        assert_eq!(open(Some(&other), &aad, &sealed).unwrap(), None);
        assert_eq!(open(None, &aad, &sealed).unwrap(), None);
        // Moved to another field: does not authenticate.
        let moved = associated_data(&["t", "cart-1", "email", "u-1"]);
        assert!(open(Some(&key), &moved, &sealed).is_err());
        // A flipped bit: does not authenticate.
        let mut flipped = sealed.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(open(Some(&key), &aad, &flipped).is_err());
        assert!(open(Some(&key), &aad, &sealed[..10]).is_err());
        // The parts are length-prefixed: moving a byte between parts changes the data.
        assert_ne!(associated_data(&["ab", "c"]), associated_data(&["a", "bc"]));
    }
}
