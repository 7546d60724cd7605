"""GroupCoordinator: every transition of the table and every error, one scenario each."""

from __future__ import annotations

import inspect
import itertools


from broker.groups import TRANSITIONS, Event, GroupCoordinator
from broker.groups import GroupState as S
from broker.outcome import ErrorKind as E

SESSION = 10_000
REBALANCE = 20_000


def coordinator(delay=0):
    counter = itertools.count()
    return GroupCoordinator(initial_rebalance_delay_ms=delay,
                            new_uuid=lambda: f"u{next(counter)}")


def join(c, member_id="", now=0, group="g", meta=b"m", protocols=None, instance=None,
         client="c", require=False, session=SESSION, ptype="consumer"):
    return c.join(group, member_id=member_id, instance_id=instance, client_id=client,
                  session_timeout_ms=session, rebalance_timeout_ms=REBALANCE,
                  protocol_type=ptype, protocols=[("range", meta)] if protocols is None else protocols, now_ms=now,
                  require_known_member=require)


def stable_pair(c, now=0):
    """Two members a, b in a Stable generation 2 (a leads)."""
    a = join(c, now=now, client="a").response.member_id
    b_ticket = join(c, now=now, client="b")
    a_ticket = join(c, a, now=now)
    assert c.tick(now) == [b_ticket]
    gen = a_ticket.response.generation_id
    b = b_ticket.response.member_id
    sb = c.sync("g", member_id=b, generation_id=gen, now_ms=now)
    sa = c.sync("g", member_id=a, generation_id=gen, assignments=[(a, b"A"), (b, b"B")],
                now_ms=now)
    assert c.tick(now) == [sb]
    assert (sa.response.assignment, sb.response.assignment) == (b"A", b"B")
    assert c.describe("g").state is S.STABLE
    return a, b, gen


def test_table_covers_only_reachable_pairs():
    assert TRANSITIONS[(S.EMPTY, Event.MEMBER_ADDED)][0] is S.PREPARING_REBALANCE
    assert TRANSITIONS[(S.COMPLETING_REBALANCE, Event.LEADER_SYNCED)][0] is S.STABLE
    assert all(state is not S.DEAD for state, _ in TRANSITIONS)
    for _, (_, action) in TRANSITIONS.items():
        assert list(inspect.signature(action).parameters) == ["group", "now_ms", "ctx"]


def test_first_join_member_id_required_then_generation_one():
    c = coordinator()
    first = join(c, require=True, client="cli")
    assert first.done and first.response.error is E.MEMBER_ID_REQUIRED
    member = first.response.member_id
    assert member == "cli-u0"
    second = join(c, member, require=True)
    r = second.response
    assert (r.error, r.generation_id, r.leader_id, r.protocol_name) == (E.NONE, 1, member, "range")
    assert [m.member_id for m in r.members] == [member]
    assert c.describe("g").state is S.COMPLETING_REBALANCE


def test_join_validation_errors():
    c = coordinator()
    assert join(c, group="").response.error is E.INVALID_GROUP_ID
    assert join(c, session=1).response.error is E.INVALID_SESSION_TIMEOUT
    assert join(c, session=10**9).response.error is E.INVALID_SESSION_TIMEOUT
    assert join(c, protocols=[]).response.error is E.INCONSISTENT_GROUP_PROTOCOL
    assert join(c, "ghost", group="nope").response.error is E.UNKNOWN_MEMBER_ID
    join(c)
    assert join(c, ptype="connect").response.error is E.INCONSISTENT_GROUP_PROTOCOL
    assert join(c, protocols=[("roundrobin", b"")]).response.error is E.INCONSISTENT_GROUP_PROTOCOL
    assert join(c, "made-up").response.error is E.UNKNOWN_MEMBER_ID


def test_initial_delay_collects_members_into_one_generation():
    c = coordinator(delay=3000)
    t1 = join(c, now=0)
    t2 = join(c, now=1000)
    assert not t1.done and not t2.done
    assert c.tick(3999) == []  # the second arrival extended the delay to 4000
    done = c.tick(4000)
    assert set(done) == {t1, t2}
    assert t1.response.generation_id == t2.response.generation_id == 1
    assert c.next_deadline_ms() is not None


def test_protocol_vote():
    c = coordinator(delay=100)
    t1 = join(c, protocols=[("range", b""), ("roundrobin", b"")])
    t2 = join(c, protocols=[("roundrobin", b""), ("range", b"")])
    t3 = join(c, protocols=[("roundrobin", b""), ("sticky", b"")])
    c.tick(100)
    assert t1.response.protocol_name == "roundrobin"
    assert {t.response.protocol_name for t in (t1, t2, t3)} == {"roundrobin"}


def test_leader_gets_metadata_followers_do_not_and_missing_member_gets_empty():
    c = coordinator(delay=100)
    t1 = join(c, meta=b"one")
    t2 = join(c, meta=b"two")
    c.tick(100)
    leader = t1.response.leader_id
    lt, ft = (t1, t2) if t1.response.member_id == leader else (t2, t1)
    assert [m.metadata for m in lt.response.members] == [b"one", b"two"]
    assert ft.response.members == ()
    follower = ft.response.member_id
    s = c.sync("g", member_id=follower, generation_id=1, now_ms=101)
    assert not s.done
    c.sync("g", member_id=leader, generation_id=1, assignments=[(leader, b"L"), ("stranger", b"?")],
           now_ms=101)
    assert c.tick(101) == [s] and s.response.assignment == b""
    desc = c.describe("g")
    assert desc.state_name == "Stable" and desc.protocol_name == "range"
    assert {m.member_id: m.assignment for m in desc.members} == {leader: b"L", follower: b""}


def test_heartbeat_replies_by_state():
    c = coordinator()
    assert c.heartbeat("g", member_id="x", generation_id=0, now_ms=0) is E.UNKNOWN_MEMBER_ID
    assert c.heartbeat("", member_id="x", generation_id=0, now_ms=0) is E.INVALID_GROUP_ID
    a, b, gen = stable_pair(c)
    assert c.heartbeat("g", member_id=a, generation_id=gen, now_ms=1) is E.NONE
    assert c.heartbeat("g", member_id=a, generation_id=gen - 1, now_ms=1) is E.ILLEGAL_GENERATION
    assert c.heartbeat("g", member_id="nobody", generation_id=gen, now_ms=1) is E.UNKNOWN_MEMBER_ID
    join(c, now=2)  # a third member: rebalance
    assert c.describe("g").state is S.PREPARING_REBALANCE
    assert c.heartbeat("g", member_id=b, generation_id=gen, now_ms=2) is E.REBALANCE_IN_PROGRESS


def test_sync_errors():
    c = coordinator()
    a, b, gen = stable_pair(c)
    assert c.sync("g", member_id=a, generation_id=gen + 1, now_ms=1).response.error is E.ILLEGAL_GENERATION
    assert c.sync("g", member_id="x", generation_id=gen, now_ms=1).response.error is E.UNKNOWN_MEMBER_ID
    assert c.sync("nope", member_id=a, generation_id=gen, now_ms=1).response.error is E.UNKNOWN_MEMBER_ID
    assert c.sync("g", member_id=a, generation_id=gen, protocol_name="sticky",
                  now_ms=1).response.error is E.INCONSISTENT_GROUP_PROTOCOL
    # Stable: a repeated sync just returns the current assignment.
    assert c.sync("g", member_id=b, generation_id=gen, now_ms=1).response.assignment == b"B"
    join(c, now=2)
    assert c.sync("g", member_id=a, generation_id=gen, now_ms=2).response.error is E.REBALANCE_IN_PROGRESS


def test_follower_rejoin_in_stable_is_a_noop_but_changed_metadata_rebalances():
    c = coordinator()
    a, b, gen = stable_pair(c)
    again = join(c, b, now=1)
    assert again.done and again.response.generation_id == gen and again.response.members == ()
    assert c.describe("g").state is S.STABLE
    changed = join(c, b, now=2, meta=b"new")
    assert not changed.done and c.describe("g").state is S.PREPARING_REBALANCE
    lead = join(c, a, now=3)
    c.tick(3)
    assert changed.response.generation_id == lead.response.generation_id == gen + 1


def test_leader_rejoin_rebalances():
    c = coordinator()
    a, b, gen = stable_pair(c)
    t = join(c, a, now=1)
    assert not t.done and c.describe("g").state is S.PREPARING_REBALANCE


def test_pending_sync_answered_with_rebalance_when_member_joins():
    c = coordinator()
    a = join(c, client="a").response.member_id
    tb = join(c, client="b")
    join(c, a)
    c.tick(0)
    b = tb.response.member_id
    held = c.sync("g", member_id=b, generation_id=2, now_ms=1)
    join(c, client="c", now=2)  # CompletingRebalance -> PreparingRebalance
    assert c.tick(2) == [held] and held.response.error is E.REBALANCE_IN_PROGRESS


def test_rebalance_timeout_removes_members_that_did_not_rejoin():
    c = coordinator()
    a, b, gen = stable_pair(c)
    for now in range(0, REBALANCE, 3000):
        c.heartbeat("g", member_id=b, generation_id=gen, now_ms=now)
    t = join(c, a, now=1)  # leader re-joins; b never does
    assert c.tick(REBALANCE) == []
    done = c.tick(REBALANCE + 1)
    assert done == [t] and t.response.generation_id == gen + 1
    assert [m.member_id for m in c.describe("g").members] == [a]
    assert c.heartbeat("g", member_id=b, generation_id=gen, now_ms=REBALANCE + 2) is E.UNKNOWN_MEMBER_ID


def test_session_expiry_rebalances_and_last_member_empties():
    c = coordinator()
    a, b, gen = stable_pair(c)
    c.heartbeat("g", member_id=a, generation_id=gen, now_ms=SESSION - 1)
    c.tick(SESSION)  # b expired
    assert c.describe("g").state is S.PREPARING_REBALANCE
    assert [m.member_id for m in c.describe("g").members] == [a]
    c.tick(2 * SESSION)  # a too (it did not re-join either)
    d = c.describe("g")
    assert d.state is S.EMPTY and d.members == () and d.generation_id == gen + 1


def test_member_waiting_for_join_does_not_expire():
    c = coordinator()
    a, b, gen = stable_pair(c)
    t = join(c, a, now=1)
    c.heartbeat("g", member_id=b, generation_id=gen, now_ms=SESSION - 1)
    c.tick(SESSION + 5)  # a's session is over, but we are the ones holding its join
    assert a in [m.member_id for m in c.describe("g").members]
    assert not t.done


def test_sync_timeout_removes_members_that_never_sync():
    c = coordinator()
    a = join(c, client="a").response.member_id
    tb = join(c, client="b")
    join(c, a)
    c.tick(0)
    b = tb.response.member_id
    held = c.sync("g", member_id=b, generation_id=2, now_ms=1)
    for now in (9000, 18000):
        assert c.heartbeat("g", member_id=a, generation_id=2, now_ms=now) is E.NONE
    assert c.tick(REBALANCE - 1) == []
    c.tick(REBALANCE)  # the leader never synced
    assert held.response.error is E.REBALANCE_IN_PROGRESS
    assert [m.member_id for m in c.describe("g").members] == [b]


def test_leave_single_and_batch():
    c = coordinator()
    a, b, gen = stable_pair(c)
    r = c.leave("g", [(b, None), ("ghost", None)], now_ms=1)
    assert r.error is E.NONE and [m.error for m in r.members] == [E.NONE, E.UNKNOWN_MEMBER_ID]
    assert c.describe("g").state is S.PREPARING_REBALANCE
    r = c.leave("g", [(a, None)], now_ms=2)
    assert c.describe("g").state is S.EMPTY
    r = c.leave("nope", [("x", None)], now_ms=3)
    assert r.error is E.NONE and r.members[0].error is E.UNKNOWN_MEMBER_ID
    assert c.leave("", [], now_ms=3).error is E.INVALID_GROUP_ID


def test_leave_completes_a_waiting_rebalance():
    c = coordinator()
    a, b, gen = stable_pair(c)
    t = join(c, a, now=1)
    c.leave("g", [(b, None)], now_ms=2)
    assert c.tick(2) == [t] and t.response.generation_id == gen + 1


def test_pending_member_blocks_then_expires():
    c = coordinator()
    a, b, gen = stable_pair(c)
    t = join(c, a, now=1)
    pending = join(c, require=True, now=1).response.member_id
    tb = join(c, b, now=1)
    assert c.tick(2) == [] and not t.done  # everyone re-joined, but the pending one did not
    assert set(c.tick(1 + SESSION)) == {t, tb}  # it never came back
    assert len(t.response.members) == 2
    assert c.leave("g", [(pending, None)], now_ms=1).members[0].error is E.UNKNOWN_MEMBER_ID


def test_static_member_rejoins_without_rebalance_and_old_id_is_fenced():
    c = coordinator()
    t = join(c, instance="i1", client="a")
    old = t.response.member_id
    assert old.startswith("i1-")
    c.sync("g", member_id=old, generation_id=1, instance_id="i1", assignments=[(old, b"P")], now_ms=0)
    assert c.describe("g").state is S.STABLE
    back = join(c, instance="i1", now=5)  # restarted consumer: no member id
    r = back.response
    assert back.done and r.error is E.NONE and r.generation_id == 1
    assert r.member_id != old and r.leader_id == old  # old leader id, so it does not reassign
    assert c.describe("g").state is S.STABLE
    s = c.sync("g", member_id=r.member_id, generation_id=1, instance_id="i1", now_ms=6)
    assert s.response.assignment == b"P"
    assert c.heartbeat("g", member_id=old, generation_id=1, instance_id="i1", now_ms=6) is E.FENCED_INSTANCE_ID
    assert c.heartbeat("g", member_id=old, generation_id=1, instance_id="i9", now_ms=6) is E.UNKNOWN_MEMBER_ID
    r2 = c.leave("g", [(old, "i1")], now_ms=7)
    assert r2.members[0].error is E.FENCED_INSTANCE_ID
    r3 = c.leave("g", [("", "i1")], now_ms=7)
    assert r3.members[0].error is E.NONE and c.describe("g").state is S.EMPTY


def test_static_member_with_new_metadata_rebalances():
    c = coordinator()
    old = join(c, instance="i1").response.member_id
    c.sync("g", member_id=old, generation_id=1, assignments=[(old, b"P")], now_ms=0)
    back = join(c, instance="i1", meta=b"other", now=1)
    c.tick(1)
    assert back.response.generation_id == 2


def test_validate_commit():
    c = coordinator()
    v = c.validate_commit
    assert v("simple", member_id="", generation_id=-1, now_ms=0) is E.NONE
    assert [g.group_id for g in c.list_groups()] == ["simple"]
    assert v("nogroup", member_id="m", generation_id=3, now_ms=0) is E.ILLEGAL_GENERATION
    a = join(c).response.member_id
    assert v("g", member_id=a, generation_id=1, now_ms=0) is E.REBALANCE_IN_PROGRESS
    c.sync("g", member_id=a, generation_id=1, assignments=[(a, b"")], now_ms=0)
    assert v("g", member_id=a, generation_id=1, now_ms=0) is E.NONE
    assert v("g", member_id=a, generation_id=0, now_ms=0) is E.ILLEGAL_GENERATION
    assert v("g", member_id="x", generation_id=1, now_ms=0) is E.UNKNOWN_MEMBER_ID
    assert v("g", member_id="", generation_id=-1, now_ms=0) is E.UNKNOWN_MEMBER_ID
    c.leave("g", [(a, None)], now_ms=1)
    assert v("g", member_id="", generation_id=-1, now_ms=1) is E.NONE


def test_describe_list_delete():
    c = GroupCoordinator.from_config(
        type("K", (), dict(group_initial_rebalance_delay_ms=0, group_min_session_timeout_ms=6000,
                           group_max_session_timeout_ms=1_800_000)),
        existing_groups=["old"])
    assert c.describe("missing").state_name == "Dead"
    assert c.describe("old").state_name == "Empty"
    a = join(c).response.member_id
    d = c.describe("g")
    assert d.state_name == "CompletingRebalance" and d.protocol_name == "" and d.members[0].metadata == b""
    assert [(g.group_id, g.state.value) for g in c.list_groups()] == [
        ("old", "Empty"), ("g", "CompletingRebalance")]
    assert c.delete_group("g", now_ms=0) is E.NON_EMPTY_GROUP
    assert c.delete_group("x", now_ms=0) is E.GROUP_ID_NOT_FOUND
    assert c.delete_group("old", now_ms=0) is E.NONE
    assert [g.group_id for g in c.list_groups()] == ["g"]
    assert a


def test_groups_are_independent():
    c = coordinator()
    stable_pair(c)
    before = c.describe("g")
    other = join(c, group="h")
    c.tick(1)
    assert other.response.generation_id == 1
    assert c.describe("g") == before
