"""Sphinx configuration for sysletloop's documentation (built with ./scripts/docs)."""

from __future__ import annotations

import sys
from pathlib import Path

from sphinx.application import Sphinx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE / "_ext"))
# Document the checkout being built, whatever is installed.
sys.path.insert(0, str(ROOT / "src"))

import sysletloop  # noqa: E402

project = "sysletloop"
author = "The sysletloop developers"
copyright = "the sysletloop developers"
release = sysletloop.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.intersphinx",
    "myst_parser",
    "moduleheader",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
templates_path: list[str] = []
html_static_path = ["_static"]
html_theme = "furo"
html_title = f"sysletloop {release}"

# The benchmark report is written into docs/benchmarks/ by the harness. Only report.md is
# a page; anything else the harness leaves there (tables, data) is not.
BENCH_REPORT = HERE / "benchmarks" / "report.md"
exclude_patterns = ["_build", "examples", "Thumbs.db", ".DS_Store"]
exclude_patterns += [
    str(p.relative_to(HERE))
    for p in (HERE / "benchmarks").glob("**/*")
    if p.is_file() and p != BENCH_REPORT
]

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"members": True}

# Offline builds (CI has no network but PyPI) cannot fetch objects.inv: intersphinx is
# used only when SYSLETLOOP_DOCS_INTERSPHINX=1, else Python references stay plain text.
intersphinx_mapping: dict[str, tuple[str, str | None]] = {}
if __import__("os").environ.get("SYSLETLOOP_DOCS_INTERSPHINX") == "1":
    intersphinx_mapping = {
        "python": ("https://docs.python.org/3", None),
        "anyio": ("https://anyio.readthedocs.io/en/stable", None),
    }

myst_heading_anchors = 3
# The benchmark report is generated Markdown; its heading levels are the harness's.
suppress_warnings = ["myst.header"]

_BENCH_PRESENT = """
.. toctree::
   :maxdepth: 2

   benchmarks/report
"""

_BENCH_ABSENT = """
.. note::

   No benchmark report in this build. The report is produced on the machine it
   describes, never written by hand: run the benchmark, then copy its report here and
   rebuild the documentation::

      ./scripts/bench --quick                 # writes bench-results/report.md
      mkdir -p docs/benchmarks
      cp -r bench-results/report.md bench-results/plots docs/benchmarks/
      ./scripts/docs
"""


def _benchmark_page(app: Sphinx, docname: str, source: list[str]) -> None:
    """Append to ``benchmarks`` either the report (when present) or how to make it."""
    if docname == "benchmarks":
        source[0] += _BENCH_PRESENT if BENCH_REPORT.is_file() else _BENCH_ABSENT


def setup(app: Sphinx) -> None:
    app.connect("source-read", _benchmark_page)
