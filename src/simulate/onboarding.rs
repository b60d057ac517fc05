//! The customer-onboarding choreography (`flows/customer-onboarding.yaml`): registration, an
//! address check and a credit check in parallel, then activation. The flow has no `id` path,
//! so de-duplication uses the CloudEvents `ce_id` header every simulated record carries.

use super::script::{EventSpec, ScriptBuilder, Service};
use super::{between, chance, Shape, Writer};
use crate::time::Millis;
use serde_json::json;

const SECOND: Millis = 1000;
const MINUTE: Millis = 60 * SECOND;

const STREETS: [&str; 6] = [
    "1 Main St",
    "22 Harbour Rd",
    "5 Mill Lane",
    "310 Oak Ave",
    "9 Station Sq",
    "48 Elm St",
];
const CITIES: [&str; 4] = ["Springfield", "Rivertown", "Lakeside", "Hillview"];

/// Writes the script of customer `number`, registering at `t0`.
pub(super) fn script(
    writer: &mut Writer<'_>,
    number: u64,
    t0: Millis,
    shape: Shape,
) -> ScriptBuilder {
    let customer_id = format!("cust-{}-{number:06}", writer.tag);
    let tight = shape == Shape::OutOfOrder;
    let declined = shape == Shape::Declined;
    // A declined onboarding is usually the credit check, sometimes the address.
    let address_rejected = declined && chance(writer.rng, 0.3);
    let credit_declined = declined && !address_rejected;
    let mut script = ScriptBuilder::default();
    let street = STREETS[between(writer.rng, 0, STREETS.len() as i64 - 1) as usize];
    let city = CITIES[between(writer.rng, 0, CITIES.len() as i64 - 1) as usize];
    let registered = script.push(EventSpec {
        topic: "customer-events",
        key: Some(customer_id.clone()),
        at: t0,
        event_id: writer.event_id(),
        ce_type: "com.example.customers.RegistrationRequested",
        service: Service::Registration,
        value: json!({
            "eventType": "RegistrationRequested",
            "customerId": customer_id,
            "email": format!("{customer_id}@example.com"),
            "address": { "street": street, "city": city },
        }),
        time_field: "at",
        key_field: "customerId",
        deps: vec![],
        slow_by: None,
    });
    let window = |tight: bool, normal: (Millis, Millis)| {
        if tight {
            (MINUTE, 4 * MINUTE)
        } else {
            normal
        }
    };
    let (low, high) = window(tight, (MINUTE, 10 * MINUTE));
    let address_at = t0 + between(writer.rng, low, high);
    let address = script.push(EventSpec {
        topic: "checks",
        key: Some(customer_id.clone()),
        at: address_at,
        event_id: writer.event_id(),
        ce_type: "com.example.checks.AddressCheckCompleted",
        service: Service::AddressCheck,
        value: json!({
            "eventType": "AddressCheckCompleted",
            "customerId": customer_id,
            "result": if address_rejected { "rejected" } else { "ok" },
        }),
        time_field: "at",
        key_field: "customerId",
        deps: vec![registered],
        // SLA 15m from registration.
        slow_by: Some((15 * MINUTE, 30 * MINUTE)),
    });
    let (low, high) = window(tight, (2 * MINUTE, 20 * MINUTE));
    let credit_at = t0 + between(writer.rng, low, high);
    let credit = script.push(EventSpec {
        topic: "checks",
        key: Some(customer_id.clone()),
        at: credit_at,
        event_id: writer.event_id(),
        ce_type: "com.example.checks.CreditCheckCompleted",
        service: Service::CreditCheck,
        value: json!({
            "eventType": "CreditCheckCompleted",
            "customerId": customer_id,
            "approved": !credit_declined,
            "score": between(writer.rng, 300, 850),
        }),
        time_field: "at",
        key_field: "customerId",
        deps: vec![registered],
        // SLA 30m from registration.
        slow_by: Some((30 * MINUTE, 45 * MINUTE)),
    });
    if !declined {
        let (low, high) = if tight {
            (20 * SECOND, MINUTE)
        } else {
            (20 * SECOND, 3 * MINUTE)
        };
        let activated_at = address_at.max(credit_at) + between(writer.rng, low, high);
        let activated = script.push(EventSpec {
            topic: "customer-events",
            key: Some(customer_id.clone()),
            at: activated_at,
            event_id: writer.event_id(),
            ce_type: "com.example.customers.CustomerActivated",
            service: Service::Accounts,
            value: json!({ "eventType": "CustomerActivated", "customerId": customer_id }),
            time_field: "at",
            key_field: "customerId",
            deps: vec![address, credit],
            // SLA 5m from the later check.
            slow_by: Some((5 * MINUTE, 10 * MINUTE)),
        });
        if shape == Shape::OutOfOrder {
            // The later check result reaches the topic only after the activation: the
            // activation finds its step not yet open.
            let later = if credit_at >= address_at {
                credit
            } else {
                address
            };
            script.events[later].publish_at =
                script.events[activated].publish_at + between(writer.rng, 5 * SECOND, 30 * SECOND);
        }
    }
    script
}
