"""The HTTP front-end: Prometheus ``/metrics`` and a live dashboard of both modes.

A third front-end beside pull mode (Kafka) and push mode (RESP), off by default
(``[http] listen`` / ``dualmq serve --http HOST:PORT``). It serves no protocol of its own:
it reads the core's state and the other front-ends' counters at scrape time
(``view.read_view``) and shows them two ways, as Prometheus metric families
(``collector``) and as the dashboard's JSON frames (``dashboard``), over an ASGI application
(``app``) run by hypercorn's trio worker (``server``). See docs/observability.md.
"""
