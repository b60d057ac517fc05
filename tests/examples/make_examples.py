#!/usr/bin/env python3
"""Writes the recorded examples in tests/examples/ (replay input, SPEC 3 format).

Deterministic: the same script always writes the same bytes. The three per-flow examples are
written out case by case below (each case says what it exercises); checkout-day.jsonl is a
longer day of order and onboarding traffic drawn from a seeded random generator.

Usage: python3 tests/examples/make_examples.py   (from anywhere; writes beside this file)
Then regenerate the expected signals as tests/examples/README.md says.
"""

import json
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent


def ts(text):
    """'2026-01-05T09:00:05' or with milliseconds -> aware datetime (UTC)."""
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def rfc3339(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class Recording:
    """Records in arrival order, with per-topic offsets as a consumer would have read them."""

    def __init__(self):
        self.records = []
        self.offsets = {}

    def add(self, topic, moment, value, key=None, headers=None, timestamp=None):
        offset = self.offsets.get(topic, 0)
        self.offsets[topic] = offset + 1
        record = {"topic": topic, "partition": 0, "offset": offset}
        if key is not None:
            record["key"] = key
        record["timestamp"] = rfc3339(timestamp or moment)
        if headers is not None:
            record["headers"] = headers
        record["value"] = value
        self.records.append((timestamp or moment, record))

    def write(self, name):
        times = [moment for moment, _ in self.records]
        assert times == sorted(times), f"{name}: records are not in arrival (time) order"
        assert 20 <= len(self.records), name
        with open(HERE / name, "w", encoding="utf-8", newline="\n") as out:
            for _, record in self.records:
                out.write(json.dumps(record, separators=(",", ":")) + "\n")


# ---------------------------------------------------------------------------------------------
# order-fulfillment: orders, inventory, payments (linked by paymentId), risk, shipping.


class Orders:
    def __init__(self, recording, prefix):
        self.recording = recording
        self.prefix = prefix
        self.next_id = 1

    def _event_id(self):
        event_id = f"{self.prefix}-{self.next_id:04d}"
        self.next_id += 1
        return event_id

    def _add(self, topic, when, value, event_id=None, received=None):
        moment = ts(when) if isinstance(when, str) else when
        # The shape of the scenario's records: type (or kind) first, then id and time.
        first, kind = next(iter(value.items()))
        value = {first: kind, "eventId": event_id or self._event_id(),
                 "occurredAt": rfc3339(moment), **value}
        self.recording.add(topic, moment, value, timestamp=received)
        return value["eventId"]

    def placed(self, when, order, total, topic="orders", event_id=None, received=None):
        """An order; with `event_id` and `received`, a re-delivery of an earlier record."""
        customer = {"id": "c-" + order.split("-")[1]}
        return self._add(topic, when, {"type": "OrderPlaced", "orderId": order, "total": total,
                                       "customer": customer}, event_id, received)

    def cancelled(self, when, order, reason="customer"):
        return self._add("orders", when, {"type": "OrderCancelled", "orderId": order,
                                          "reason": reason})

    def reserved(self, when, order, outcome="reserved", sku="sku-1"):
        value = {"type": "StockReservation", "outcome": outcome, "order": {"id": order}}
        if outcome == "reserved":
            value["sku"] = sku
        return self._add("inventory", when, value)

    def stock_level(self, when, sku, level):
        moment = ts(when) if isinstance(when, str) else when
        self.recording.add("inventory", moment, {"type": "StockLevelChanged", "sku": sku,
                                                 "level": level})

    def payment_requested(self, when, order, payment, amount):
        return self._add("payments", when, {"type": "PaymentRequested", "orderId": order,
                                            "paymentId": payment, "amount": amount})

    def charged(self, when, payment, amount):
        return self._add("payments", when, {"type": "PaymentSucceeded", "paymentId": payment,
                                            "amount": amount})

    def declined(self, when, payment):
        return self._add("payments", when, {"type": "PaymentDeclined", "paymentId": payment})

    def fraud_cleared(self, when, order, score=0.08):
        return self._add("risk", when, {"kind": "FraudScreeningPassed",
                                        "subject": {"orderId": order}, "score": score})

    def shipped(self, when, order, carrier="dhl"):
        return self._add("shipping", when, {"type": "ShipmentDispatched", "orderId": order,
                                            "carrier": carrier})


def order_fulfillment():
    recording = Recording()
    o = Orders(recording, "ev-of")
    d = "2026-01-05T"
    # ord-1001 happy path, small order: fraud-check skipped by its condition.
    o.placed(d + "09:00:05", "ord-1001", 89.90)
    o.reserved(d + "09:01:40", "ord-1001")
    o.payment_requested(d + "09:02:10", "ord-1001", "pay-5001", 89.90)
    o.charged(d + "09:03:30", "pay-5001", 89.90)
    # ord-1002 large order (fraud check runs); inventory takes 12m45s: SLA breach, then late.
    o.placed(d + "09:05:00", "ord-1002", 1849.00)
    o.stock_level(d + "09:06:12", "sku-4", 3)  # another event on a flow topic: unmatched
    o.fraud_cleared(d + "09:09:30", "ord-1002")
    # ord-1003 payment never confirmed in time: retry-payment twice, then an alert.
    o.placed(d + "09:10:00", "ord-1003", 240.50)
    o.reserved(d + "09:11:00", "ord-1003")
    o.payment_requested(d + "09:11:30", "ord-1003", "pay-5003", 240.50)
    o.reserved(d + "09:17:45", "ord-1002")
    o.payment_requested(d + "09:18:20", "ord-1002", "pay-5002", 1849.00)
    # ord-1004 fails: the payment is declined (routed through the paymentId link).
    o.placed(d + "09:20:00", "ord-1004", 59.00)
    o.charged(d + "09:21:05", "pay-5002", 1849.00)
    o.reserved(d + "09:21:10", "ord-1004")
    o.payment_requested(d + "09:21:40", "ord-1004", "pay-5004", 59.00)
    o.declined(d + "09:23:00", "pay-5004")
    # ord-1005 pays but is not shipped for hours: shipping SLA, then the 6h deadline.
    o.placed(d + "09:25:00", "ord-1005", 130.00)
    o.reserved(d + "09:26:00", "ord-1005")
    o.payment_requested(d + "09:26:30", "ord-1005", "pay-5005", 130.00)
    o.charged(d + "09:28:00", "pay-5005", 130.00)
    # ord-1006 deviations: a re-delivered OrderPlaced (duplicate), the payment confirmed before
    # the stock reservation (out_of_order), and a cancellation after it ended (late_event).
    placed = o.placed(d + "09:30:00", "ord-1006", 75.00)
    o.placed(d + "09:30:00", "ord-1006", 75.00, event_id=placed, received=ts(d + "09:30:02"))
    o.payment_requested(d + "09:31:00", "ord-1006", "pay-5006", 75.00)
    o.charged(d + "09:32:00", "pay-5006", 75.00)
    o.reserved(d + "09:34:00", "ord-1006")
    # ord-1007 the reservation arrives before the order: held, then applied when it starts.
    o.reserved(d + "09:40:00", "ord-1007")
    o.placed(d + "09:40:30", "ord-1007", 410.00)
    o.payment_requested(d + "09:41:00", "ord-1007", "pay-5007", 410.00)
    o.charged(d + "09:42:10", "pay-5007", 410.00)
    # Orphans: ord-1099 was placed on a topic the flow does not read; pay-9999 was never
    # requested. Both are reported once the clock passes their first event + 5m.
    o.placed(d + "09:44:00", "ord-1099", 35.00, topic="orders-v2")
    o.reserved(d + "09:45:00", "ord-1099")
    o.charged(d + "09:50:30", "pay-9999", 12.00)
    o.shipped(d + "09:58:00", "ord-1001")
    o.stock_level(d + "10:00:00", "sku-1", 41)
    o.charged(d + "10:02:15", "pay-5003", 240.50)
    o.shipped(d + "10:15:00", "ord-1006")
    o.cancelled(d + "10:20:00", "ord-1006")
    o.shipped(d + "10:30:00", "ord-1002", carrier="ups")
    o.shipped(d + "10:31:00", "ord-1007")
    o.shipped(d + "11:05:00", "ord-1003")
    o.shipped(d + "15:40:00", "ord-1005", carrier="postnl")
    recording.write("order-fulfillment.jsonl")


# ---------------------------------------------------------------------------------------------
# customer-onboarding: customer-events and checks, keyed by customerId, time in `at`.


class Onboarding:
    def __init__(self, recording):
        self.recording = recording

    def _add(self, topic, when, value):
        moment = ts(when) if isinstance(when, str) else when
        event_type = value.pop("eventType")
        self.recording.add(topic, moment, {"eventType": event_type, **value,
                                           "at": rfc3339(moment)})

    def registration(self, when, customer, number):
        self._add("customer-events", when, {
            "eventType": "RegistrationRequested", "customerId": customer,
            "address": {"street": f"{number} Main St", "city": "Springfield"}})

    def address(self, when, customer, result="ok"):
        self._add("checks", when, {"eventType": "AddressCheckCompleted", "result": result,
                                   "customerId": customer})

    def credit(self, when, customer, approved=True):
        self._add("checks", when, {"eventType": "CreditCheckCompleted", "approved": approved,
                                   "customerId": customer})

    def activated(self, when, customer):
        self._add("customer-events", when, {"eventType": "CustomerActivated",
                                            "customerId": customer})

    def cancelled(self, when, customer):
        self._add("customer-events", when, {"eventType": "RegistrationCancelled",
                                            "customerId": customer})

    def other(self, when, customer):
        self._add("checks", when, {"eventType": "IdentityVerified", "customerId": customer})


def customer_onboarding():
    recording = Recording()
    c = Onboarding(recording)
    d = "2026-01-05T"
    # cust-2001 happy path; a second address result is a `repeated` deviation.
    c.registration(d + "10:00:00", "cust-2001", 12)
    # cust-2002 the credit check takes 39m: SLA breach (alert), late completion, resolved.
    c.registration(d + "10:02:00", "cust-2002", 7)
    c.address(d + "10:05:00", "cust-2002")
    c.address(d + "10:06:00", "cust-2001")
    c.address(d + "10:08:00", "cust-2001")
    # cust-2003 the address check is slow: recheck-address twice, then it passes.
    c.registration(d + "10:10:00", "cust-2003", 221)
    c.credit(d + "10:12:00", "cust-2001")
    c.other(d + "10:13:00", "cust-2003")  # not an event of the flow: unmatched
    c.credit(d + "10:14:00", "cust-2003")
    c.activated(d + "10:14:30", "cust-2001")
    # cust-2004 fails on a rejected address; its credit result comes after the end.
    c.registration(d + "10:20:00", "cust-2004", 3)
    c.address(d + "10:24:00", "cust-2004", result="rejected")
    # cust-2005 both checks pass but activation never comes: activation SLA, then the 4h
    # deadline cancels the registration (action) and alerts; the cancellation then fails it.
    c.registration(d + "10:30:00", "cust-2005", 45)
    c.credit(d + "10:31:00", "cust-2004")
    c.address(d + "10:33:00", "cust-2005")
    c.credit(d + "10:38:00", "cust-2005")
    c.credit(d + "10:41:00", "cust-2002")
    c.activated(d + "10:44:00", "cust-2002")
    c.address(d + "10:47:00", "cust-2003")
    c.activated(d + "10:49:00", "cust-2003")
    # cust-2006 activated before its credit result arrived: out_of_order, completes on opening.
    c.registration(d + "10:50:00", "cust-2006", 98)
    c.address(d + "10:55:00", "cust-2006")
    c.activated(d + "10:58:00", "cust-2006")
    c.credit(d + "11:01:00", "cust-2006")
    # cust-2999: an address result for a registration that never arrives: orphaned at 11:10.
    c.address(d + "11:05:00", "cust-2999")
    c.cancelled(d + "14:31:10", "cust-2005")
    recording.write("customer-onboarding.jsonl")


# ---------------------------------------------------------------------------------------------
# parcel-delivery: CloudEvents binary mode on carrier-scans, key = tracking number.


class Carrier:
    def __init__(self, recording):
        self.recording = recording
        self.serial = {}

    def scan(self, when, parcel, kind, payload, ce_id=None, received=None):
        moment = ts(when)
        if ce_id is None:
            self.serial[parcel] = self.serial.get(parcel, 0) + 1
            ce_id = f"{parcel}-{self.serial[parcel]:02d}"
        headers = {
            "ce_specversion": "1.0",
            "ce_type": f"com.carrier.parcel.{kind}",
            "ce_id": ce_id,
            "ce_time": rfc3339(moment),
            "ce_source": f"//carrier.example/scanners/{payload.get('scanner', 'portal')}",
        }
        self.recording.add("carrier-scans", moment, payload, key=parcel, headers=headers,
                           timestamp=ts(received) if received else None)
        return ce_id


def parcel_delivery():
    recording = Recording()
    p = Carrier(recording)
    d1, d2 = "2026-01-05T", "2026-01-06T"
    # PX1001 happy path, same-day; a second delivery confirmation comes after it ended.
    p.scan(d1 + "06:00:00", "PX1001", "labelled", {"shipper": "acme-shop", "scanner": "portal"})
    # PX1002 stuck in AMS-1 for 6h: trace-parcel, then resolved by the next scan. Its hub scan
    # is re-sent 40s later with the same ce_id: a duplicate.
    p.scan(d1 + "06:30:00", "PX1002", "labelled", {"shipper": "bolt-books", "scanner": "portal"})
    p.scan(d1 + "07:00:00", "PX1003", "labelled", {"shipper": "acme-shop", "scanner": "portal"})
    p.scan(d1 + "07:15:00", "PX1002", "picked_up", {"hub": "AMS-1", "scanner": "van-04"})
    p.scan(d1 + "08:00:00", "PX1003", "picked_up", {"hub": "AMS-1", "scanner": "van-12"})
    p.scan(d1 + "08:30:00", "PX1001", "picked_up", {"hub": "AMS-1", "scanner": "van-12"})
    resent = p.scan(d1 + "09:00:00", "PX1002", "hub_scanned", {"hub": "AMS-1", "scanner": "s-17"})
    p.scan(d1 + "09:00:00", "PX1002", "hub_scanned", {"hub": "AMS-1", "scanner": "s-17"},
           ce_id=resent, received=d1 + "09:00:40")
    # PX1005 lost: stuck three times (trace-parcel twice, then only alerts), then lost.
    p.scan(d1 + "09:05:00", "PX1005", "labelled", {"shipper": "cozy-knits", "scanner": "portal"})
    p.scan(d1 + "10:00:00", "PX1003", "hub_scanned", {"hub": "AMS-1", "scanner": "s-17"})
    p.scan(d1 + "10:05:00", "PX1005", "picked_up", {"hub": "RTM-1", "scanner": "van-31"})
    p.scan(d1 + "11:00:00", "PX1001", "hub_scanned", {"hub": "AMS-1", "scanner": "s-17"})
    # PX1003 out for delivery at 12:00 but delivered only the next morning: delivery SLA
    # (notify-customer-service and alert) and a quiet evening (stuck, trace-parcel); a second
    # out-for-delivery scan is a repeated deviation.
    p.scan(d1 + "12:00:00", "PX1003", "out_for_delivery", {"hub": "AMS-1", "scanner": "s-21"})
    p.scan(d1 + "12:10:00", "PX1005", "hub_scanned", {"hub": "RTM-1", "scanner": "s-02"})
    # PX1099: a hub scan of a parcel whose label event never arrived: orphaned.
    p.scan(d1 + "13:20:00", "PX1099", "hub_scanned", {"hub": "UTR-2", "scanner": "s-04"})
    p.scan(d1 + "14:00:00", "PX1001", "hub_scanned", {"hub": "UTR-2", "scanner": "s-04"})
    p.scan(d1 + "15:00:00", "PX1003", "hub_scanned", {"hub": "AMS-1", "scanner": "s-18",
                                                      "note": "returned to depot"})
    p.scan(d1 + "16:00:00", "PX1001", "out_for_delivery", {"hub": "UTR-2", "scanner": "s-09"})
    p.scan(d1 + "16:20:00", "PX1002", "hub_scanned", {"hub": "ROT-3", "scanner": "s-33"})
    p.scan(d1 + "17:00:00", "PX1002", "out_for_delivery", {"hub": "ROT-3", "scanner": "s-35"})
    p.scan(d1 + "18:30:00", "PX1001", "delivered", {"hub": "UTR-2", "scanner": "courier-3",
                                                     "signedBy": "J. Jansen"})
    p.scan(d1 + "19:05:00", "PX1001", "delivered", {"hub": "UTR-2", "scanner": "courier-app",
                                                     "photo": True})
    p.scan(d1 + "19:10:00", "PX1002", "delivered", {"hub": "ROT-3", "scanner": "courier-8"})
    p.scan(d1 + "19:30:00", "PX1005", "hub_scanned", {"hub": "RTM-1", "scanner": "s-02",
                                                      "note": "found in sorting"})
    p.scan(d2 + "02:00:00", "PX1005", "hub_scanned", {"hub": "BRU-1", "scanner": "s-50"})
    p.scan(d2 + "08:00:00", "PX1003", "out_for_delivery", {"hub": "AMS-1", "scanner": "s-21"})
    p.scan(d2 + "09:15:00", "PX1005", "lost", {"hub": "BRU-1", "scanner": "s-50"})
    p.scan(d2 + "10:30:00", "PX1003", "delivered", {"hub": "AMS-1", "scanner": "courier-5"})
    recording.write("parcel-delivery.jsonl")


# ---------------------------------------------------------------------------------------------
# checkout-day: a day of mixed order and onboarding traffic, drawn from a seeded generator.


def checkout_day():
    rng = random.Random(20260105)
    recording = Recording()
    pending = []  # (moment, sequence, callable) so the day comes out in time order

    def at(moment, action):
        pending.append((moment, len(pending), action))

    o = Orders(recording, "ev-day")
    c = Onboarding(recording)
    start = ts("2026-01-05T08:00:00")

    def minutes(low, high):
        return timedelta(seconds=rng.randint(int(low * 60), int(high * 60)))

    placed_ids = {}  # order -> eventId of its OrderPlaced, for re-deliveries
    order_cases = (["happy"] * 22 + ["slow-stock"] * 3 + ["slow-pay"] * 3 + ["no-pay"] * 1
                   + ["declined"] * 2 + ["unavailable"] * 2 + ["cancelled"] * 2
                   + ["not-shipped"] * 2 + ["duplicate"] * 2 + ["early-pay"] * 2
                   + ["orphan"] * 2 + ["late-cancel"] * 1)
    rng.shuffle(order_cases)
    moment = start
    for number, case in enumerate(order_cases):
        moment += minutes(2, 14)
        order = f"ord-{3000 + number}"
        payment = f"pay-{rng.randint(100000, 999999)}-{number}"
        total = rng.choice([19.99, 48.50, 129.00, 240.00, 655.10, 1299.00, 2480.00])
        big = total > 1000
        t0 = moment
        if case == "orphan":
            # Placed on a topic the flow does not read: its other events are orphans.
            stock, requested = t0 + minutes(1, 3), t0 + minutes(3, 4)
            at(t0, lambda t=t0, o_=order, tot=total: o.placed(t, o_, tot, topic="orders-v2"))
            at(stock, lambda t=stock, o_=order: o.reserved(t, o_))
            at(requested, lambda t=requested, o_=order, p=payment, tot=total:
               o.payment_requested(t, o_, p, tot))
            continue
        at(t0, lambda t=t0, o_=order, tot=total: placed_ids.update({o_: o.placed(t, o_, tot)}))
        if case == "duplicate":
            # The same record delivered again two seconds later: same eventId and time.
            again = t0 + timedelta(seconds=2)
            at(again, lambda t=t0, o_=order, tot=total, r=again:
               o.placed(t, o_, tot, event_id=placed_ids[o_], received=r))
        if big:
            tf = t0 + minutes(2, 25 if case == "happy" else 12)
            at(tf, lambda t=tf, o_=order: o.fraud_cleared(t, o_, round(rng.random() / 5, 2)))
        stock = t0 + (minutes(11, 16) if case == "slow-stock" else minutes(0.5, 6))
        if case == "unavailable":
            at(stock, lambda t=stock, o_=order: o.reserved(t, o_, outcome="unavailable"))
            continue
        if case == "cancelled":
            tc = t0 + minutes(1, 4)
            at(tc, lambda t=tc, o_=order: o.cancelled(t, o_))
            continue
        requested = stock + minutes(0.2, 1)
        if case == "early-pay":
            requested = t0 + minutes(0.1, 0.3)
            stock = t0 + minutes(4, 8)
        at(stock, lambda t=stock, o_=order: o.reserved(t, o_))
        at(requested, lambda t=requested, o_=order, p=payment, tot=total:
           o.payment_requested(t, o_, p, tot))
        paid = max(stock, requested) + {"slow-pay": minutes(17, 40), "no-pay": minutes(60, 70)
                                        }.get(case, minutes(0.5, 8))
        if case == "early-pay":
            paid = requested + minutes(1, 2)
        if case == "declined":
            at(paid, lambda t=paid, p=payment: o.declined(t, p))
            continue
        if case == "no-pay":
            tc = paid
            at(tc, lambda t=tc, o_=order: o.cancelled(t, o_, reason="payment timeout"))
            continue
        at(paid, lambda t=paid, p=payment, tot=total: o.charged(t, p, tot))
        ready = max(paid, stock)
        shipped = ready + (minutes(130, 400) if case == "not-shipped" else minutes(20, 110))
        if case == "not-shipped" and number % 2 == 0:
            continue  # never shipped: shipping SLA and the 6h deadline fire by the end of day
        carrier = rng.choice(["dhl", "ups", "postnl"])
        at(shipped, lambda t=shipped, o_=order, cr=carrier: o.shipped(t, o_, cr))
        if case == "late-cancel":
            tl = shipped + minutes(5, 30)
            at(tl, lambda t=tl, o_=order: o.cancelled(t, o_))
    for minute in range(0, 12 * 60, 37):
        tn = start + timedelta(minutes=minute, seconds=rng.randint(0, 59))
        at(tn, lambda t=tn, sku=f"sku-{rng.randint(1, 9)}", lvl=rng.randint(0, 60):
           o.stock_level(t, sku, lvl))

    onboarding_cases = (["happy"] * 14 + ["slow-address"] * 3 + ["slow-credit"] * 2
                        + ["rejected"] * 2 + ["declined"] * 1 + ["no-activation"] * 2
                        + ["early-activation"] * 1 + ["orphan"] * 1)
    rng.shuffle(onboarding_cases)
    moment = start + timedelta(minutes=3)
    for number, case in enumerate(onboarding_cases):
        moment += minutes(6, 22)
        customer = f"cust-{4000 + number}"
        t0 = moment
        if case != "orphan":
            at(t0, lambda t=t0, cu=customer, n=number: c.registration(t, cu, n + 1))
        address = t0 + {"slow-address": minutes(17, 40)}.get(case, minutes(1, 12))
        credit = t0 + {"slow-credit": minutes(31, 50)}.get(case, minutes(2, 25))
        if case == "rejected":
            at(address, lambda t=address, cu=customer: c.address(t, cu, result="rejected"))
            continue
        at(address, lambda t=address, cu=customer: c.address(t, cu))
        if case == "orphan":
            continue
        if case == "declined":
            at(credit, lambda t=credit, cu=customer: c.credit(t, cu, approved=False))
            continue
        at(credit, lambda t=credit, cu=customer: c.credit(t, cu))
        ready = max(address, credit)
        if case == "no-activation":
            tc = t0 + minutes(250, 300)
            at(tc, lambda t=tc, cu=customer: c.cancelled(t, cu))
            continue
        activated = ready + minutes(0.5, 4.5)
        if case == "early-activation":
            activated = min(address, credit) + minutes(0.1, 0.5)
            if activated >= ready:
                activated = ready - timedelta(seconds=5)
        at(activated, lambda t=activated, cu=customer: c.activated(t, cu))

    pending.sort(key=lambda entry: (entry[0], entry[1]))
    for _, _, action in pending:
        action()
    recording.write("checkout-day.jsonl")


if __name__ == "__main__":
    order_fulfillment()
    customer_onboarding()
    parcel_delivery()
    checkout_day()
