"""``dualmq compare``: one workload through both delivery modes, counted honestly, side by side.

Measured scenarios (``baseline`` and the sweeps) run every role in its own process:

=================== ==========================================================================
``sweeps``          the measured scenarios: points, charts, table columns; ``SweepResult``
``sweep_runner``    every point of a sweep, ``runs`` times, in each mode; medians and spread
``measured``        the coordinator of one measured run; ``analyse``: records -> figures
``roles``           the role processes (producer, consumers) and their record files
``verdicts``        each measured scenario's verdict sentence, from its medians
``sweep_report``    their terminal table and JSON
``sweep_html``      their HTML section: a chart per claim, error bars, the table
=================== ==========================================================================

In-process scenarios (timeline events at exact points, every message accounted for):

=================== ==========================================================================
``workload``        the workload spec (attrs, TOML) and the built-in scenarios
``payload``         the 32-byte header inside every message (producer, run, sequence, time)
``runner``          running a workload per mode: the order of things, draining, progress
``side``            ``Side``, the interface between the runner and one mode
``pull_side``       ``PullSide``: pull mode's producers/consumers (``dualmq.pull``)
``push_side``       ``PushSide``: push mode's publishers/subscribers (``dualmq.push``)
``state``           ``ModeRun``, ``ConsumerState``: what one mode's tasks share
``timeline``        the event timeline (joins, restarts, kills, bursts) and pacing
``brokers``         embedded, subprocess (``dualmq.process``) or external brokers
``accounting``      sent / acknowledged / delivered / lost / duplicated / reordered, latency
``summary``         per mode: sent, delivered, why the rest were not; the verdict sentence
``report``          the terminal table and the JSON document (schema in its docstring)
``html``            the self-contained HTML page (summary first, inline SVG charts)
``command``         the ``compare`` subcommand (``add_parsers``, ``run_command``)
=================== ==========================================================================

Part of the SDK side: it imports the public ``dualmq.push``, ``dualmq.pull``, ``dualmq.errors``,
``dualmq.process`` and ``dualmq.embedded`` only, and runs a broker subprocess when a scenario
restarts or kills it. The arrows run one way: ``runner`` -> ``side`` <- ``pull_side`` /
``push_side``, all of them -> ``state``, ``timeline``.
"""
