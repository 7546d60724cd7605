"""One module per Kafka API served by pull mode; importing this package registers them all.

Each module opens with what the API does, how we answer it, and per-version notes (the way
franz-go's kfake does). The versions each module registers are GUIDE §3.4's table.
"""

from modes.pull.api import (  # noqa: F401  (imported for their registrations)
    api_versions,
    create_partitions,
    create_topics,
    delete_groups,
    delete_topics,
    describe_configs,
    describe_groups,
    fetch,
    find_coordinator,
    heartbeat,
    init_producer_id,
    join_group,
    leave_group,
    list_groups,
    list_offsets,
    metadata,
    offset_commit,
    offset_fetch,
    offset_for_leader_epoch,
    produce,
    sync_group,
)
