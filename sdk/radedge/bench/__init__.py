"""The latency benchmark behind ``radedge bench``: cold start, warm rounds per stage from the
file's bytes to the flags and to the outputs, per transfer syntax, concurrency, and the research
pipeline radedge replaces timed in the same rounds (``runner``, ``baseline``); the statistics
(``stats``), the warnings (``checks``) and the report (``report``: bench.json, bench.html, the
printed table).

Importing this package loads nothing heavy: ``radedge.cli`` reads the defaults below while
building its parser.
"""

#: Warm rounds per input by default, and with ``--quick``.
DEFAULT_ROUNDS = 30
QUICK_ROUNDS = 3
