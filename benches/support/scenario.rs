//! The generated stream of the scenario kind shared by the benchmarks: order fulfilment with
//! key linking, retries, fraud checks, lost, duplicated and malformed records, and customer
//! onboarding with parallel checks; about 215 bytes per record, deterministic (same stream in
//! every run), in time order, as replay input lines (`{"topic":…,"timestamp":…,"value":{…}}`).

/// A small deterministic generator (SplitMix64), so every run sees the same stream.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

pub const BASE: i64 = 1_767_600_000_000; // 2026-01-05T08:00:00Z

pub fn iso(millis: i64) -> String {
    flowwatch::time::format_rfc3339(millis)
}

/// Appends the records of one order, in time order, to `out` as (time, line).
fn order(rng: &mut Rng, n: u64, start: i64, out: &mut Vec<(i64, String)>) {
    let id = format!("ord-{n:07}");
    let total = 50 + rng.below(5000);
    let mut time = start;
    let mut eid = n * 10;
    let mut event = |out: &mut Vec<(i64, String)>, time: i64, topic: &str, body: String| {
        eid += 1;
        let line = format!(
            r#"{{"topic":"{topic}","partition":{},"timestamp":"{}","value":{{"eventId":"ev-{eid}","occurredAt":"{}",{body}}}}}"#,
            n % 6,
            iso(time),
            iso(time)
        );
        out.push((time, line));
    };
    event(
        out,
        time,
        "orders",
        format!(
            r#""type":"OrderPlaced","orderId":"{id}","total":{total},"customer":{{"id":"c-{n}"}}"#
        ),
    );
    if rng.chance(3) {
        return; // lost: the instance stays open and breaches
    }
    time += 20_000 + rng.below(600_000) as i64;
    event(
        out,
        time,
        "inventory",
        format!(
            r#""type":"StockReservation","outcome":"reserved","order":{{"id":"{id}"}},"sku":"sku-1""#
        ),
    );
    let pay = format!("pay-{n}");
    time += 10_000 + rng.below(60_000) as i64;
    event(
        out,
        time,
        "payments",
        format!(
            r#""type":"PaymentRequested","orderId":"{id}","paymentId":"{pay}","amount":{total}"#
        ),
    );
    if total > 1000 {
        event(
            out,
            time + 30_000,
            "risk",
            format!(r#""kind":"FraudScreeningPassed","subject":{{"orderId":"{id}"}},"score":0.1"#),
        );
    }
    time += 10_000 + rng.below(1_200_000) as i64;
    event(
        out,
        time,
        "payments",
        format!(r#""type":"PaymentSucceeded","paymentId":"{pay}","amount":{total}"#),
    );
    if rng.chance(2) {
        let (last_time, last_line) = out.last().cloned().unwrap_or_default();
        out.push((last_time + 1000, last_line)); // re-delivered
    }
    time += 60_000 + rng.below(3_600_000) as i64;
    event(
        out,
        time,
        "shipping",
        format!(r#""type":"ShipmentDispatched","orderId":"{id}""#),
    );
}

fn customer(rng: &mut Rng, n: u64, start: i64, out: &mut Vec<(i64, String)>) {
    let id = format!("cust-{n:07}");
    let line = |time: i64, topic: &str, body: String| {
        (
            time,
            format!(
                r#"{{"topic":"{topic}","timestamp":"{}","value":{{"at":"{}","customerId":"{id}",{body}}}}}"#,
                iso(time),
                iso(time)
            ),
        )
    };
    out.push(line(
        start,
        "customer-events",
        format!(r#""eventType":"RegistrationRequested","address":{{"street":"{n} Main St"}}"#),
    ));
    let address = start + 60_000 + rng.below(1_200_000) as i64;
    out.push(line(
        address,
        "checks",
        r#""eventType":"AddressCheckCompleted","result":"ok""#.to_string(),
    ));
    let credit = start + 60_000 + rng.below(1_500_000) as i64;
    let approved = !rng.chance(5);
    out.push(line(
        credit,
        "checks",
        format!(r#""eventType":"CreditCheckCompleted","approved":{approved}"#),
    ));
    if approved {
        out.push(line(
            address.max(credit) + 60_000,
            "customer-events",
            r#""eventType":"CustomerActivated""#.to_string(),
        ));
    }
}

/// `records` lines of the stream in arrival order (time order), each with its time.
pub fn lines(records: usize) -> Vec<(i64, String)> {
    let mut rng = Rng(7);
    let mut lines: Vec<(i64, String)> = Vec::with_capacity(records + 16);
    let mut n = 0u64;
    while lines.len() < records {
        let start = BASE + (n as i64) * 1_500;
        if n % 5 == 4 {
            customer(&mut rng, n, start, &mut lines);
        } else {
            order(&mut rng, n, start, &mut lines);
        }
        if rng.chance(1) {
            lines.push((
                start,
                r#"{"topic":"orders","timestamp":"2026-01-05T08:00:00Z","value":"{not json"}"#
                    .into(),
            ));
        }
        if rng.chance(5) {
            lines.push((
                start,
                format!(
                    r#"{{"topic":"orders","timestamp":"{}","value":{{"type":"Heartbeat"}}}}"#,
                    iso(start)
                ),
            ));
        }
        n += 1;
    }
    lines.truncate(records);
    // Arrival order: by time (the sort is stable: re-deliveries stay after their original).
    lines.sort_by_key(|(time, _)| *time);
    lines
}
