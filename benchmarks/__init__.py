"""The sysletloop benchmark harness: one command that shows what syslets buy.

Run it as ``python -m benchmarks run --quick`` (or ``./scripts/bench --quick``). It lives
outside the package on purpose: it measures sysletloop next to the loops and thread pools
people use today, with the same workload code for every contender.

How the harness is split (one job per module):

- ``contenders/``: an adapter per loop or library. Each turns the framework into one small
  interface, :class:`benchmarks.contenders.base.Api` (offload a blocking callable, sleep,
  run thunks concurrently, open a file for async reads and writes, serve TCP echo). A
  contender whose module is not installed is *missing*, with the reason, never dropped.
- ``workloads/``: one module per workload, each naming the claim of the paper (Zach Brown,
  "Asynchronous System Calls: Genesis and Status", 2007) that it tests. A workload measures
  one repeat of one contender and returns numbers; it never aggregates.
- ``runner.py``: warm-up, interleaved repeats (A B C A B C ...), error capture, ratios
  against stock asyncio computed within the run; writes ``results.json`` as it goes.
- ``stats.py`` (percentiles, medians with min-max, ratios), ``machine.py`` (the machine
  description stored in every result file), ``schema.py`` (the JSON schema, validated;
  prose in ``SCHEMA.md``), ``report.py`` (terminal table and ``report.md``), ``plots.py``
  (PNG figures), ``progress.py`` (a rich progress bar, plain lines without rich),
  ``cli.py`` (``run``, ``list``, ``report``).
"""
