//! Signal ids: name-based UUIDs (version 8, RFC 9562) whose 122 free bits are a 128-bit XXH3
//! hash of the signal's identity parts. A `SignalId` holds the UUID as a `u128`, so building,
//! copying and dropping one never touches the heap (every record yields about one signal; the
//! id used to take two allocations, its name and its text), and its 36-byte hyphenated
//! lower-case text is written only where the signal is written: in a replay, on the writing
//! thread rather than the engine's.

use serde::{Serialize, Serializer};
use std::fmt;

/// One part of a signal's identity.
pub enum IdPart<'a> {
    Text(&'a str),
    Number(i64),
    None,
}

/// A signal's id: a UUID, shown as its hyphenated lower-case text (`8c3f...-....`). Ordered
/// as its text is (the UUID's bytes big-endian).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SignalId(u128);

impl SignalId {
    /// The id of the given UUID.
    pub fn from_uuid(uuid: uuid::Uuid) -> SignalId {
        SignalId(uuid.as_u128())
    }

    /// The id's text: 36 ASCII bytes, never in need of JSON escaping.
    pub fn text(&self) -> IdText {
        // Each nibble into its own byte (most significant first once big-endian), then to
        // its hex digit, all sixteen bytes of a half at once: a digit above 9 gets the
        // distance from `'9' + 1` to `'a'` added.
        fn spread(half: u64) -> u128 {
            let mut x = u128::from(half);
            x = (x | (x << 32)) & 0x0000_0000_ffff_ffff_0000_0000_ffff_ffff;
            x = (x | (x << 16)) & 0x0000_ffff_0000_ffff_0000_ffff_0000_ffff;
            x = (x | (x << 8)) & 0x00ff_00ff_00ff_00ff_00ff_00ff_00ff_00ff;
            x = (x | (x << 4)) & 0x0f0f_0f0f_0f0f_0f0f_0f0f_0f0f_0f0f_0f0f;
            let ones = 0x0101_0101_0101_0101_0101_0101_0101_0101u128;
            let above_nine = ((x + ones * 6) >> 4) & ones;
            x + ones * u128::from(b'0') + above_nine * u128::from(b'a' - b'9' - 1)
        }
        let high = spread((self.0 >> 64) as u64).to_be_bytes();
        let low = spread(self.0 as u64).to_be_bytes();
        let mut text = [b'-'; 36];
        text[0..8].copy_from_slice(&high[0..8]);
        text[9..13].copy_from_slice(&high[8..12]);
        text[14..18].copy_from_slice(&high[12..16]);
        text[19..23].copy_from_slice(&low[0..4]);
        text[24..36].copy_from_slice(&low[4..16]);
        IdText(text)
    }
}

/// A signal id's text, on the stack.
#[derive(Clone, Copy)]
pub struct IdText([u8; 36]);

impl IdText {
    /// The text's bytes (ASCII).
    pub fn as_bytes(&self) -> &[u8; 36] {
        &self.0
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        // Only `SignalId::text` builds one, from hex digits and hyphens.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl std::ops::Deref for IdText {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for SignalId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.text())
    }
}

impl fmt::Debug for SignalId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.text(), formatter)
    }
}

impl Serialize for SignalId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text())
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
        let parsed = uuid::Uuid::parse_str(&id.text()).unwrap();
        assert_eq!(parsed.get_version_num(), 8);
        // Exactly the `uuid` crate's hyphenated form.
        for n in 0..64 {
            let id = signal_id(&[Number(n)]);
            assert_eq!(
                id.to_string(),
                uuid::Uuid::parse_str(&id.text()).unwrap().hyphenated().to_string()
            );
        }
        // Every digit in every position, and the text's order is the id's.
        let mut ids = Vec::new();
        for digit in 0..16u128 {
            for shift in 0..32 {
                let uuid = uuid::Uuid::from_u128(digit << (4 * shift) | (15 - digit));
                let id = SignalId::from_uuid(uuid);
                assert_eq!(&*id.text(), uuid.hyphenated().to_string());
                ids.push(id);
            }
        }
        ids.sort();
        let texts: Vec<String> = ids.iter().map(SignalId::to_string).collect();
        let mut sorted = texts.clone();
        sorted.sort();
        assert_eq!(texts, sorted);
    }

    #[test]
    fn ids_do_not_change() {
        // Ids are a contract: a signal re-derived after an upgrade must keep its id. These
        // were written by the String-building version this replaced.
        use IdPart::{None as Nothing, Number, Text};
        let id = signal_id(&[Text("order"), Text("o-1"), Number(5), Nothing]);
        assert_eq!(id.to_string(), "7f839088-49a8-8c2f-b178-37a11e6dd2a3");
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
