"""The cluster's model, pure (no I/O, no clock): etcd's keys, what they hold, replica assignment.

``modes/cluster/`` does the I/O around it (the etcd client, the broker's lease, the
controller election, the watch); docs/cluster.md describes both.
"""

from broker.cluster.assignment import assign_replicas
from broker.cluster.model import (
    BrokerInfo, ClusterDataInvalid, CoordinationError, ClusterView, InvalidReplicationFactor, NotController, PartitionState,
    TopicAssignment,
)

__all__ = ["BrokerInfo", "ClusterDataInvalid", "CoordinationError", "ClusterView", "InvalidReplicationFactor", "NotController",
           "PartitionState", "TopicAssignment", "assign_replicas"]
