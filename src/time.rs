//! Event time as integer milliseconds since the Unix epoch, and the two textual forms flowwatch
//! reads and writes: RFC 3339 timestamps and friendly durations (`250ms`, `15m`, `1h30m`, `2d`).
//!
//! All engine arithmetic is on [`Millis`]; only this module parses or formats time, so the
//! rest of the code never depends on a calendar library.

use std::str::FromStr;

/// Milliseconds since the Unix epoch (UTC), the unit of the event clock.
pub type Millis = i64;

/// Parses an RFC 3339 timestamp (`2026-01-05T08:00:12.296Z`, any offset) to epoch milliseconds.
/// The canonical UTC forms (`...:SSZ`, `...:SS.mmmZ`) take a direct path, since every record
/// carries one or two; anything else goes through jiff.
pub fn parse_rfc3339(text: &str) -> Option<Millis> {
    if let Some(millis) = parse_canonical_utc(text.as_bytes()) {
        return Some(millis);
    }
    let timestamp = jiff::Timestamp::from_str(text).ok()?;
    Some(timestamp.as_millisecond())
}

/// `YYYY-MM-DDTHH:MM:SSZ` or `YYYY-MM-DDTHH:MM:SS.mmmZ` with valid fields; `None` otherwise
/// (the caller then asks jiff, which also handles offsets, other precisions and errors).
fn parse_canonical_utc(bytes: &[u8]) -> Option<Millis> {
    let millis = match bytes.len() {
        20 => 0,
        24 if bytes[19] == b'.' => digits(&bytes[20..23])?,
        _ => return None,
    };
    let separators = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    if *bytes.last()? != b'Z' || separators.iter().any(|&(at, byte)| bytes[at] != byte) {
        return None;
    }
    let (year, month, day) = (
        digits(&bytes[0..4])?,
        digits(&bytes[5..7])?,
        digits(&bytes[8..10])?,
    );
    let (hour, minute, second) = (
        digits(&bytes[11..13])?,
        digits(&bytes[14..16])?,
        digits(&bytes[17..19])?,
    );
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&month) || day < 1 || day > month_days[(month - 1) as usize] {
        return None;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let shifted_year = if month <= 2 { year - 1 } else { year };
    let era = shifted_year.div_euclid(400);
    let year_of_era = shifted_year - era * 400;
    let month_index = if month > 2 { month - 3 } else { month + 9 };
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    Some(((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + millis)
}

fn digits(bytes: &[u8]) -> Option<i64> {
    bytes.iter().try_fold(0i64, |value, &byte| {
        byte.is_ascii_digit()
            .then(|| value * 10 + i64::from(byte - b'0'))
    })
}

/// Reads a JSON value as an event time: an RFC 3339 string or an integer of epoch milliseconds.
pub fn from_json(value: &serde_json::Value) -> Option<Millis> {
    match value {
        serde_json::Value::String(text) => parse_rfc3339(text),
        serde_json::Value::Number(number) => number.as_i64(),
        _ => None,
    }
}

/// Formats epoch milliseconds as RFC 3339 UTC with millisecond precision
/// (`2026-01-05T08:00:12.296Z`). Every signal carries one, so this is a direct conversion
/// (days to civil date, Howard Hinnant's algorithm) rather than a trip through `fmt`;
/// times outside years 0000-9999 fall back to jiff, or to the bare number beyond its range.
pub fn format_rfc3339(millis: Millis) -> String {
    let mut text = Vec::with_capacity(24);
    write_rfc3339(&mut text, millis);
    // Only ASCII digits and separators were written, or jiff's or the number's text.
    String::from_utf8(text).unwrap_or_default()
}

/// Appends [`format_rfc3339`]'s text to `buffer` without allocating (signals are written
/// straight into the output buffer).
pub fn write_rfc3339(buffer: &mut Vec<u8>, millis: Millis) {
    const MIN: Millis = -62_167_219_200_000; // 0000-01-01T00:00:00Z
    const MAX: Millis = 253_402_300_799_999; // 9999-12-31T23:59:59.999Z
    if !(MIN..=MAX).contains(&millis) {
        let text = match jiff::Timestamp::from_millisecond(millis) {
            Ok(timestamp) => format!("{timestamp:.3}"),
            Err(_) => millis.to_string(),
        };
        buffer.extend_from_slice(text.as_bytes());
        return;
    }
    let days = millis.div_euclid(86_400_000);
    let of_day = millis.rem_euclid(86_400_000);
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    // Fixed layout `YYYY-MM-DDTHH:MM:SS.mmmZ`, digits written two at a time from a table.
    const PAIRS: [u8; 200] = {
        let mut table = [0u8; 200];
        let mut pair = 0;
        while pair < 100 {
            table[2 * pair] = b'0' + (pair / 10) as u8;
            table[2 * pair + 1] = b'0' + (pair % 10) as u8;
            pair += 1;
        }
        table
    };
    let mut text = *b"0000-00-00T00:00:00.000Z";
    let mut put = |at: usize, value: i64| {
        let index = value as usize * 2;
        text[at..at + 2].copy_from_slice(&PAIRS[index..index + 2]);
    };
    put(0, year / 100);
    put(2, year % 100);
    put(5, month);
    put(8, day);
    put(11, of_day / 3_600_000);
    put(14, of_day / 60_000 % 60);
    put(17, of_day / 1000 % 60);
    put(21, of_day % 100);
    text[20] = b'0' + (of_day % 1000 / 100) as u8;
    buffer.extend_from_slice(&text);
}

/// Parses a friendly duration to milliseconds. Units from `ms` to `d` (a day is 24 hours),
/// several units may be combined (`1h30m`). Negative, zero-unit (`15`) and fractional-day
/// inputs are refused with a message that says what is expected.
pub fn parse_duration(text: &str) -> Result<Millis, String> {
    let trimmed = text.trim();
    let expected =
        "expected a positive duration with units such as 250ms, 30s, 15m, 4h, 2d or 1h30m";
    if trimmed.is_empty() {
        return Err(format!("empty duration: {expected}"));
    }
    if trimmed.starts_with('-') || trimmed.ends_with("ago") {
        return Err(format!("negative duration {trimmed:?}: {expected}"));
    }
    if trimmed
        .bytes()
        .all(|byte| byte.is_ascii_digit() || byte == b'.')
    {
        return Err(format!("duration {trimmed:?} has no unit: {expected}"));
    }
    let span = jiff::Span::from_str(trimmed)
        .map_err(|_| format!("bad duration {trimmed:?}: {expected}"))?;
    if span.get_years() != 0 || span.get_months() != 0 || span.get_weeks() != 0 {
        return Err(format!(
            "duration {trimmed:?} uses calendar units: {expected}"
        ));
    }
    let total = span
        .total((
            jiff::Unit::Millisecond,
            jiff::SpanRelativeTo::days_are_24_hours(),
        ))
        .map_err(|_| format!("bad duration {trimmed:?}: {expected}"))?;
    if total < 0.0 {
        return Err(format!("negative duration {trimmed:?}: {expected}"));
    }
    Ok(total.round() as Millis)
}

/// Formats milliseconds as the shortest friendly duration (`1h30m`, `250ms`).
pub fn format_duration(mut millis: Millis) -> String {
    if millis == 0 {
        return "0s".to_string();
    }
    let mut text = String::new();
    if millis < 0 {
        text.push('-');
        millis = -millis;
    }
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
    ] {
        if millis >= size {
            text.push_str(&format!("{}{unit}", millis / size));
            millis %= size;
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_from_the_spec() {
        assert_eq!(parse_duration("250ms"), Ok(250));
        assert_eq!(parse_duration("30s"), Ok(30_000));
        assert_eq!(parse_duration("15m"), Ok(900_000));
        assert_eq!(parse_duration("4h"), Ok(14_400_000));
        assert_eq!(parse_duration("2d"), Ok(172_800_000));
        assert_eq!(parse_duration("1h30m"), Ok(5_400_000));
        assert!(parse_duration("-5m").is_err());
        assert!(parse_duration("15").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("5 minutes ago").is_err());
    }

    #[test]
    fn fast_formatting_agrees_with_jiff() {
        let mut millis: i64 = -62_167_219_200_000;
        while millis < 253_402_207_200_000 {
            let expected = format!("{:.3}", jiff::Timestamp::from_millisecond(millis).unwrap());
            assert_eq!(format_rfc3339(millis), expected, "{millis}");
            millis += 86_399_999 * 17 + 12_345;
        }
        for millis in [
            0,
            -1,
            951_782_400_000,
            1_767_225_599_999,
            253_402_207_199_999,
        ] {
            let expected = format!("{:.3}", jiff::Timestamp::from_millisecond(millis).unwrap());
            assert_eq!(format_rfc3339(millis), expected, "{millis}");
        }
        assert_eq!(format_rfc3339(i64::MAX), i64::MAX.to_string());
    }

    #[test]
    fn fast_parsing_agrees_with_jiff() {
        let mut millis: i64 = -62_167_219_200_000;
        while millis < 253_402_207_200_000 {
            let text = format_rfc3339(millis);
            assert_eq!(parse_canonical_utc(text.as_bytes()), Some(millis), "{text}");
            let whole_seconds = format!("{}Z", &text[..19]);
            let expected = jiff::Timestamp::from_str(&whole_seconds)
                .unwrap()
                .as_millisecond();
            assert_eq!(
                parse_rfc3339(&whole_seconds),
                Some(expected),
                "{whole_seconds}"
            );
            millis += 86_399_999 * 13 + 7_777;
        }
        for bad in [
            "2026-02-29T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-01-01T24:00:00Z",
            "2026-01-01 00:00:00Z",
            "2026-01-01T00:00:0xZ",
            "2026-04-31T00:00:00.000Z",
        ] {
            assert_eq!(parse_canonical_utc(bad.as_bytes()), None, "{bad}");
            assert_eq!(
                parse_rfc3339(bad),
                jiff::Timestamp::from_str(bad)
                    .ok()
                    .map(|t| t.as_millisecond()),
                "{bad}"
            );
        }
        assert_eq!(
            parse_rfc3339("2024-02-29T12:00:00.5+01:00"),
            Some(1_709_204_400_500)
        );
    }

    #[test]
    fn timestamps_round_trip() {
        let millis = parse_rfc3339("2026-01-05T08:00:12.296Z").unwrap();
        assert_eq!(format_rfc3339(millis), "2026-01-05T08:00:12.296Z");
        assert_eq!(parse_rfc3339("2026-01-05T09:00:12.296+01:00"), Some(millis));
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(from_json(&serde_json::json!(1000)), Some(1000));
        assert_eq!(from_json(&serde_json::json!("yesterday")), None);
        assert_eq!(format_duration(5_400_000), "1h30m");
    }
}
