"""``dualmq compare``: one workload through both delivery modes, counted honestly, side by side.

=================== ==========================================================================
``workload``        the workload spec (attrs, TOML) and the built-in scenarios
``payload``         the 32-byte header inside every message (run, producer, sequence, time)
``runner``          running a workload per mode: pacing, the event timeline, draining
``pull_side``       pull mode's producers/consumers (``dualmq.pull``)
``push_side``       push mode's publishers/subscribers (``dualmq.push``)
``brokers``         embedded, subprocess (restartable, killable) or external brokers
``accounting``      sent / acknowledged / delivered / lost / duplicated / reordered, latency
``report``          the terminal table and the JSON document (schema in its docstring)
``html``            the self-contained HTML page (inline SVG charts)
``command``         the ``compare`` subcommand (``add_parsers``, ``run_command``)
=================== ==========================================================================

Part of the SDK side: it imports ``dualmq.push``, ``dualmq.pull``, ``dualmq.embedded`` and
``wire/`` only, and runs a broker subprocess with ``python -m dualmq serve`` when a scenario
restarts or kills it.
"""
