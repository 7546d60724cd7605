"""04 - Consumer groups: parallelism by partitions, fan-out by groups, rebalancing.

What it shows:
    A topic is split into partitions; a consumer *group* shares them out, so each record is
    processed by exactly one member of the group - that is how pull mode scales consumers.
    A second group reads the same topic independently and gets every record too (fan-out,
    like every subscriber in push mode getting every message). When a member leaves, the
    group coordinator rebalances: the survivors take over its partitions and continue from
    the committed offsets.

How to run it (from the repository, once make run or make install has created .venv):
    .venv/bin/python examples/04_consumer_groups.py

What you should see:
    Group "billing": 3 consumers with 2 of the 6 partitions each, 60 records in total between
    them (the key decides the partition, so the split is uneven) and no record twice; group "analytics": 1 consumer with all 60; after billing-3 leaves, two
    consumers with 3 partitions each share the next 60 records. Then "What to remember".
"""

import collections

import trio

import dualmq.embedded
from dualmq.logging import configure_logging
from dualmq.pull import Admin, Consumer, Producer

TOPIC, PARTITIONS, BATCH = "orders", 6, 60
received = collections.defaultdict(list)    # consumer name -> values it processed
assignment: dict[str, list] = {}            # consumer name -> partitions it holds now


async def member(kafka: str, group: str, name: str, stop: trio.CancelScope, task_status=trio.TASK_STATUS_IGNORED):
    def assigned(partitions):
        assignment[name] = sorted(p for _, p in partitions)

    async with Consumer(kafka, group_id=group, topics=[TOPIC], auto_offset_reset="earliest",
                        heartbeat_interval_ms=100, on_assigned=assigned, client_id=name) as consumer:
        task_status.started()
        with stop:  # cancelling `stop` ends the loop; leaving `async with` commits, then LeaveGroup
            async for record in consumer:
                received[name].append(record.value)
    assignment.pop(name, None)


async def wait_until(condition, what: str) -> None:
    with trio.move_on_after(20):
        while not condition():
            await trio.sleep(0.05)
        return
    raise RuntimeError(f"timed out waiting for {what}: assignment={assignment} "
                       f"received={ {n: len(v) for n, v in received.items()} }")


async def produce(kafka: str, start: int) -> None:
    async with Producer(kafka) as producer:
        for i in range(start, start + BATCH):
            await producer.enqueue(TOPIC, f"order-{i}".encode(), key=f"customer-{i % 13}".encode())


def show(names) -> None:
    for name in names:
        print(f"  {name}: partitions {assignment.get(name)}  records {len(received[name])}")


async def main() -> None:
    configure_logging("console", "warning")  # warnings and errors of the broker and the SDK, on stderr, for a human
    async with dualmq.embedded.broker(kafka={"group_initial_rebalance_delay_ms": 500}) as broker:
        async with Admin(broker.kafka) as admin:
            await admin.create_topics(TOPIC, partitions=PARTITIONS)
        billing = ["billing-1", "billing-2", "billing-3"]
        stops = {name: trio.CancelScope() for name in [*billing, "analytics-1"]}
        async with trio.open_nursery() as nursery:
            for name in billing:  # all three start together, so they join the same first generation
                nursery.start_soon(member, broker.kafka, "billing", name, stops[name])
            await wait_until(lambda: all(len(assignment.get(n, [])) == 2 for n in billing), "3-way split")
            await nursery.start(member, broker.kafka, "analytics", "analytics-1", stops["analytics-1"])
            await produce(broker.kafka, 0)
            total = lambda names: sum(len(received[n]) for n in names)  # noqa: E731
            await wait_until(lambda: total(billing) >= BATCH and total(["analytics-1"]) >= BATCH, "first batch")
            await trio.sleep(0.2)  # anything extra (a duplicate) would show up now
            print(f"{BATCH} records produced to {PARTITIONS} partitions. Group 'billing', 3 members:")
            show(billing)
            unique = len(set().union(*(received[n] for n in billing)))
            print(f"  together: {total(billing)} records, {unique} distinct -> each processed once")
            print("Group 'analytics', 1 member, same topic:")
            show(["analytics-1"])
            print(f"RESULT billing_total={total(billing)} billing_distinct={unique} "
                  f"analytics_total={total(['analytics-1'])} "
                  f"billing_min_partitions={min(len(assignment[n]) for n in billing)}")

            print("\nbilling-3 leaves the group (clean shutdown: commit, then LeaveGroup) ...")
            stops["billing-3"].cancel()
            survivors = billing[:2]
            await wait_until(lambda: "billing-3" not in assignment
                             and all(len(assignment.get(n, [])) == 3 for n in survivors), "rebalance")
            before = {n: len(received[n]) for n in survivors}
            await produce(broker.kafka, BATCH)
            await wait_until(lambda: sum(len(received[n]) - before[n] for n in survivors) >= BATCH, "second batch")
            await trio.sleep(0.2)
            print(f"after the rebalance, {BATCH} more records:")
            for n in survivors:
                print(f"  {n}: partitions {assignment[n]}  new records {len(received[n]) - before[n]}")
            new = sum(len(received[n]) - before[n] for n in survivors)
            print(f"RESULT after_leave_members={len(survivors)} after_leave_total={new} "
                  f"after_leave_partitions={sum(len(assignment[n]) for n in survivors)}")
            for scope in stops.values():
                scope.cancel()
    print("""
Partitions are the unit of parallelism: a group can have at most as many busy members as the
topic has partitions, and within a partition order is kept. Records with the same key land in
the same partition, so one customer's orders are handled in order by one member. Groups are
independent readers of the same log: adding "analytics" cost "billing" nothing.

What to remember:
  * Within a group: each partition has one owner -> each record processed once, in parallel.
  * Across groups: every group reads everything (fan-out), each with its own committed offsets.
  * Members come and go; the coordinator rebalances and the survivors resume from commits.
  * Push mode fans out to every subscriber but has no way to *split* work among subscribers.""")


if __name__ == "__main__":
    trio.run(main)
