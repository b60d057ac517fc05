//! Signal ids: name-based UUIDs (version 8, RFC 9562) whose 122 free bits are a 128-bit XXH3
//! hash of the signal's identity parts, held as their 36-byte hyphenated lower-case text
//! inline, so building, copying and dropping one never touches the heap (every record yields
//! about one signal; the id used to take two allocations, its name and its text).

use serde::{Serialize, Serializer};
use std::fmt;

/// One part of a signal's identity.
pub enum IdPart<'a> {
    Text(&'a str),
    Number(i64),
    None,
}

/// A signal's id: a UUID's hyphenated lower-case text (`8c3f...-....`), always 36 ASCII bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SignalId([u8; 36]);

impl SignalId {
    /// The id of the given UUID.
    pub fn from_uuid(uuid: uuid::Uuid) -> SignalId {
        let mut text = [0u8; 36];
        uuid.hyphenated().encode_lower(&mut text);
        SignalId(text)
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        // Only `from_uuid` builds one, and a UUID's hyphenated text is ASCII.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl std::ops::Deref for SignalId {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for SignalId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl fmt::Debug for SignalId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), formatter)
    }
}

impl Serialize for SignalId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// The hashed name of the parts: each part tagged and length-prefixed, so no choice of keys
/// can make two different part lists hash the same input. Built on the stack unless long.
fn hash_parts(parts: &[IdPart<'_>]) -> u128 {
    let length: usize = parts
        .iter()
        .map(|part| match part {
            IdPart::Text(text) => 5 + text.len(),
            IdPart::Number(_) => 9,
            IdPart::None => 1,
        })
        .sum();
    let mut stack = [0u8; 256];
    let mut heap = Vec::new();
    let name = if length <= stack.len() {
        &mut stack[..length]
    } else {
        heap.resize(length, 0);
        &mut heap[..]
    };
    let mut at = 0;
    for part in parts {
        match part {
            IdPart::Text(text) => {
                name[at] = b's';
                name[at + 1..at + 5].copy_from_slice(&(text.len() as u32).to_le_bytes());
                name[at + 5..at + 5 + text.len()].copy_from_slice(text.as_bytes());
                at += 5 + text.len();
            }
            IdPart::Number(number) => {
                name[at] = b'n';
                name[at + 1..at + 9].copy_from_slice(&number.to_le_bytes());
                at += 9;
            }
            IdPart::None => {
                name[at] = b'-';
                at += 1;
            }
        }
    }
    xxhash_rust::xxh3::xxh3_128(name)
}

/// Builds a deterministic id from identity parts.
pub fn signal_id(parts: &[IdPart<'_>]) -> SignalId {
    let hash = hash_parts(parts);
    SignalId::from_uuid(uuid::Builder::from_custom_bytes(hash.to_le_bytes()).into_uuid())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_deterministic_and_length_prefixed() {
        use IdPart::{None as Nothing, Number, Text};
        assert_eq!(
            signal_id(&[Text("a"), Text("b")]),
            signal_id(&[Text("a"), Text("b")])
        );
        assert_ne!(
            signal_id(&[Text("ab"), Text("c")]),
            signal_id(&[Text("a"), Text("bc")])
        );
        assert_ne!(
            signal_id(&[Text(""), Nothing]),
            signal_id(&[Nothing, Text("")])
        );
        assert_ne!(signal_id(&[Number(1)]), signal_id(&[Text("1")]));
        let id = signal_id(&[Text("x")]);
        let parsed = uuid::Uuid::parse_str(&id).unwrap();
        assert_eq!(parsed.get_version_num(), 8);
        // Exactly the `uuid` crate's hyphenated form.
        for n in 0..64 {
            let id = signal_id(&[Number(n)]);
            assert_eq!(
                id.as_str(),
                uuid::Uuid::parse_str(&id).unwrap().hyphenated().to_string()
            );
        }
    }

    #[test]
    fn ids_do_not_change() {
        // Ids are a contract: a signal re-derived after an upgrade must keep its id. These
        // were written by the String-building version this replaced.
        use IdPart::{None as Nothing, Number, Text};
        let id = signal_id(&[Text("order"), Text("o-1"), Number(5), Nothing]);
        assert_eq!(id.as_str(), "7f839088-49a8-8c2f-b178-37a11e6dd2a3");
    }

    #[test]
    fn long_names_hash_as_one_buffer() {
        // Past the stack buffer the name moves to the heap; the hash is of the same bytes.
        let long = "k".repeat(300);
        let parts = [IdPart::Text("flow"), IdPart::Text(&long), IdPart::Number(7)];
        let mut name = Vec::new();
        name.extend_from_slice(b"s");
        name.extend_from_slice(&4u32.to_le_bytes());
        name.extend_from_slice(b"flow");
        name.extend_from_slice(b"s");
        name.extend_from_slice(&300u32.to_le_bytes());
        name.extend_from_slice(long.as_bytes());
        name.extend_from_slice(b"n");
        name.extend_from_slice(&7i64.to_le_bytes());
        assert_eq!(hash_parts(&parts), xxhash_rust::xxh3::xxh3_128(&name));
        for cut in [0, 240, 250, 251, 252, 256] {
            let text = "x".repeat(cut);
            let parts = [IdPart::Text(&text), IdPart::Number(1)];
            let mut name = vec![b's'];
            name.extend_from_slice(&(cut as u32).to_le_bytes());
            name.extend_from_slice(text.as_bytes());
            name.push(b'n');
            name.extend_from_slice(&1i64.to_le_bytes());
            assert_eq!(hash_parts(&parts), xxhash_rust::xxh3::xxh3_128(&name), "{cut}");
        }
    }
}
