"""The retained, segmented log at the core of pull mode.

The batches it stores are Kafka's RecordBatch v2, byte for byte; their one definition
(header layout, validation, stamping ``baseOffset``) is ``wire.kafka.batch``, the only ``wire``
module the core imports. The log never looks inside a batch's records.

Map of this package (read in this order):

* ``segment.py`` — one segment: the ``.log`` file of whole batches and its sparse ``.index`` and
  ``.timeindex``; header walks, positioned reads.
* ``file_cache.py`` — the bounded LRU of open ``.log`` descriptors that sealed segments read
  through, so retained segments cost no file descriptor while idle.
* ``io_errors.py`` / ``storage.py`` — the rate-limited I/O error reporter, and ``LogStorage``,
  what all partitions of a broker share (the file cache and the reporter).
* ``verify.py`` — the read-only walk over a partition's files: every batch's offsets, lengths
  and CRC, the chain between segments, the index files. Shared by recovery and ``check``.
* ``recovery.py`` — opening a partition directory after a crash: apply what the walk decided
  (cut at the first damage, drop what follows, rebuild indexes), with a log line for each.
* ``check.py`` — ``dualmq check``: the same walk, reported, nothing changed.
* ``epochs.py`` — the leader-epoch cache: where each leader epoch starts in the log, its
  ``leader-epoch-checkpoint`` file, and the OffsetForLeaderEpoch answer.
* ``tickets.py`` — what the log hands a front-end to wait on: data tickets (long polls) and
  fsync jobs a worker thread may run.
* ``partition_log.py`` — ``PartitionLog``: append, read, roll, retention, flush, long-poll waits,
  truncation (``truncate_to``).
"""
