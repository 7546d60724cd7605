"""The two delivery front-ends: ``modes.pull`` (Kafka protocol) and ``modes.push`` (RESP).

They own the trio tasks, sockets and the clock, and map wire events onto the broker core.
"""
