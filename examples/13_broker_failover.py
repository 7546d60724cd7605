"""13 - Broker failover: kill the leader of a three-broker cluster, and count what each mode kept.

What it shows:
    Lesson 06 killed the only broker. Here there are three, coordinated on etcd (which this
    lesson starts, with the brokers, as ``dualmq compare --cluster 3 broker-kill`` does), and
    the one killed is the one that matters: in pull mode the leader of the topic's partition, in
    push mode the node a (slow) subscriber is connected to. It stays down for 5 seconds.

    * Pull mode writes every record to three brokers' logs (replication factor 3) and answers
      ``acks=all`` only once the in-sync replicas have it (``min.insync.replicas=2``: one broker
      may die and writes go on). When the leader dies, another in-sync replica takes over the
      partition; producers and consumers find it and carry on. Nothing acknowledged is lost;
      what it costs is a *gap*: a stretch of time with no deliveries, while the cluster notices
      the death (a 2 s etcd lease here) and moves the leadership.
    * Push mode keeps nothing anywhere. The killed node's subscriber loses what was queued for
      it there, then is *cut off* until it subscribes on another node; whatever was published
      in between went to the subscribers that were connected, not to it. Subscribers on the
      other nodes do not notice.

    It uses compare's Python API (``dualmq.compare``), which accounts for every message.

How to run it (from the repository, once make run or make install has created .venv):
    .venv/bin/python examples/13_broker_failover.py

What you should see:
    The compare table for the scenario, then: pull, "N acknowledged, 0 lost", with the longest
    gap every consumer saw (shorter than the 5 s the leader stayed down: the partition moved);
    push, how many messages died with the killed node, how long its subscriber was cut off, and
    how many messages it missed meanwhile. Needs etcd (Debian package etcd-server).
"""

import trio

from dualmq.compare.report import ScenarioReport, render_text
from dualmq.compare.runner import run_workload
from dualmq.compare.workload import scenario
from dualmq.logging import configure_logging

NODES = 3
MESSAGES = 1500   # at 1,500 msg/s: one second of sending, the kill a quarter of the way in


def killed(reasons: dict) -> int:
    """Messages whose loss (or miss) the report puts down to the broker node killed."""
    return sum(count for reason, count in reasons.items() if "killed with SIGKILL" in reason)


async def main() -> None:
    configure_logging("console", "error")  # the brokers' expected warnings (a peer gone) are in the table
    workload = scenario("broker-kill", cluster=True, messages=MESSAGES, consumers=3)
    print(f"Starting etcd and {NODES} brokers; {MESSAGES} messages through each mode, 3 consumers; "
          f"the leader is SIGKILLed a quarter of the way in ...\n")
    report = ScenarioReport.from_run(await run_workload(workload, cluster=NODES))
    print(render_text([report]))
    pull, push = report.results["pull"], report.results["push"]
    down_s = next(e.down_s for e in workload.events if e.kind == "kill")
    every = min(c.delivered for c in pull.consumers)
    print(f"pull: {pull.acknowledged:,} acknowledged, {pull.lost} lost; each of the {len(pull.consumers)} consumers "
          f"got at least {every:,} of them ({pull.duplicated} duplicates)")
    print(f"pull: longest delivery gap {pull.longest_gap_ms:,.0f} ms, while the killed leader stayed down "
          f"{down_s * 1000:,.0f} ms")
    first = push.consumers[0]   # subscribed on node 1, the node killed
    print(f"push: {killed(first.lost_reasons):,} messages died with node 1 (queued there for its subscriber c0), "
          f"which was cut off {first.cut_off_ms:,.0f} ms and missed {killed(first.not_promised_reasons):,} more; "
          f"the subscribers on the other nodes got {', '.join(f'{c.delivered:,}' for c in push.consumers[1:])} "
          f"of {push.acknowledged:,}")
    print(f"RESULT pull_acked={pull.acknowledged} pull_lost={pull.lost} pull_min_delivered={every} "
          f"pull_gap_ms={pull.longest_gap_ms:.0f} down_ms={down_s * 1000:.0f} pull_duplicated={pull.duplicated}")
    print(f"RESULT push_acked={push.acknowledged} push_lost_in_flight={killed(first.lost_reasons)} "
          f"push_cut_off_ms={first.cut_off_ms:.0f} push_missed_while_cut_off={killed(first.not_promised_reasons)} "
          f"push_lost={push.lost}")
    print("""
Why: a replicated log survives the death of any one broker because every acknowledged record is
already in the logs of the other in-sync replicas; the controller (elected through etcd) hands
the partition to one of them, and the clients ask the cluster who leads now. The price is the
time to notice and move - the gap above - and a consumer may read again what it had not
committed yet (duplicates, never losses). Pub/sub has no log: a message exists only in the
output buffer of the node that pushes it, so a node's death takes those messages with it, and
its subscribers miss everything until they are subscribed somewhere else.

What to remember:
  * Pull, replication factor 3, acks=all, min.insync.replicas=2: a dead leader costs time
    (a gap of about the failure-detection time), never an acknowledged record.
  * acks=1 or min.insync.replicas=1 would answer before the copies exist: the leader's death
    could then take acknowledged records with it.
  * Push: a node's death loses what was in flight to its subscribers and cuts them off until
    they reconnect elsewhere; subscribers of other nodes carry on.""")


if __name__ == "__main__":
    trio.run(main)
