//! Diagram tests: Mermaid snapshots of the shipped flows, SVG parsed back as XML with one node
//! per step, and the layout rules (parallel steps on one row, joins below their inputs).

use super::layout::layout;
use super::{mermaid, svg, Graph, NodeKind};
use crate::flow::{parse_flow_file, FlowDef};
use expect_test::{expect, Expect};

fn shipped(name: &str) -> FlowDef {
    let text = match name {
        "customer-onboarding" => include_str!("../../flows/customer-onboarding.yaml"),
        "order-fulfillment" => include_str!("../../flows/order-fulfillment.yaml"),
        "parcel-delivery" => include_str!("../../flows/parcel-delivery.yaml"),
        other => panic!("no shipped flow {other}"),
    };
    parse_flow_file(std::path::Path::new(name), text).expect("shipped flow parses")
}

fn check_mermaid(name: &str, expect: Expect) {
    expect.assert_eq(&mermaid::render(&Graph::from_def(&shipped(name))));
}

#[test]
fn mermaid_of_customer_onboarding() {
    check_mermaid(
        "customer-onboarding",
        expect![[r#"
        flowchart TD
          %% flow customer-onboarding
          %% Account opening with parallel address and credit checks.
          start(["start<br/>on RegistrationRequested<br/>deadline 4h → cancel-registration, alert"])
          s0["<b>address-check</b><br/>await AddressChecked<br/>within 15m<br/>on breach → recheck-address"]
          s1["<b>credit-check</b><br/>await CreditApproved<br/>within 30m<br/>on breach → alert"]
          s2["<b>activation</b><br/>await CustomerActivated<br/>within 5m<br/>on breach → alert"]
          completed(["completed"])
          failed{{"failed<br/>on AddressRejected<br/>on CreditDeclined<br/>on RegistrationCancelled"}}
          start --> s0
          start --> s1
          s0 --> s2
          s1 --> s2
          s2 --> completed
          start -.->|"any time"| failed
          class start start
          class completed completed
          class failed failed
          classDef start fill:#e8f0fe,stroke:#3b6fc4
          classDef completed fill:#e6f4ea,stroke:#2e7d32
          classDef failed fill:#fce8e6,stroke:#c62828
    "#]],
    );
}

#[test]
fn mermaid_of_order_fulfillment() {
    check_mermaid(
        "order-fulfillment",
        expect![[r#"
            flowchart TD
              %% flow order-fulfillment
              %% Checkout from order placed to shipment, across orders, inventory, payments, risk and shipping.
              start(["start<br/>on OrderPlaced<br/>deadline 6h → alert<br/>stuck after 1h30m → alert"])
              s0["<b>inventory</b><br/>await InventoryReserved<br/>within 10m<br/>on breach → alert"]
              s1["<b>fraud-check</b><br/>await FraudCleared<br/>within 20m<br/>when double(events.OrderPlaced.total) #gt; 1000.0<br/>on breach → alert"]
              s2["<b>payment</b><br/>await PaymentCharged<br/>within 15m<br/>on breach → retry-payment"]
              s3["<b>shipping</b><br/>await OrderShipped<br/>within 2h<br/>on breach → alert"]
              completed(["completed"])
              failed{{"failed<br/>on OrderCancelled<br/>on InventoryUnavailable<br/>on PaymentFailed"}}
              start --> s0
              start --> s1
              s0 --> s2
              s2 --> s3
              s1 --> s3
              s3 --> completed
              start -.->|"any time"| failed
              class start start
              class completed completed
              class failed failed
              classDef start fill:#e8f0fe,stroke:#3b6fc4
              classDef completed fill:#e6f4ea,stroke:#2e7d32
              classDef failed fill:#fce8e6,stroke:#c62828
        "#]],
    );
}

#[test]
fn mermaid_of_parcel_delivery() {
    check_mermaid(
        "parcel-delivery",
        expect![[r#"
        flowchart TD
          %% flow parcel-delivery
          %% Carrier scans from label to doorstep, with stuck-parcel detection.
          start(["start<br/>on LabelCreated<br/>stuck after 6h → trace-parcel, alert"])
          s0["<b>pickup</b><br/>await PickedUp<br/>within 1d<br/>on breach → alert"]
          s1["<b>out-for-delivery</b><br/>await OutForDelivery<br/>within 3d<br/>on breach → alert"]
          s2["<b>delivery</b><br/>await Delivered<br/>within 12h<br/>on breach → notify-customer-service, alert"]
          completed(["completed"])
          failed{{"failed<br/>on Returned"}}
          start --> s0
          s0 --> s1
          s1 --> s2
          s2 --> completed
          start -.->|"any time"| failed
          class start start
          class completed completed
          class failed failed
          classDef start fill:#e8f0fe,stroke:#3b6fc4
          classDef completed fill:#e6f4ea,stroke:#2e7d32
          classDef failed fill:#fce8e6,stroke:#c62828
    "#]],
    );
}

#[test]
fn svg_is_well_formed_with_one_node_per_step() {
    for name in [
        "customer-onboarding",
        "order-fulfillment",
        "parcel-delivery",
    ] {
        let def = shipped(name);
        let text = svg::render(&Graph::from_def(&def));
        let document = roxmltree::Document::parse(&text).expect("the SVG is well-formed XML");
        let root = document.root_element();
        assert_eq!(root.tag_name().name(), "svg");
        assert_eq!(
            root.tag_name().namespace(),
            Some("http://www.w3.org/2000/svg")
        );
        let steps: Vec<&str> = root
            .descendants()
            .filter(|node| node.attribute("class") == Some("node step"))
            .map(|node| {
                node.attribute("data-step")
                    .expect("a step node names its step")
            })
            .collect();
        let expected: Vec<&str> = def.steps.iter().map(|step| step.name.as_str()).collect();
        assert_eq!(steps, expected, "{name}");
        let paths = root
            .descendants()
            .filter(|node| node.attribute("class") == Some("edge"))
            .count();
        assert_eq!(paths, Graph::from_def(&def).edges.len(), "{name}");
    }
}

#[test]
fn svg_escapes_text() {
    let def = parse_flow_file(
        std::path::Path::new("x.yaml"),
        r#"
flow: x
description: "<script>alert(1)</script> & co"
events:
  A: { topic: t, match: { type: A }, key: id }
  B: { topic: t, match: { type: B }, key: id }
start: A
steps:
  b: { await: B, when: "events.A.total > 1 && key != \"q\"" }
"#,
    )
    .expect("flow parses");
    let text = svg::render(&Graph::from_def(&def));
    assert!(!text.contains("<script>"));
    let document = roxmltree::Document::parse(&text).expect("well-formed");
    let description = document
        .descendants()
        .find(|node| node.has_tag_name("desc"))
        .and_then(|node| node.text());
    assert_eq!(description, Some("<script>alert(1)</script> & co"));
    let mermaid = mermaid::render(&Graph::from_def(&def));
    assert!(mermaid.contains("when events.A.total #gt; 1 && key != #quot;q#quot;"));
}

#[test]
fn parallel_steps_share_a_row_and_joins_sit_below_their_inputs() {
    let def = shipped("customer-onboarding");
    let graph = Graph::from_def(&def);
    let placed = layout(&graph);
    let row = |title: &str| {
        let index = graph
            .nodes
            .iter()
            .position(|node| node.title == title)
            .expect("node exists");
        placed.boxes[index]
    };
    let (address, credit, activation) =
        (row("address-check"), row("credit-check"), row("activation"));
    assert_eq!(address.layer, 1);
    assert_eq!(credit.layer, 1);
    assert_eq!(address.y, credit.y);
    assert!(
        address.x + address.width <= credit.x,
        "side by side, not overlapping"
    );
    assert_eq!(activation.layer, 2);
    assert!(activation.y >= address.y + address.height);
    assert_eq!(row("completed").layer, 3);
    assert_eq!(row("failed").layer, 3);
    assert!(
        row("completed").x < row("failed").x,
        "failed stands to the right"
    );
    for node_box in &placed.boxes {
        assert!(node_box.x + node_box.width <= placed.width);
        assert!(node_box.y + node_box.height <= placed.height);
    }
}

#[test]
fn a_join_over_rows_of_different_depth_goes_below_the_deepest() {
    // order-fulfillment: shipping comes after payment (row 2) and fraud-check (row 1).
    let graph = Graph::from_def(&shipped("order-fulfillment"));
    let placed = layout(&graph);
    let layers: Vec<(String, usize)> = graph
        .nodes
        .iter()
        .zip(&placed.boxes)
        .map(|(node, node_box)| (node.title.clone(), node_box.layer))
        .collect();
    assert_eq!(
        layers,
        [
            ("start", 0),
            ("inventory", 1),
            ("fraud-check", 1),
            ("payment", 2),
            ("shipping", 3),
            ("completed", 4),
            ("failed", 4)
        ]
        .map(|(title, layer)| (title.to_string(), layer))
    );
    let kinds = graph
        .nodes
        .iter()
        .filter(|node| matches!(node.kind, NodeKind::Step(_)));
    assert_eq!(kinds.count(), 4);
}

#[test]
fn a_flow_without_fail_events_has_no_failed_node() {
    let def = parse_flow_file(
        std::path::Path::new("y.yaml"),
        r#"
flow: y
events:
  A: { topic: t, match: { type: A }, key: id }
  B: { topic: t, match: { type: B }, key: id }
  C: { topic: t, match: { type: C }, key: id }
start: A
steps:
  b: { await: [B, C], within: 90s }
"#,
    )
    .expect("flow parses");
    let graph = Graph::from_def(&def);
    expect![[r#"
        flowchart TD
          %% flow y
          start(["start<br/>on A"])
          s0["<b>b</b><br/>await one of B | C<br/>within 1m30s<br/>on breach → alert"]
          completed(["completed"])
          start --> s0
          s0 --> completed
          class start start
          class completed completed
          classDef start fill:#e8f0fe,stroke:#3b6fc4
          classDef completed fill:#e6f4ea,stroke:#2e7d32
          classDef failed fill:#fce8e6,stroke:#c62828
    "#]]
    .assert_eq(&mermaid::render(&graph));
}
