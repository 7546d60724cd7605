"""The retained, segmented log at the core of pull mode.

Map of this package (read in this order):

* ``batch.py`` — the RecordBatch v2 header: layout, validation (length, magic, CRC-32C, size
  limit), stamping ``baseOffset``; the log never looks inside a batch's records.
* ``segment.py`` — one segment: the ``.log`` file of whole batches and its sparse ``.index`` and
  ``.timeindex``; header walks, positioned reads.
* ``recovery.py`` — opening a partition directory after a crash: verify the tail batch by batch,
  cut what is torn or corrupt, rebuild indexes that do not check out.
* ``partition_log.py`` — ``PartitionLog``: append, read, roll, retention, flush, long-poll waits.
"""
