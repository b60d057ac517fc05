//! Replay input in chunks of lines: a chunk is its bytes plus the records decoded from them,
//! which borrow those bytes (a `self_cell`), so a decoded chunk can move to another thread
//! without copying its records (see `pipeline`). Decoding also matches each record against
//! the flows (the engine's own correlation, run where the decoding runs), so the engine's
//! thread starts from the flow events a record is.

use super::decode::{decode_line, DecodeError};
use crate::engine::correlate::{Correlator, Match};
use crate::record::Record;
use std::io::BufRead;

/// A chunk ends after this many bytes (or at the end of the input), on a line boundary.
pub(super) const CHUNK_BYTES: usize = 128 * 1024;

/// Lines read from the input, before decoding.
pub(super) struct RawChunk {
    /// Whole lines, each with its `\n` (the input's last line may lack it).
    bytes: Vec<u8>,
    /// The 1-based number of the first line.
    first_line: u64,
}

/// A decoded record and the flow events it is.
pub(super) struct Decoded<'a> {
    pub(super) record: Record<'a>,
    /// Owned (keys copied) so that they need not borrow `record`; taken by the engine.
    pub(super) matches: Vec<Match<'static>>,
}

/// One line's outcome: its 1-based number and its record, or why it has none.
pub(super) type Line<'a> = (u64, Result<Decoded<'a>, DecodeError>);
/// The decoded lines of a chunk, blank lines left out.
pub(super) type Lines<'a> = Vec<Line<'a>>;

self_cell::self_cell!(
    /// A chunk's bytes and the records decoded from them, which borrow the bytes.
    pub(super) struct DecodedChunk {
        owner: Vec<u8>,
        #[covariant]
        dependent: Lines,
    }
);

/// Reads whole lines from `input` until the chunk is full or the input ends; `None` at the
/// end. A read error ends the input: the error is returned after the lines before it.
/// `next_line` moves past the lines read. The bytes are taken a buffer at a time and only the
/// chunk's last line is completed line-wise (reading line by line cost a search and a copy
/// per line).
pub(super) fn read_chunk(
    input: &mut dyn BufRead,
    next_line: &mut u64,
    error: &mut Option<std::io::Error>,
) -> Option<RawChunk> {
    let first_line = *next_line;
    let mut bytes = Vec::with_capacity(CHUNK_BYTES + 4096);
    while bytes.len() < CHUNK_BYTES {
        let available = match input.fill_buf() {
            Ok(available) => available,
            Err(read_error) if read_error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(read_error) => {
                *error = Some(read_error);
                break;
            }
        };
        if available.is_empty() {
            break;
        }
        let take = available.len().min(CHUNK_BYTES - bytes.len());
        bytes.extend_from_slice(&available[..take]);
        input.consume(take);
    }
    if error.is_none() && bytes.last().is_some_and(|&last| last != b'\n') {
        // `read_until` retries interrupted reads itself.
        if let Err(read_error) = input.read_until(b'\n', &mut bytes) {
            *error = Some(read_error);
        }
    }
    let unterminated = bytes.last().is_some_and(|&last| last != b'\n');
    *next_line += (memchr::memchr_iter(b'\n', &bytes).count() + usize::from(unterminated)) as u64;
    (!bytes.is_empty()).then_some(RawChunk { bytes, first_line })
}

/// Decodes and matches every line of a chunk; blank lines are skipped, a line that is not
/// UTF-8 is an error like any other undecodable line.
pub(super) fn decode_chunk(raw: RawChunk, correlator: &Correlator) -> DecodedChunk {
    DecodedChunk::new(raw.bytes, |bytes| {
        let mut lines = Vec::with_capacity(bytes.len() / 128);
        let mut start = 0;
        let ends = memchr::memchr_iter(b'\n', bytes).chain((bytes.last() != Some(&b'\n')).then_some(bytes.len()));
        for (index, end) in ends.enumerate() {
            let line = &bytes[start..end];
            start = end + 1;
            let number = raw.first_line + index as u64;
            match std::str::from_utf8(line) {
                Ok(text) => {
                    let text = text.trim();
                    if !text.is_empty() {
                        let decoded = decode_line(text, number).map(|record| {
                            let matches = correlator
                                .matches(&record)
                                .into_iter()
                                .map(Match::into_owned)
                                .collect();
                            Decoded { record, matches }
                        });
                        lines.push((number, decoded));
                    }
                }
                Err(error) => lines.push((number, Err(DecodeError::NotUtf8(error.valid_up_to())))),
            }
        }
        lines
    })
}
