#!/usr/bin/env python3
"""Writes the seed corpora of the `template` and `kafka_message` fuzz targets (and adds the
hostile example to `decode_line`'s) from the shipped flows and the recorded examples, so the
committed corpora can be made again: `python3 fuzz/make_corpus.py` from the repository root.
The `decode_line`, `flow_file` and `engine_stream` seeds are kept as they are in fuzz/corpus/.
"""
import json
import pathlib
import re
import struct

import yaml  # PyYAML

ROOT = pathlib.Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"
FLOWS = sorted((ROOT / "flows").glob("*.yaml"))
EXAMPLES = sorted((ROOT / "tests" / "examples").glob("*.jsonl"))
EXAMPLES = [path for path in EXAMPLES if not path.name.endswith(".signals.jsonl")]


def write(target, name, data):
    directory = CORPUS / target
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_bytes(data if isinstance(data, bytes) else data.encode())


def records():
    for path in EXAMPLES:
        for line in path.read_text().splitlines():
            if line.strip():
                yield path.stem, json.loads(line)


# --- template: line 1 the template, then payloads by event index (fuzz_targets/template.rs).
EVENT_NAMES = ["OrderPlaced", "PaymentFailed", "a"]
payload = next(record["value"] for _, record in records() if record["value"].get("type") == "OrderPlaced")
count = 0
for path in FLOWS + sorted((ROOT / "tests" / "flows").glob("*/*.yaml")):
    try:
        flow = yaml.safe_load(path.read_text())
    except Exception:
        continue
    actions = (flow or {}).get("actions") or {}
    if not isinstance(actions, dict):
        continue
    for name, action in actions.items():
        publish = (action or {}).get("publish") if isinstance(action, dict) else None
        if not isinstance(publish, dict):
            continue
        for part in ("topic", "key", "value"):
            if part not in publish:
                continue
            # Every event reference names one the target knows, so the template compiles.
            text = re.sub(r"events\.[A-Za-z0-9_-]+", "events.OrderPlaced", json.dumps(publish[part]))
            count += 1
            write("template", f"{path.stem}-{name}-{part}", text + "\n" + json.dumps(payload) + "\n")
for name, text in {
    "escaped": '"$${key} costs ${events.OrderPlaced.total} (attempt ${attempt})"',
    "exact-object": '{"whole": "${events.OrderPlaced.customer}", "step": "${step}", "list": ["${flow}", 1, null]}',
    "unclosed": '"${events.OrderPlaced.total"',
    "unknown": '"${nope} ${events.Missing.x} ${events.a..b}"',
    "literal": '{"a": [1, 2.5, true, "plain $ text"]}',
}.items():
    write("template", name, text + "\n" + json.dumps(payload) + "\n" + '{"x": {"y": [1, 2]}}' + "\n")

# --- kafka_message: the byte layout of fuzz_targets/kafka_message.rs.
topics = sorted({event["topic"] for path in FLOWS for event in yaml.safe_load(path.read_text())["events"].values()})


def optional(data):
    if data is None:
        return bytes([255])
    assert len(data) < 255
    return bytes([len(data)]) + data


def message(topic, key, headers, timestamp, payload):
    selector = topics.index(topic) if topic in topics else 254
    out = bytes([selector]) + optional(key) + bytes([len(headers)])
    for name, value in headers:
        out += optional(name) + optional(value)
    out += bytes([0]) if timestamp is None else bytes([1]) + struct.pack("<q", timestamp)
    return out + (payload or b"")


seen = set()
for example, record in records():
    value = record["value"]
    shape = (record["topic"], value.get("type") if isinstance(value, dict) else None, example == "hostile-payload")
    if shape in seen:
        continue
    seen.add(shape)
    key = record.get("key")
    headers = [(name.encode(), str(value).encode()) for name, value in (record.get("headers") or {}).items()]
    timestamp = 1767225600000 + 1000 * len(seen)
    body = json.dumps(value).encode()
    write("kafka_message", f"{example}-{len(seen):02}", message(record["topic"], key.encode() if key else None, headers, timestamp, body))
write("kafka_message", "no-payload", message("orders", b"k", [], None, None))
write("kafka_message", "not-json", message("orders", b"\xff\xfe", [(b"ce_type", None)], 0, b"{not json"))
write("kafka_message", "ce-headers", message("payments", None, [(b"ce_id", b"x-1"), (b"ce_time", b"2026-01-01T00:00:00Z")], -5, b'{"type":"PaymentRequested","orderId":"o","paymentId":"p","occurredAt":"9999-12-31T23:59:59Z"}'))

# --- decode_line: the hostile example's lines, besides the recorded-scenario seeds already there.
for number, line in enumerate((ROOT / "tests" / "examples" / "hostile-payload.jsonl").read_text().splitlines()):
    write("decode_line", f"hostile-{number:02}", line)
write("decode_line", "kcat", '{"topic":"orders","partition":1,"offset":9,"tstype":"create","ts":1767225600000,"key":"ord-1","headers":["ce_id","x","ce_type","y"],"payload":"{\\"type\\":\\"OrderPlaced\\",\\"orderId\\":\\"ord-1\\"}"}')
print(f"template seeds {count + 5}, kafka_message seeds {len(seen) + 3}, topics {topics}")
