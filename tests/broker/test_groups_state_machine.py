"""A hypothesis state machine driving the coordinator like real consumers would.

Two groups, three client slots each. Clients join (JoinGroup v4+ style, so with the
MEMBER_ID_REQUIRED round trip), sync (the leader runs a real range assignor over the
consumer-protocol subscription and assignment bytes), heartbeat, leave, heartbeat with a stale
generation or a made-up member id, and time moves on (ticking the coordinator) by small and
large steps.

Invariants: a Stable group's current members share out every partition exactly once; a
generation, once superseded, never becomes Stable again (at most one Stable generation);
stale generations and unknown members get ILLEGAL_GENERATION / UNKNOWN_MEMBER_ID; a request to
one group never changes the other.
"""

from __future__ import annotations

import struct

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from broker.groups import GroupCoordinator, JoinTicket, SyncTicket
from broker.groups import GroupState as S
from broker.outcome import ErrorKind as E

GROUPS = ["g1", "g2"]
SLOTS = range(3)
PARTITIONS = 5
TOPIC = b"t"
SESSION = 6000
REBALANCE = 8000


def subscription(topic: bytes) -> bytes:
    return struct.pack(">hi", 0, 1) + struct.pack(">h", len(topic)) + topic + struct.pack(">i", 0)


def encode_assignment(partitions: list[int]) -> bytes:
    out = struct.pack(">hi", 0, 1) + struct.pack(">h", len(TOPIC)) + TOPIC
    out += struct.pack(">i", len(partitions)) + b"".join(struct.pack(">i", p) for p in partitions)
    return out + struct.pack(">i", 0)


def decode_assignment(data: bytes) -> list[int]:
    if not data:
        return []
    _, topics = struct.unpack_from(">hi", data, 0)
    pos, found = 6, []
    for _ in range(topics):
        (n,) = struct.unpack_from(">h", data, pos)
        pos += 2 + n
        (count,) = struct.unpack_from(">i", data, pos)
        pos += 4
        found += list(struct.unpack_from(f">{count}i", data, pos))
        pos += 4 * count
    return found


def range_assign(members) -> list[tuple[str, bytes]]:
    """Kafka's range assignor for one topic: sorted members, contiguous chunks."""
    ids = sorted(m.member_id for m in members)
    for m in members:
        assert TOPIC in m.metadata  # the leader really did get everyone's subscription
    per, extra = divmod(PARTITIONS, len(ids))
    out, start = [], 0
    for i, member_id in enumerate(ids):
        n = per + (1 if i < extra else 0)
        out.append((member_id, encode_assignment(list(range(start, start + n)))))
        start += n
    return out


class Client:
    def __init__(self):
        self.member_id = ""
        self.generation = -1
        self.join_response = None
        self.pending: JoinTicket | SyncTicket | None = None


class GroupMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.c = GroupCoordinator(initial_rebalance_delay_ms=0)
        self.now = 0
        self.clients = {(g, s): Client() for g in GROUPS for s in SLOTS}
        self.highest_generation = {g: 0 for g in GROUPS}
        self.stable_generation = {g: None for g in GROUPS}

    # -------------------------------------------------------------- helpers

    def other(self, group):
        return GROUPS[1 - GROUPS.index(group)]

    def on_group(self, group, fn):
        """Run a request to ``group`` and check the other group did not notice."""
        before = self.c.describe(self.other(group))
        result = fn()
        assert self.c.describe(self.other(group)) == before
        return result

    def settle(self, ticket, client):
        if ticket.done:
            self.absorb(ticket, client)
        else:
            client.pending = ticket
        for done in self.c.tick(self.now):
            owner = next(cl for cl in self.clients.values() if cl.pending is done)
            owner.pending = None
            self.absorb(done, owner)

    def absorb(self, ticket, client):
        r = ticket.response
        if isinstance(ticket, JoinTicket):
            if r.error is E.MEMBER_ID_REQUIRED:
                client.member_id = r.member_id
            elif r.error is E.NONE:
                client.member_id, client.generation, client.join_response = (
                    r.member_id, r.generation_id, r)
                assert r.generation_id >= self.highest_generation[ticket.group_id]
            elif r.error is E.UNKNOWN_MEMBER_ID:
                client.__init__()
            else:
                assert r.error is E.REBALANCE_IN_PROGRESS, r
        else:
            if r.error is E.NONE:
                mine = decode_assignment(r.assignment)
                d = self.c.describe(ticket.group_id)
                if d.state is S.STABLE and d.generation_id == client.generation:
                    me = next(m for m in d.members if m.member_id == client.member_id)
                    assert decode_assignment(me.assignment) == mine
            elif r.error is E.UNKNOWN_MEMBER_ID:
                client.__init__()
            else:
                assert r.error in (E.REBALANCE_IN_PROGRESS, E.ILLEGAL_GENERATION), r

    def members(self, group):
        return {m.member_id for m in self.c.describe(group).members}

    # -------------------------------------------------------------- rules

    @rule(group=st.sampled_from(GROUPS), slot=st.sampled_from(SLOTS))
    def join(self, group, slot):
        client = self.clients[(group, slot)]
        if client.pending is not None:
            return
        ticket = self.on_group(group, lambda: self.c.join(
            group, member_id=client.member_id, instance_id=None, client_id=f"c{slot}",
            session_timeout_ms=SESSION, rebalance_timeout_ms=REBALANCE,
            protocol_type="consumer", protocols=[("range", subscription(TOPIC))],
            now_ms=self.now, require_known_member=True))
        self.settle(ticket, client)

    @rule(group=st.sampled_from(GROUPS), slot=st.sampled_from(SLOTS))
    def sync(self, group, slot):
        client = self.clients[(group, slot)]
        r = client.join_response
        if client.pending is not None or r is None:
            return
        assignments = range_assign(r.members) if r.members else []
        ticket = self.on_group(group, lambda: self.c.sync(
            group, member_id=client.member_id, generation_id=client.generation,
            assignments=assignments, now_ms=self.now))
        self.settle(ticket, client)

    @rule(group=st.sampled_from(GROUPS), slots=st.lists(st.sampled_from(SLOTS), min_size=1))
    def cooperative_round(self, group, slots):
        """Several consumers do what well-behaved clients do: (re-)join, then sync.

        Without this rule random steps rarely line up into a multi-member Stable group."""
        for _ in range(2):  # twice: the MEMBER_ID_REQUIRED round trip
            for slot in slots:
                self.join(group, slot)
        for slot in sorted(slots, key=lambda s: self.clients[(group, s)].join_response is not None
                           and bool(self.clients[(group, s)].join_response.members)):
            self.sync(group, slot)

    @rule(group=st.sampled_from(GROUPS), slot=st.sampled_from(SLOTS), stale=st.booleans())
    def heartbeat(self, group, slot, stale):
        client = self.clients[(group, slot)]
        if client.pending is not None or not client.member_id:
            return
        known = client.member_id in self.members(group)
        generation = client.generation - 1 if stale else client.generation
        current = self.c.describe(group).generation_id
        answer = self.on_group(group, lambda: self.c.heartbeat(
            group, member_id=client.member_id, generation_id=generation, now_ms=self.now))
        if not known:
            assert answer is E.UNKNOWN_MEMBER_ID
            client.__init__()
        elif generation != current:
            assert answer is E.ILLEGAL_GENERATION
        else:
            assert answer in (E.NONE, E.REBALANCE_IN_PROGRESS)

    @rule(group=st.sampled_from(GROUPS), name=st.sampled_from(["", "ghost", "c0-u"]),
          generation=st.integers(-1, 5))
    def heartbeat_from_stranger(self, group, name, generation):
        answer = self.on_group(group, lambda: self.c.heartbeat(
            group, member_id=name, generation_id=generation, now_ms=self.now))
        assert answer is E.UNKNOWN_MEMBER_ID

    @rule(group=st.sampled_from(GROUPS), slot=st.sampled_from(SLOTS))
    def stale_commit(self, group, slot):
        client = self.clients[(group, slot)]
        if client.member_id not in self.members(group):
            return
        d = self.c.describe(group)
        answer = self.on_group(group, lambda: self.c.validate_commit(
            group, member_id=client.member_id, generation_id=d.generation_id - 1,
            now_ms=self.now))
        assert answer is E.ILLEGAL_GENERATION

    @rule(group=st.sampled_from(GROUPS), slot=st.sampled_from(SLOTS))
    def leave(self, group, slot):
        client = self.clients[(group, slot)]
        if client.pending is not None or not client.member_id:
            return
        self.on_group(group, lambda: self.c.leave(group, [(client.member_id, None)],
                                                  now_ms=self.now))
        client.__init__()
        for done in self.c.tick(self.now):
            owner = next(cl for cl in self.clients.values() if cl.pending is done)
            owner.pending = None
            self.absorb(done, owner)

    @rule(dt=st.sampled_from([1, 500, 3000, SESSION, REBALANCE + 1]))
    def advance(self, dt):
        self.now += dt
        for done in self.c.tick(self.now):
            owner = next(cl for cl in self.clients.values() if cl.pending is done)
            owner.pending = None
            self.absorb(done, owner)

    # -------------------------------------------------------------- invariants

    @invariant()
    def stable_groups_share_every_partition_once(self):
        for group in GROUPS:
            d = self.c.describe(group)
            assert d.generation_id >= self.highest_generation[group]
            self.highest_generation[group] = d.generation_id
            if d.state is not S.STABLE:
                continue
            # At most one Stable generation: Stable may only move forward.
            previous = self.stable_generation[group]
            assert previous is None or d.generation_id >= previous
            self.stable_generation[group] = d.generation_id
            owned = sorted(p for m in d.members for p in decode_assignment(m.assignment))
            assert owned == list(range(PARTITIONS)), (d, owned)

    @invariant()
    def no_ticket_is_lost(self):
        for client in self.clients.values():
            if client.pending is not None:
                assert not client.pending.done


TestGroupMachine = GroupMachine.TestCase
TestGroupMachine.settings = settings(max_examples=200, stateful_step_count=50, deadline=None)
