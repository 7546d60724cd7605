"""The broker core: retained log, topics, consumer groups, channels and subscribers.

Protocol-free and clock-free: nothing here imports ``wire`` or ``modes``, and time arrives as
an argument (``now_ms``), so both front-ends share it and tests drive it deterministically.
"""
