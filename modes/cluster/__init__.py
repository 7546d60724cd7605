"""Cluster mode's I/O: the etcd client, a broker's membership, the controller and the topic watch."""
