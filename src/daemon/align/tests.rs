//! Tests of the live merge: interleaving independence, stalls, catch-up and flow control.

use super::*;
use proptest::prelude::*;

fn tp(topic: &str, partition: i32) -> TopicPartition {
    (Arc::from(topic), partition)
}

/// Feeds `reads` (partition index, offset, time) into an aligner over `n` partitions and
/// collects what it releases, draining as a shell would after every read; at the end every
/// partition is caught up and the wall clock is far ahead.
fn release_order(n: i32, reads: &[(i32, i64, Millis)], lateness: Millis) -> Vec<(i32, i64)> {
    let mut aligner: Aligner<()> = Aligner::new(lateness, 1_000_000);
    for partition in 0..n {
        aligner.assign(tp("t", partition), None);
    }
    let mut released = Vec::new();
    let mut drain = |aligner: &mut Aligner<()>, wall: Millis| {
        let clock = aligner.clock(wall);
        while let Some((partition, offset, _, ())) = aligner.pop_ready(clock) {
            released.push((partition.1, offset));
        }
    };
    for &(partition, offset, time) in reads {
        aligner.read(&tp("t", partition), offset, time, ());
        drain(&mut aligner, Millis::MAX / 2);
    }
    for partition in 0..n {
        aligner.set_caught_up(&tp("t", partition), true);
    }
    drain(&mut aligner, Millis::MAX / 2);
    released
}

#[test]
fn records_are_released_in_time_order_whatever_the_interleaving() {
    // Partition 0: times 10, 30, 50; partition 1: times 20, 40, 60.
    let p0 = [(0, 0, 10), (0, 1, 30), (0, 2, 50)];
    let p1 = [(1, 0, 20), (1, 1, 40), (1, 2, 60)];
    let first: Vec<_> = p0.iter().chain(p1.iter()).copied().collect();
    let second: Vec<_> = p1.iter().chain(p0.iter()).copied().collect();
    let expected = vec![(0, 0), (1, 0), (0, 1), (1, 1), (0, 2), (1, 2)];
    assert_eq!(release_order(2, &first, 0), expected);
    assert_eq!(release_order(2, &second, 0), expected);
}

#[test]
fn a_partition_that_has_not_told_its_position_stalls_the_clock() {
    let mut aligner: Aligner<&str> = Aligner::new(0, 100);
    aligner.assign(tp("a", 0), None);
    aligner.assign(tp("b", 0), None);
    aligner.read(&tp("a", 0), 0, 1_000, "a0");
    let clock = aligner.clock(10_000);
    assert_eq!(clock, Millis::MIN, "b has unread records at an unknown position");
    assert!(aligner.pop_ready(clock).is_none());
    aligner.read(&tp("b", 0), 0, 2_000, "b0");
    aligner.read(&tp("a", 0), 1, 1_500, "a1");
    let clock = aligner.clock(10_000);
    assert_eq!(clock, 1_500);
    assert_eq!(aligner.pop_ready(clock).map(|r| r.3), Some("a0"));
    assert!(aligner.pop_ready(clock).is_none(), "a1 is not passed yet, b0 waits until a passes 2000");
}

#[test]
fn once_caught_up_the_clock_is_the_wall_clock_less_the_lateness() {
    let mut aligner: Aligner<()> = Aligner::new(5_000, 100);
    aligner.assign(tp("a", 0), None);
    aligner.read(&tp("a", 0), 0, 100_000, ());
    aligner.set_caught_up(&tp("a", 0), true);
    assert_eq!(aligner.clock(103_000), 98_000);
    assert!(aligner.pop_ready(98_000).is_none(), "the record waits for its lateness");
    assert_eq!(aligner.clock(105_000), 100_000);
    assert!(aligner.pop_ready(100_000).is_none(), "released once the clock has passed it");
    let clock = aligner.clock(105_001);
    assert!(aligner.pop_ready(clock).is_some());
    assert_eq!(aligner.clock(1), 100_001, "the clock never moves back");
}

#[test]
fn the_engine_clock_stops_short_of_the_earliest_waiting_record() {
    let mut aligner: Aligner<()> = Aligner::new(5_000, 100);
    aligner.assign(tp("a", 0), None);
    aligner.read(&tp("a", 0), 0, 100_000, ());
    aligner.set_caught_up(&tp("a", 0), true);
    let clock = aligner.clock(104_000);
    assert_eq!(clock, 99_000);
    assert_eq!(aligner.engine_target(clock), 95_000);
}

#[test]
fn flow_control_pauses_the_partitions_ahead_and_never_the_slowest() {
    let mut aligner: Aligner<()> = Aligner::new(0, 4);
    aligner.assign(tp("a", 0), None);
    aligner.assign(tp("b", 0), None);
    aligner.read(&tp("a", 0), 0, 10, ());
    for offset in 0..4 {
        aligner.read(&tp("b", 0), offset, 100 + offset, ());
    }
    let control = aligner.flow_control();
    assert_eq!(control.pause, vec![tp("b", 0)]);
    assert!(control.resume.is_empty());
    // a moves on; b's records are released and b resumes.
    aligner.read(&tp("a", 0), 1, 1_000, ());
    aligner.set_caught_up(&tp("b", 0), true);
    let clock = aligner.clock(1_000_000);
    while aligner.pop_ready(clock).is_some() {}
    assert_eq!(aligner.flow_control().resume, vec![tp("b", 0)]);
}

#[test]
fn resume_positions_name_the_held_offsets() {
    let mut aligner: Aligner<()> = Aligner::new(0, 100);
    aligner.assign(tp("a", 0), Some(ResumePosition { offset: 10, held: vec![10], until: 11 }));
    aligner.assign(tp("b", 0), None);
    aligner.read(&tp("a", 0), 10, 500, ());
    aligner.read(&tp("a", 0), 11, 5, ());
    aligner.read(&tp("b", 0), 0, 400, ());
    let clock = aligner.clock(1_000_000);
    assert_eq!(clock, 400);
    let clock = clock + 1; // as if b had read one more record at 401
    // Only a/11 (time 5) is released; a/10 and b/0 wait.
    assert_eq!(aligner.pop_ready(clock).map(|r| r.1), Some(11));
    assert!(aligner.pop_ready(clock).is_some(), "b/0 at 400 is released too");
    let positions = aligner.resume_positions();
    let a = &positions.iter().find(|(p, _)| *p == tp("a", 0)).unwrap().1;
    assert_eq!(a, &ResumePosition { offset: 10, held: vec![10], until: 12 });
    assert!(a.already_applied(11));
    assert!(!a.already_applied(10));
    assert!(!a.already_applied(12));
}

/// Found by the kill -9 torture test: a checkpoint taken soon after a restart, before reading
/// again has reached the stored position's `until`, must still say which offsets below it were
/// applied; otherwise the next restart applies them a second time (duplicate deviations).
#[test]
fn a_checkpoint_soon_after_a_restart_keeps_what_was_applied_before() {
    let mut aligner: Aligner<()> = Aligner::new(0, 100);
    // Before the restart: offsets 10..20 read, 10 and 15 still held, the rest applied.
    let stored = ResumePosition { offset: 10, held: vec![10, 15], until: 20 };
    aligner.assign(tp("a", 0), Some(stored.clone()));
    assert_eq!(aligner.resume_positions(), vec![(tp("a", 0), stored.clone())], "nothing read yet");
    // Reading again: 10 (held before, so read), 11 and 12 (applied before, passed over).
    aligner.read(&tp("a", 0), 10, 500, ());
    aligner.passed(&tp("a", 0), 11);
    aligner.passed(&tp("a", 0), 12);
    let (_, position) = aligner.resume_positions().remove(0);
    assert_eq!(position, ResumePosition { offset: 10, held: vec![10, 15], until: 20 });
    for offset in [11, 12, 13, 14, 16, 19] {
        assert!(position.already_applied(offset), "{offset} was applied before the restart");
    }
    assert!(!position.already_applied(15), "15 was held, never applied");
    // Once 10 is applied and reading has passed the old `until`, only the new state counts.
    aligner.set_caught_up(&tp("a", 0), true);
    let clock = aligner.clock(1_000_000);
    assert!(aligner.pop_ready(clock).is_some());
    aligner.read(&tp("a", 0), 15, 600, ());
    for offset in 16..22 {
        aligner.passed(&tp("a", 0), offset);
    }
    let (_, position) = aligner.resume_positions().remove(0);
    assert_eq!(position, ResumePosition { offset: 15, held: vec![15], until: 22 });
}

proptest! {
    /// However two time-ordered partitions interleave, the release order is the same: the
    /// merge by (time, partition, offset).
    #[test]
    fn interleaving_never_changes_the_order(
        times0 in proptest::collection::vec(0i64..50, 0..12),
        times1 in proptest::collection::vec(0i64..50, 0..12),
        choices in proptest::collection::vec(any::<bool>(), 24),
        lateness in 0i64..10,
    ) {
        let mut times0 = times0; times0.sort();
        let mut times1 = times1; times1.sort();
        let p0: Vec<_> = times0.iter().enumerate().map(|(o, &t)| (0, o as i64, t)).collect();
        let p1: Vec<_> = times1.iter().enumerate().map(|(o, &t)| (1, o as i64, t)).collect();
        let mut interleaved = Vec::new();
        let (mut i, mut j) = (0, 0);
        for &pick_first in choices.iter().chain(std::iter::repeat_n(&true, 24)) {
            if (pick_first && i < p0.len()) || j >= p1.len() {
                if i < p0.len() { interleaved.push(p0[i]); i += 1; }
            } else {
                interleaved.push(p1[j]); j += 1;
            }
        }
        let mut expected: Vec<_> = p0.iter().chain(p1.iter()).map(|&(p, o, t)| (t, p, o)).collect();
        expected.sort();
        let expected: Vec<_> = expected.into_iter().map(|(_, p, o)| (p, o)).collect();
        prop_assert_eq!(release_order(2, &interleaved, lateness), expected);
    }
}

#[test]
fn without_partitions_the_clock_waits() {
    let mut aligner: Aligner<()> = Aligner::new(0, 100);
    assert_eq!(aligner.clock(1_000_000), Millis::MIN);
}

#[test]
fn a_record_from_the_future_does_not_move_its_partition_ahead() {
    // Partition 0 delivers a record stamped far in the future (held for wall-clock time 1000),
    // then its backlog goes on at 20; partition 1 has read up to 50. The clock must stay below
    // partition 0's backlog: the skewed record does not count as partition 0's position.
    let mut aligner: Aligner<&str> = Aligner::new(0, 1_000);
    aligner.assign(tp("t", 0), None);
    aligner.assign(tp("t", 1), None);
    aligner.read(&tp("t", 0), 0, 10, "p0 at 10");
    aligner.read_skewed(&tp("t", 0), 1, 1_000, "p0 from the future");
    aligner.read(&tp("t", 1), 0, 50, "p1 at 50");
    let clock = aligner.clock(1_000);
    assert_eq!(clock, 10, "partition 0's position is its believable time");
    let mut released = Vec::new();
    while let Some((.., record)) = aligner.pop_ready(clock) {
        released.push(record);
    }
    assert!(released.is_empty(), "{released:?}");
    aligner.read(&tp("t", 0), 2, 20, "p0 at 20");
    let clock = aligner.clock(1_000);
    assert_eq!(clock, 20);
    while let Some((.., record)) = aligner.pop_ready(clock) {
        released.push(record);
    }
    assert_eq!(released, ["p0 at 10"]);
    for partition in 0..2 {
        aligner.set_caught_up(&tp("t", partition), true);
    }
    let clock = aligner.clock(2_000);
    while let Some((.., record)) = aligner.pop_ready(clock) {
        released.push(record);
    }
    assert_eq!(released, ["p0 at 10", "p0 at 20", "p1 at 50", "p0 from the future"]);
}

/// Found by the kill test (`kills.rs`), without any kill: a partition that has not caught up may
/// still deliver records up to the lateness older than the newest one read from it, so the
/// engine's clock stays a lateness behind its position. Moving it to the position fired timers
/// that a replay of the merged order fires only after such a record (here a timer due at 89.5
/// would fire before the record at 99 instead of being signalled after the fact with it).
#[test]
fn the_engine_stays_a_lateness_behind_a_partition_with_unread_records() {
    let mut aligner: Aligner<()> = Aligner::new(10, 100);
    aligner.assign(tp("a", 0), None);
    aligner.read(&tp("a", 0), 0, 100, ());
    let clock = aligner.clock(1_000_000);
    assert_eq!(clock, 90);
    assert_eq!(aligner.engine_target(clock), 80, "offset 1 may be as old as 90 (engine clock 80)");
    aligner.read(&tp("a", 0), 1, 99, ());
    aligner.set_caught_up(&tp("a", 0), true);
    let clock = aligner.clock(1_000_000);
    assert_eq!(aligner.pop_ready(clock).map(|r| r.2), Some(99));
    assert_eq!(aligner.pop_ready(clock).map(|r| r.2), Some(100));
    assert_eq!(aligner.engine_target(clock), 1_000_000 - 10, "caught up: the wall clock less the lateness");
}

/// Found by the kill test: a partition paused because a slower one held the clock must resume
/// once the slower ones have caught up, even while many records wait, or the clock waits for it
/// forever.
#[test]
fn a_paused_partition_resumes_when_the_slower_ones_have_caught_up() {
    let mut aligner: Aligner<()> = Aligner::new(10, 3);
    aligner.assign(tp("a", 0), None);
    aligner.assign(tp("b", 0), None);
    aligner.read(&tp("a", 0), 0, 109, ());
    aligner.read(&tp("a", 0), 1, 109, ());
    aligner.read(&tp("b", 0), 0, 103, ());
    aligner.read(&tp("b", 0), 1, 120, ());
    assert_eq!(aligner.flow_control().pause, vec![tp("b", 0)], "b runs ahead of a");
    aligner.read(&tp("a", 0), 2, 123, ());
    aligner.set_caught_up(&tp("a", 0), true);
    let clock = aligner.clock(1_000_000);
    assert_eq!(clock, 110, "b holds the clock now");
    while aligner.pop_ready(clock).is_some() {}
    assert_eq!(aligner.waiting(), 2, "more than half the bound still waits");
    assert_eq!(aligner.flow_control().resume, vec![tp("b", 0)]);
}

/// A partition that sorts before those already known, assigned while their records wait, shifts
/// their ranks: the waiting records keep their partitions and the merged order (ties by topic,
/// partition, offset), and a record read twice while it waits is released once.
#[test]
fn a_partition_added_while_records_wait_keeps_their_partitions_and_order() {
    let mut aligner: Aligner<&str> = Aligner::new(0, 1_000);
    aligner.read(&tp("t", 1), 0, 100, "t/1@0");
    aligner.read(&tp("t", 1), 1, 50, "t/1@1");
    aligner.read(&tp("t", 1), 1, 50, "t/1@1 again");
    aligner.assign(tp("t", 0), None);
    aligner.read(&tp("t", 0), 0, 100, "t/0@0");
    aligner.read(&tp("s", 3), 0, 100, "s/3@0");
    for partition in [tp("s", 3), tp("t", 0), tp("t", 1)] {
        aligner.set_caught_up(&partition, true);
    }
    let clock = aligner.clock(1_000);
    let mut released = Vec::new();
    while let Some((partition, offset, time, record)) = aligner.pop_ready(clock) {
        released.push((partition.0.to_string(), partition.1, offset, time, record));
    }
    let expected = [
        ("t", 1, 1, 50, "t/1@1"),
        ("s", 3, 0, 100, "s/3@0"),
        ("t", 0, 0, 100, "t/0@0"),
        ("t", 1, 0, 100, "t/1@0"),
    ];
    let expected: Vec<_> = expected
        .iter()
        .map(|&(topic, partition, offset, time, record)| (topic.to_string(), partition, offset, time, record))
        .collect();
    assert_eq!(released, expected);
    assert_eq!(aligner.waiting(), 0);
}

/// Found by the kill -9 loop against tansu: a daemon restarted while its dead predecessor's
/// session ran on was given half the partitions, merged only those, moved its clock to the
/// wall clock once they were read and fired the other half's timers early. A partition of the
/// flows' topics that is not assigned here holds the clock until it is; taken away again, it
/// holds it again; one no longer listed does not.
#[test]
fn a_partition_held_by_another_member_holds_the_clock() {
    let mut aligner: Aligner<&str> = Aligner::new(0, 1_000);
    aligner.expect([tp("t", 0), tp("t", 1)]);
    aligner.assign(tp("t", 0), None);
    assert_eq!(aligner.partitions().cloned().collect::<Vec<_>>(), vec![tp("t", 0)]);
    assert_eq!(aligner.held_elsewhere(), 1);
    aligner.read(&tp("t", 0), 0, 100, "t/0@0");
    aligner.set_caught_up(&tp("t", 0), true);
    assert!(!aligner.all_caught_up(), "t/1 is not read yet");
    let clock = aligner.clock(1_000_000);
    assert!(clock < 100, "the clock waits for t/1: {clock}");
    assert!(aligner.pop_ready(clock).is_none());
    assert_eq!(aligner.engine_target(clock), clock);

    // t/1 is assigned here (after the other member's session expired), from a stored position.
    aligner.assign(tp("t", 1), Some(ResumePosition { offset: 5, held: vec![], until: 5 }));
    assert_eq!(aligner.held_elsewhere(), 0);
    assert_eq!(aligner.next_offset(&tp("t", 1)), Some(5));
    aligner.read(&tp("t", 1), 5, 50, "t/1@5");
    aligner.set_caught_up(&tp("t", 1), true);
    let clock = aligner.clock(1_000_000);
    assert_eq!(clock, 1_000_000);
    let released: Vec<&str> = std::iter::from_fn(|| aligner.pop_ready(clock).map(|(_, _, _, name)| name)).collect();
    assert_eq!(released, ["t/1@5", "t/0@0"], "in time order, across both");

    // Taken away again: it holds the clock again, and positions name only what is assigned.
    aligner.revoke(&tp("t", 1));
    assert_eq!(aligner.held_elsewhere(), 1);
    aligner.read(&tp("t", 0), 1, 2_000_000, "t/0@1");
    let clock = aligner.clock(3_000_000);
    assert!(aligner.pop_ready(clock).is_none(), "t/1 holds the clock");
    assert_eq!(
        aligner.resume_positions().into_iter().map(|(partition, _)| partition).collect::<Vec<_>>(),
        vec![tp("t", 0)]
    );
    // The topic shrank (or was recreated with one partition): t/1 no longer holds anything.
    aligner.expect([tp("t", 0)]);
    assert_eq!(aligner.held_elsewhere(), 0);
    let clock = aligner.clock(3_000_000);
    assert_eq!(aligner.pop_ready(clock).map(|(_, _, _, name)| name), Some("t/0@1"));
}

/// While a partition held elsewhere holds the clock, reading on cannot release anything: over
/// the bound every assigned partition pauses (the slowest too), and they resume once the
/// partition is assigned here and the waiting records drain below half the bound.
#[test]
fn waiting_for_another_members_partition_pauses_everything_over_the_bound() {
    let mut aligner: Aligner<()> = Aligner::new(0, 2);
    aligner.expect([tp("a", 0), tp("b", 0), tp("c", 0)]);
    aligner.assign(tp("a", 0), None);
    aligner.assign(tp("b", 0), None);
    aligner.read(&tp("a", 0), 0, 100, ());
    aligner.read(&tp("b", 0), 0, 200, ());
    let control = aligner.flow_control();
    assert_eq!(control.pause, vec![tp("a", 0), tp("b", 0)], "the slowest pauses too");
    aligner.assign(tp("c", 0), None);
    aligner.read(&tp("c", 0), 0, 300, ());
    for partition in ["a", "b", "c"] {
        aligner.set_caught_up(&tp(partition, 0), true);
    }
    let clock = aligner.clock(1_000);
    while aligner.pop_ready(clock).is_some() {}
    assert_eq!(aligner.flow_control().resume, vec![tp("a", 0), tp("b", 0)]);
}

/// Which partitions another member holds is known only once they are listed after a change of
/// assignment (the reader asks the cluster's metadata): until then the clock waits, even when
/// every assigned partition has been read.
#[test]
fn after_an_assignment_change_the_clock_waits_for_the_partitions_to_be_listed() {
    let mut aligner: Aligner<&str> = Aligner::new(0, 1_000);
    aligner.assignment_changed();
    aligner.assign(tp("t", 0), None);
    aligner.read(&tp("t", 0), 0, 100, "t/0@0");
    aligner.set_caught_up(&tp("t", 0), true);
    let clock = aligner.clock(1_000);
    assert!(aligner.pop_ready(clock).is_none(), "not listed yet: {clock}");
    aligner.expect([tp("t", 0)]);
    let clock = aligner.clock(1_000);
    assert_eq!(aligner.pop_ready(clock).map(|(_, _, _, name)| name), Some("t/0@0"));
}
