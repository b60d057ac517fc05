//! The order-fulfilment choreography (`flows/order-fulfillment.yaml`): the orders, inventory,
//! payments, risk and shipping services, with the timings of a healthy day. Every happy-path
//! delay is well inside its step's SLA, so only injected faults cause breaches.

use super::script::{EventSpec, ScriptBuilder, Service};
use super::{between, chance, Shape, Writer};
use crate::time::Millis;
use serde_json::json;

const SECOND: Millis = 1000;
const MINUTE: Millis = 60 * SECOND;

/// Orders above this total need a fraud check (the flow's `when`).
const FRAUD_THRESHOLD: f64 = 1000.0;

/// Writes the script of order `number`, placed at `t0`.
pub(super) fn script(
    writer: &mut Writer<'_>,
    number: u64,
    t0: Millis,
    shape: Shape,
) -> ScriptBuilder {
    let order_id = format!("ord-{}-{number:06}", writer.tag);
    let payment_id = format!("pay-{}-{number:06}", writer.tag);
    let large = chance(writer.rng, 0.2);
    let total = if large {
        FRAUD_THRESHOLD + between(writer.rng, 50, 400_000) as f64 / 100.0
    } else {
        between(writer.rng, 1_500, 90_000) as f64 / 100.0
    };
    let tight = shape == Shape::OutOfOrder;
    let mut script = ScriptBuilder::default();
    let placed = script.push(EventSpec {
        topic: "orders",
        key: Some(order_id.clone()),
        at: t0,
        event_id: writer.event_id(),
        ce_type: "com.example.orders.OrderPlaced",
        service: Service::Orders,
        value: json!({
            "type": "OrderPlaced",
            "orderId": order_id,
            "total": total,
            "customer": { "id": format!("c-{}", between(writer.rng, 1000, 9999)) },
            "items": between(writer.rng, 1, 6),
        }),
        time_field: "occurredAt",
        key_field: "orderId",
        deps: vec![],
        slow_by: None,
    });
    if chance(writer.rng, 0.2) {
        // Unrelated traffic on a watched topic: matched by no flow event.
        let at = t0 + between(writer.rng, 0, 10 * MINUTE);
        script.push(EventSpec {
            topic: "inventory",
            key: None,
            at,
            event_id: writer.event_id(),
            ce_type: "com.example.inventory.StockLevelChanged",
            service: Service::Inventory,
            value: json!({ "type": "StockLevelChanged", "sku": format!("sku-{}", between(writer.rng, 1, 50)), "level": between(writer.rng, 0, 500) }),
            time_field: "occurredAt",
            key_field: "sku",
            deps: vec![],
            slow_by: None,
        });
    }
    let reserved_at = t0
        + if tight {
            between(writer.rng, MINUTE, 3 * MINUTE)
        } else {
            between(writer.rng, MINUTE, 6 * MINUTE)
        };
    let reserved = script.push(EventSpec {
        topic: "inventory",
        key: Some(order_id.clone()),
        at: reserved_at,
        event_id: writer.event_id(),
        ce_type: "com.example.inventory.StockReservation",
        service: Service::Inventory,
        value: json!({ "type": "StockReservation", "outcome": "reserved", "order": { "id": order_id }, "sku": format!("sku-{}", between(writer.rng, 1, 50)) }),
        time_field: "occurredAt",
        key_field: "order",
        deps: vec![placed],
        // SLA 10m from the order: delaying the reservation by 10-20m always misses it.
        slow_by: Some((10 * MINUTE, 20 * MINUTE)),
    });
    let fraud = large.then(|| {
        let at = t0 + between(writer.rng, 2 * MINUTE, 12 * MINUTE);
        script.push(EventSpec {
            topic: "risk",
            key: Some(order_id.clone()),
            at,
            event_id: writer.event_id(),
            ce_type: "com.example.risk.FraudScreeningPassed",
            service: Service::Risk,
            value: json!({ "kind": "FraudScreeningPassed", "subject": { "orderId": order_id }, "score": between(writer.rng, 1, 30) }),
            time_field: "occurredAt",
            key_field: "subject",
            deps: vec![placed],
            slow_by: Some((20 * MINUTE, 35 * MINUTE)),
        })
    });
    let step = if tight {
        (20 * SECOND, MINUTE)
    } else {
        (20 * SECOND, 2 * MINUTE)
    };
    let requested_at = reserved_at + between(writer.rng, step.0, step.1);
    let requested = script.push(EventSpec {
        topic: "payments",
        key: Some(order_id.clone()),
        at: requested_at,
        event_id: writer.event_id(),
        ce_type: "com.example.payments.PaymentRequested",
        service: Service::Payments,
        value: json!({ "type": "PaymentRequested", "orderId": order_id, "paymentId": payment_id, "amount": total }),
        time_field: "occurredAt",
        key_field: "orderId",
        deps: vec![reserved],
        // The payment step (SLA 15m) opens at the reservation; a request 15-25m later is
        // followed by a charge that misses it.
        slow_by: Some((15 * MINUTE, 25 * MINUTE)),
    });
    let charge = if tight {
        (20 * SECOND, MINUTE)
    } else {
        (20 * SECOND, 4 * MINUTE)
    };
    let charged_at = requested_at + between(writer.rng, charge.0, charge.1);
    let declined = shape == Shape::Declined;
    let outcome = if declined {
        let reason = ["insufficient_funds", "card_expired", "suspected_fraud"]
            [between(writer.rng, 0, 2) as usize];
        json!({ "type": "PaymentDeclined", "paymentId": payment_id, "amount": total, "reason": reason })
    } else {
        json!({ "type": "PaymentSucceeded", "paymentId": payment_id, "amount": total })
    };
    let charged = script.push(EventSpec {
        topic: "payments",
        key: Some(payment_id.clone()),
        at: charged_at,
        event_id: writer.event_id(),
        ce_type: if declined {
            "com.example.payments.PaymentDeclined"
        } else {
            "com.example.payments.PaymentSucceeded"
        },
        service: Service::Payments,
        value: outcome,
        time_field: "occurredAt",
        key_field: "paymentId",
        deps: vec![requested],
        slow_by: Some((15 * MINUTE, 25 * MINUTE)),
    });
    if shape == Shape::OutOfOrder {
        // The reservation reaches the topic only after the charge: the charge finds the
        // payment step not yet open.
        let delivered =
            script.events[charged].publish_at + between(writer.rng, 5 * SECOND, 30 * SECOND);
        script.events[reserved].publish_at = delivered;
    }
    if !declined {
        let ready = fraud.map_or(charged_at, |fraud| {
            charged_at.max(script.events[fraud].event_time)
        });
        let mut deps = vec![charged];
        deps.extend(fraud);
        let carrier = ["DHL", "UPS", "PostNL", "GLS"][between(writer.rng, 0, 3) as usize];
        script.push(EventSpec {
            topic: "shipping",
            key: Some(order_id.clone()),
            at: ready + between(writer.rng, 10 * MINUTE, 80 * MINUTE),
            event_id: writer.event_id(),
            ce_type: "com.example.shipping.ShipmentDispatched",
            service: Service::Shipping,
            value: json!({ "type": "ShipmentDispatched", "orderId": order_id, "carrier": carrier, "trackingId": format!("trk-{}-{number:06}", writer.tag) }),
            time_field: "occurredAt",
            key_field: "orderId",
            deps,
            // SLA 2h from payment and fraud check.
            slow_by: Some((2 * 60 * MINUTE, 3 * 60 * MINUTE)),
        });
    }
    // The flow reads event ids from the payload.
    for event in &mut script.events {
        if let super::script::Body::Json {
            value: serde_json::Value::Object(map),
            ..
        } = &mut event.body
        {
            map.insert(
                "eventId".to_string(),
                serde_json::Value::String(event.event_id.clone()),
            );
        }
    }
    script
}
