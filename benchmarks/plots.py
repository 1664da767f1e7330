"""PNG figures from a results document (matplotlib, Agg backend, no display needed).

Each figure answers one question a reader has, and its title asks it; axes say what is
measured in words, with the unit; legends sit outside the data; a contender has the same
colour in every figure. One function per figure; each returns ``(file stem, figure)``
pairs so that ``report.md`` can link the files. Without matplotlib, :func:`render` returns
nothing and :func:`available` says why.

Choices, and what they replaced:

* Many contenders on one axis become one row per contender (bars, dots or small panels):
  nine overlapping CDFs or lag traces cannot be told apart.
* Timer lag is drawn as points, one per tick. A line would join the last tick before a
  stall to the first after it, drawing a ramp of lateness that was never measured.
* Latency is shown as p50 and p99 per contender at the depth the tables use (their
  headline column), not as a CDF at another depth.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

Doc = Mapping[str, Any]
Figures = list[tuple[str, Any]]
LAG_FLOOR_MS = 0.01  # timer lags below this are drawn at it (log axis)
DPI = 110

# Stable colours: the syslet loops warm, KAIO and io_uring purple, the references
# grey/black, the peers cool. A contender not listed takes the next colour of tab10.
COLOURS: Mapping[str, str] = {
    "asyncio-inline": "#9e9e9e",
    "asyncio-to_thread": "#4d4d4d",
    "uvloop": "#1f77b4",
    "rloop": "#17becf",
    "sysletloop": "#d62728",
    "sysletloop-eager": "#ff7f0e",
    "sysletloop-away": "#e377c2",
    "sysletloop-anyio": "#8b0000",
    "sysletloop-uring": "#c51b7d",
    "kaio": "#9467bd",
    "uring": "#6a3d9a",
    "fio-io_uring": "#555555",
    "aiofiles": "#8c564b",
    "trio": "#2ca02c",
    "anyio-asyncio": "#bcbd22",
    "anyio-trio": "#7f7f00",
    "fio": "#000000",
    "sysletloop-steps": "#ff9896",
    "gevent": "#1b9e77",
}
UNITS = {"us": "µs"}


def available() -> str | None:
    """None if matplotlib can be used, else the reason."""
    try:
        import matplotlib

        matplotlib.use("Agg")
    except ImportError as exc:
        return f"matplotlib is not installed ({exc})"
    return None


def render(doc: Doc, out_dir: str) -> dict[str, list[str]]:
    """Draw every figure into ``out_dir/plots``; returns {workload: [relative paths]}."""
    if available() is not None:
        return {}
    import matplotlib.pyplot as plt

    plots_dir = os.path.join(out_dir, "plots")
    os.makedirs(plots_dir, exist_ok=True)
    # Figures an earlier harness drew under other names would sit beside today's and be
    # taken for them: ours are the PNGs named after a workload, and all are redrawn.
    for old in os.listdir(plots_dir):
        if old.endswith(".png") and old.startswith(tuple(DRAWERS)):
            os.unlink(os.path.join(plots_dir, old))
    figures: dict[str, list[str]] = {}
    for name, draw in DRAWERS.items():
        w = doc["workloads"].get(name)
        if w is None or not _ok(w):
            continue
        for stem, fig in draw(w):
            rel = os.path.join("plots", f"{stem}.png")
            fig.savefig(os.path.join(out_dir, rel), dpi=DPI)
            plt.close(fig)
            figures.setdefault(name, []).append(rel)
    return figures


# ---------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------


def colour(name: str) -> str:
    if name in COLOURS:
        return COLOURS[name]
    from matplotlib import colormaps

    r, g, b, _ = colormaps["tab10"](sum(map(ord, name)) % 10)
    return f"#{int(r * 255):02x}{int(g * 255):02x}{int(b * 255):02x}"


def unit(w: Mapping[str, Any], metric: str) -> str:
    u = str(w["metrics"][metric]["unit"])
    return UNITS.get(u, u)


def _ok(w: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """(contender, result) pairs that have at least one measured case, in table order."""
    return [(n, r) for n, r in w["results"].items() if r.get("cases")]


def _spread(r: Mapping[str, Any], case: str, metric: str) -> tuple[float, float, float] | None:
    """(median, min, max) of ``metric`` in ``case``, or None."""
    m = r.get("cases", {}).get(case, {}).get("metrics", {}).get(metric)
    if m is None or m.get("median") is None:
        return None
    return float(m["median"]), float(m["min"]), float(m["max"])


def _rows(w: Mapping[str, Any], cases: Iterable[str], metrics: Iterable[str]) -> list[str]:
    """Contenders with a value for at least one (case, metric)."""
    pairs = [(c, m) for c in cases for m in metrics]
    return [n for n, r in _ok(w) if any(_spread(r, c, m) for c, m in pairs)]


def _subtitle(fig: Any, text: str) -> None:
    """A second, smaller title line: how to read the figure."""
    fig.text(0.5, 0.0, text, ha="center", va="bottom", fontsize=8, color="#444444")


def _hbars(
    ax: Any,
    w: Mapping[str, Any],
    rows: Sequence[str],
    series: Sequence[tuple[str, str, str]],
    metric: str,
) -> None:
    """Horizontal bars, one group per contender (``rows``), one bar per (case, label,
    hatch) of ``series``; whiskers min-max. Contender names on the y axis."""
    results = w["results"]
    height = 0.8 / len(series)
    for j, (case, label, hatch) in enumerate(series):
        ys, xs, lo, hi, cs = [], [], [], [], []
        for i, name in enumerate(rows):
            s = _spread(results[name], case, metric)
            if s is None:
                continue
            ys.append(i - 0.4 + height * (j + 0.5))
            xs.append(s[0])
            lo.append(s[0] - s[1])
            hi.append(s[2] - s[0])
            cs.append(colour(name))
        ax.barh(
            ys,
            xs,
            height=height * 0.92,
            xerr=[lo, hi],
            color=cs,
            hatch=hatch,
            edgecolor="white" if not hatch else "#333333",
            linewidth=0.5,
            error_kw={"elinewidth": 0.8, "capsize": 2, "ecolor": "#333333"},
            label=label,
        )
    ax.set_yticks(range(len(rows)), rows)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.grid(axis="x", color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)


def _series_legend(
    fig: Any, series: Sequence[tuple[str, str, str]], extra: Sequence[Any] = ()
) -> None:
    """A legend for the bar series (solid, hatched), in grey, below the panels; ``extra``
    handles (reference lines) after them."""
    from matplotlib.patches import Patch

    handles = [
        Patch(facecolor="#bbbbbb", edgecolor="#333333", hatch=h, label=label)
        for _, label, h in series
    ]
    handles += list(extra)
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=9)


def _dots(
    ax: Any,
    w: Mapping[str, Any],
    rows: Sequence[str],
    case: str,
    low: str,
    high: str,
) -> None:
    """Per contender, a dot at the median of ``low`` (p50) and a diamond at ``high`` (p99),
    joined; whiskers are the min-max over repeats of each."""
    results = w["results"]
    for i, name in enumerate(rows):
        a = _spread(results[name], case, low)
        b = _spread(results[name], case, high)
        c = colour(name)
        if a and b:
            ax.plot([a[0], b[0]], [i, i], color=c, linewidth=6, alpha=0.25, solid_capstyle="butt")
        for s, marker in ((a, "o"), (b, "D")):
            if s is not None:
                ax.errorbar(
                    s[0],
                    i,
                    xerr=[[s[0] - s[1]], [s[2] - s[0]]],
                    fmt=marker,
                    color=c,
                    markersize=6,
                    ecolor="#333333",
                    elinewidth=0.8,
                    capsize=2,
                )
    ax.set_yticks(range(len(rows)), rows)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    _log_x(ax)
    ax.grid(axis="x", which="both", color="#eeeeee", linewidth=0.6)
    ax.set_axisbelow(True)


def _log_x(ax: Any) -> None:
    """A log x axis labelled with plain numbers (0.5, 2, 300), not powers of ten."""
    ax.set_xscale("log")
    _plain_log(ax.xaxis)


def _plain_log(axis: Any) -> None:
    from matplotlib.ticker import FuncFormatter, LogLocator

    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.10g}"))
    axis.set_minor_formatter(FuncFormatter(lambda v, _: ""))


def _dot_legend(fig: Any, low: str, high: str) -> None:
    from matplotlib.lines import Line2D

    handles = [
        Line2D([], [], marker="o", linestyle="", color="#555555", label=low),
        Line2D([], [], marker="D", linestyle="", color="#555555", label=high),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncol=2, fontsize=9)


def _headline_case(w: Mapping[str, Any], metric: str, default: str) -> str:
    """The case the tables show for ``metric`` (so a figure matches the tables)."""
    for case, m in w.get("headline", []):
        if m == metric:
            return str(case)
    return default


# ---------------------------------------------------------------------------------------
# One function per figure
# ---------------------------------------------------------------------------------------


def _hashing(w: Mapping[str, Any]) -> Figures:
    import matplotlib.pyplot as plt

    series = [("cold", "cold cache (file read from disk)", ""), ("warm", "warm cache", "//")]
    rows = _rows(w, ["cold", "warm"], ["overlap"])
    fig, ax = plt.subplots(figsize=(9, 1.6 + 0.42 * len(rows)), layout="constrained")
    _hbars(ax, w, rows, series, "overlap")
    perfect = ax.axvline(1.0, color="#2ca02c", linestyle=":", linewidth=1.4, zorder=3)
    target = ax.axvline(1.15, color="#d62728", linestyle="--", linewidth=1.4, zorder=3)
    perfect.set_label("1.0: perfect overlap")
    target.set_label("1.15: the target")
    ax.set_xlabel(
        "wall time ÷ the longer of reading alone and hashing alone (lower is better); "
        "whiskers: min-max over repeats"
    )
    fig.suptitle("Does reading the file overlap with hashing it?")
    _series_legend(fig, series, [perfect, target])
    return [("hashing", fig)]


def _cheap(w: Mapping[str, Any]) -> Figures:
    import matplotlib.pyplot as plt

    ops = [("noop", "a no-op call"), ("pread4k", "a cached 4 KiB os.pread"), ("stat", "os.stat")]
    series_of = [("seq", "one task", ""), ("c64", "64 tasks at once", "//")]
    cases = [f"{op}/{s}" for op, _ in ops for s, _, _ in series_of]
    rows = _rows(w, cases, ["us_per_call"])
    fig, axes = plt.subplots(
        1, 3, figsize=(13, 1.8 + 0.42 * len(rows)), sharex=True, sharey=True, layout="constrained"
    )
    for ax, (op, title) in zip(axes, ops, strict=True):
        series = [(f"{op}/{s}", label, hatch) for s, label, hatch in series_of]
        _hbars(ax, w, rows, series, "us_per_call")
        _log_x(ax)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(f"time per call ({unit(w, 'us_per_call')}, log scale)")
    fig.suptitle(
        "What does a call that does not block cost on each loop? (lower is better)\n"
        "bars: median of repeats; whiskers: min-max",
        fontsize=11,
    )
    _series_legend(fig, [("", label, hatch) for _, label, hatch in series_of])
    return [("cheap_calls", fig)]


def _random_reads(w: Mapping[str, Any]) -> Figures:
    import matplotlib.pyplot as plt

    depths = [int(d) for d in w["params"]["depths"]]
    fig, ax = plt.subplots(figsize=(10, 5.5), layout="constrained")
    for name, r in _ok(w):
        pts = [(d, _spread(r, f"depth{d}", "iops")) for d in depths]
        xs = [d for d, s in pts if s is not None]
        ys = [s[0] for _, s in pts if s is not None]
        if not xs:
            continue
        ours = name in ("sysletloop", "kaio", "uring")
        ax.plot(
            xs,
            ys,
            "--" if name.startswith("fio") else "-",
            marker="o",
            color=colour(name),
            linewidth=2.4 if ours else 1.3,
            markersize=5,
            label=name,
        )
    ax.set_xscale("log", base=2)
    ax.set_xticks(depths, [str(d) for d in depths])
    ax.set_yscale("log")
    _plain_log(ax.yaxis)
    ax.set_xlabel("reads in flight (one task per read)")
    ax.set_ylabel("reads per second (IOPS, median of repeats, log scale)")
    ax.grid(which="both", color="#eeeeee", linewidth=0.6)
    ax.set_title("How many 4 KiB O_DIRECT random reads per second, as more are in flight?")
    fig.legend(loc="outside right upper", fontsize=9, title="contender")
    figures: Figures = [("random_reads_iops", fig)]

    case = _headline_case(w, "p99_us", f"depth{max(depths)}")
    rows = _rows(w, [case], ["p50_us", "p99_us"])
    fig2, ax2 = plt.subplots(figsize=(10, 1.6 + 0.42 * len(rows)), layout="constrained")
    _dots(ax2, w, rows, case, "p50_us", "p99_us")
    ax2.set_xlabel(
        f"time per read ({unit(w, 'p99_us')}, log scale; lower is better); "
        "whiskers: min-max over repeats"
    )
    depth = case.removeprefix("depth")
    fig2.suptitle(f"How long does one read take with {depth} in flight?")
    _dot_legend(fig2, "median (p50)", "99th percentile (p99)")
    figures.append(("random_reads_latency", fig2))
    return figures


def _echo(w: Mapping[str, Any]) -> Figures:
    import matplotlib.pyplot as plt

    case = _headline_case(w, "p99_ms", "busy")
    rows = _rows(w, [case], ["p50_ms", "p99_ms"])
    fig, ax = plt.subplots(figsize=(10, 1.8 + 0.42 * len(rows)), layout="constrained")
    _dots(ax, w, rows, case, "p50_ms", "p99_ms")
    ax.set_xlabel(
        f"echo request latency ({unit(w, 'p99_ms')}, log scale; lower is better); "
        "whiskers: min-max over repeats"
    )
    fig.suptitle("Does the server keep answering quickly while it does blocking file I/O?")
    _dot_legend(fig, "median (p50)", "99th percentile (p99)")
    return [("echo", fig)]


def _blocked(w: Mapping[str, Any]) -> Figures:
    import matplotlib.pyplot as plt

    n = max(int(c) for c in w["params"]["counts"])
    series = [
        (f"n{n}/default", "each contender's default cap", ""),
        (f"n{n}/uncapped", f"cap raised to {n}", "//"),
    ]
    panels = [
        ("threads", "OS threads added", "peak growth of the process's thread count"),
        (
            "kib_per_blocked",
            "memory per blocked call (KiB)",
            "resident memory added ÷ calls blocked at once (a low cap: few calls share it)",
        ),
        ("cpu_us_per_call", "CPU time per call (µs)", "process CPU time ÷ calls"),
        ("wall_s", "wall time (s)", "until every call has returned"),
    ]
    rows = _rows(w, [c for c, _, _ in series], [m for m, _, _ in panels])
    fig, axes = plt.subplots(
        2, 2, figsize=(12, 2.5 + 0.75 * len(rows)), sharey=True, layout="constrained"
    )
    for ax, (metric, title, how) in zip(axes.flat, panels, strict=True):
        _hbars(ax, w, rows, series, metric)
        ax.set_title(f"{title}, lower is better", fontsize=10)
        ax.set_xlabel(how, fontsize=8)
    fig.suptitle(
        f"What do {n} calls blocked at once cost?\nbars: median of repeats; whiskers: min-max",
        fontsize=11,
    )
    _series_legend(fig, series)
    return [("blocked_cost", fig)]


def _submit(w: Mapping[str, Any]) -> Figures:
    import matplotlib.pyplot as plt

    series = [("buffered", "buffered write", ""), ("direct", "O_DIRECT write", "//")]
    rows = _rows(w, ["buffered", "direct"], ["submit_p99_us"])
    fig, ax = plt.subplots(figsize=(10, 1.8 + 0.42 * len(rows)), layout="constrained")
    _hbars(ax, w, rows, series, "submit_p99_us")
    _log_x(ax)
    ax.set_xlabel(
        f"99th percentile of the time the task is held before the write is under way "
        f"({unit(w, 'submit_p99_us')}, log scale; lower is better); whiskers: min-max"
    )
    fig.suptitle("How long does submitting a 4 KiB write hold the task?")
    _series_legend(fig, series)
    return [("kaio_submit", fig)]


def _timer_lag(w: Mapping[str, Any]) -> Figures:
    import matplotlib.pyplot as plt

    cases = [
        ("sequential", "one call at a time"),
        ("concurrent", "all calls started together"),
    ]
    rows = [n for n, r in _ok(w) if any(r["cases"].get(c, {}).get("samples") for c, _ in cases)]
    calls, sleep_s = w["params"]["calls"], w["params"]["sleep"]
    fig, axes = plt.subplots(
        len(rows),
        2,
        figsize=(12, 1.4 + 0.95 * len(rows)),
        sharex="col",
        sharey=True,
        squeeze=False,
        layout="constrained",
    )
    # The do-nothing baseline runs its calls one after another even when they are started
    # together, and would stretch the "together" column to its length: that column ends
    # where the slowest offloading contender ends, and later ticks are described in words.
    limits = [_timer_lag_span(w, rows, case) for case, _ in cases]
    for i, name in enumerate(rows):
        for j, (case, title) in enumerate(cases):
            ax = axes[i][j]
            samples = w["results"][name]["cases"].get(case, {}).get("samples", {})
            if samples.get("t_s"):
                lag = [max(v, LAG_FLOOR_MS) for v in samples["lag_ms"]]
                ax.plot(samples["t_s"], lag, ".", markersize=2.5, color=colour(name))
                _note_beyond(ax, samples["t_s"], samples["lag_ms"], limits[j])
            ax.set_xlim(0, limits[j])
            ax.axhline(1.0, color="#999999", linestyle=":", linewidth=0.8)
            ax.set_yscale("log")
            ax.set_ylim(LAG_FLOOR_MS / 2, 2000)
            ax.set_yticks([0.01, 1, 100], ["0.01", "1", "100"])
            ax.minorticks_off()
            ax.tick_params(labelsize=7)
            ax.text(0.01, 0.92, name, transform=ax.transAxes, fontsize=9, va="top")
            if i == 0:
                ax.set_title(f"{calls} calls of time.sleep({sleep_s}), {title}", fontsize=10)
        axes[i][0].set_ylabel("ms late", fontsize=8)
    for j in range(2):
        axes[-1][j].set_xlabel("time since the timer started (s; one point per tick)")
    fig.suptitle(
        "Does a 1 ms timer still fire on time while blocking calls run? "
        "(lateness of each tick, log scale; dotted: 1 ms)"
    )
    return [("timer_lag", fig)]


def _timer_lag_span(w: Mapping[str, Any], rows: Sequence[str], case: str) -> float:
    """The x range of a timer-lag column: the longest trace but the inline baseline's."""
    ends = [
        max(t, default=0.0)
        for name in rows
        if name != "asyncio-inline"
        for t in [w["results"][name]["cases"].get(case, {}).get("samples", {}).get("t_s", [])]
    ]
    return 1.05 * max(ends, default=1.0) or 1.0


def _note_beyond(ax: Any, ts: Sequence[float], lags: Sequence[float], limit: float) -> None:
    """Say in words what happened after ``limit`` (ticks off the right edge)."""
    beyond = [(t, v) for t, v in zip(ts, lags, strict=True) if t > limit]
    if not beyond:
        return
    t, v = max(beyond, key=lambda p: p[1])
    ax.text(
        0.98,
        0.5,
        f"runs on to {max(ts):.2f} s, off this scale;\nworst tick there: {v:,.0f} ms late "
        f"at {t:.2f} s",
        transform=ax.transAxes,
        ha="right",
        va="center",
        fontsize=8,
        color="#333333",
    )


def _fastapi(w: Mapping[str, Any]) -> Figures:
    """Per case (a column): req/s as a ratio to stock asyncio with the target, request
    latency p50/p99, and the server loop's lag p99."""
    title = (
        "FastAPI under uvicorn: how many requests, how fast, does the loop stay on time?\n"
        "top: req/s ÷ stock asyncio's (median of repeats, whiskers min-max)\n"
        "middle: request latency p50 (dot), p99 (diamond); bottom: a 1 ms timer's lag p99"
    )
    return [("fastapi", _served_figure(w, title, log_ratio=False))]


def _served_unwrapped(w: Mapping[str, Any]) -> Figures:
    """As ``fastapi``'s figure; the ratios on a log axis (a stalled server is 20 req/s)."""
    title = (
        "A served async def handler that blocks unwrapped: does the server go on serving?\n"
        "top: req/s ÷ stock asyncio's (median of rounds, whiskers min-max; log)\n"
        "middle: request latency p50 (dot), p99 (diamond); bottom: a 1 ms timer's lag p99"
    )
    return [("served_unwrapped", _served_figure(w, title, log_ratio=True))]


def _served_figure(w: Mapping[str, Any], title: str, *, log_ratio: bool) -> Any:
    """A served workload's cases in columns: req/s ratio, request latency, loop lag."""
    import matplotlib.pyplot as plt

    cases = [str(c) for c in w["params"]["cases"]]
    rows = _rows(w, cases, ["rps"])
    goal = (w.get("targets") or {}).get("cases", {})
    fig, axes = plt.subplots(
        3,
        len(cases),
        figsize=(3.0 * len(cases) + 1.5, 3.0 + 1.2 * len(rows)),
        sharey=True,
        squeeze=False,
        layout="constrained",
    )
    for j, case in enumerate(cases):
        ratio_ax, lat_ax, lag_ax = axes[0][j], axes[1][j], axes[2][j]
        _ratio_bars(ratio_ax, w, rows, case, goal.get(case, {}).get("rps_ratio"))
        if log_ratio:
            _log_x(ratio_ax)
        _dots(lat_ax, w, rows, case, "p50_ms", "p99_ms")
        _hbars(lag_ax, w, rows, [(case, "lag p99", "")], "lag_p99_ms")
        lag_target = goal.get(case, {}).get("lag_p99_ms")
        if lag_target:
            lag_ax.axvline(lag_target, color="#d62728", linestyle="--", linewidth=1.2)
        for ax in (ratio_ax, lat_ax, lag_ax):
            ax.tick_params(labelsize=7)
    for ax in axes[1]:
        ax.set_xlabel("request latency (ms, log)", fontsize=8)
    for ax in axes[2]:
        ax.set_xlabel("loop lag p99 (ms)", fontsize=8)
    fig.suptitle(title, fontsize=10)
    return fig


def _ratio_bars(
    ax: Any,
    w: Mapping[str, Any],
    rows: Sequence[str],
    case: str,
    target: float | None,
    metric: str = "rps",
    words: str = "req/s",
) -> None:
    """One bar per contender: its ``metric`` over stock asyncio's in ``case`` (median of
    the rounds, whiskers min-max), a dotted line at 1 and the target dashed."""
    for i, name in enumerate(rows):
        m = w["results"][name].get("cases", {}).get(case, {}).get("metrics", {})
        r = (m.get(metric) or {}).get("ratio")
        if r:
            med = float(r["median"])
            ax.barh(
                i,
                med,
                height=0.7,
                color=colour(name),
                xerr=[[med - float(r["min"])], [float(r["max"]) - med]],
                error_kw={"elinewidth": 0.8, "capsize": 2, "ecolor": "#333333"},
            )
    ax.axvline(1.0, color="#999999", linestyle=":", linewidth=1)
    if target:
        ax.axvline(target, color="#d62728", linestyle="--", linewidth=1.2)
    ax.set_title(f"{case}\n(target x{target:g}, dashed)" if target else case, fontsize=9)
    ax.set_yticks(range(len(rows)), rows)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.grid(axis="x", color="#dddddd", linewidth=0.6)
    ax.set_xlabel(f"{words} ÷ stock asyncio's", fontsize=8)


def _net(w: Mapping[str, Any]) -> Figures:
    """Per case (a column): the rate as a ratio to stock asyncio's with the target, and
    the absolute rate with each side's CPU share (is the loop the limit?)."""
    import matplotlib.pyplot as plt

    cases = [str(c) for c in w["params"]["cases"]]
    rows = _rows(w, cases, ["rps"])
    goal = (w.get("targets") or {}).get("cases", {})
    fig, axes = plt.subplots(
        3,
        len(cases),
        figsize=(3.2 * len(cases) + 1.5, 3.0 + 1.1 * len(rows)),
        sharey=True,
        squeeze=False,
        layout="constrained",
    )
    for j, case in enumerate(cases):
        _ratio_bars(axes[0][j], w, rows, case, goal.get(case, {}).get("rps_ratio"))
        _hbars(axes[1][j], w, rows, [(case, "req/s", "")], "rps")
        _hbars(axes[2][j], w, rows, [(case, "loop", "")], "loop_cpu")
        for i, name in enumerate(rows):  # the other side's share: a cross on the bar
            peer = _spread(w["results"][name], case, "peer_cpu")
            if peer is not None:
                axes[2][j].plot(peer[0], i, "x", color="#333333", markersize=6)
        for ax in axes[:, j]:
            ax.tick_params(labelsize=7)
    for ax in axes[1]:
        ax.set_xlabel("requests (tcp_echo: messages) per second", fontsize=8)
    for ax in axes[2]:
        ax.set_xlabel("CPU share: loop's process (bar), other side (x)", fontsize=8)
    fig.suptitle(
        "Network throughput with no blocking call: does the loop cost more than stock "
        "asyncio's?\ntop: rate ÷ stock asyncio's in the same round (median, whiskers "
        "min-max); middle: the rate\nbottom: CPU share, 1 = one core busy (the loop is "
        "the limit when its bar is near 1 and the cross is not)",
        fontsize=10,
    )
    return [("net_throughput", fig)]


def _unwrapped(w: Mapping[str, Any]) -> Figures:
    """Per case (a column): wall time as a ratio to stock asyncio's with the target, and
    the 1 ms timer's lag p99 with its target; contenders without numbers named below."""
    import matplotlib.pyplot as plt

    cases = [str(c) for c in w["params"]["cases"]]
    rows = _rows(w, cases, ["wall_s"])
    goal = (w.get("targets") or {}).get("cases", {})
    fig, axes = plt.subplots(
        2,
        len(cases),
        figsize=(5.0 * len(cases) + 1.5, 2.6 + 0.9 * len(rows)),
        sharex="row",
        sharey=True,
        squeeze=False,
        layout="constrained",
    )
    tasks, seconds = w["params"]["tasks"], w["params"]["seconds"]
    what = {
        "sleep": f"{tasks} tasks: time.sleep({seconds:g})",
        "recv": f"{tasks} tasks: socket.recv, answered after {seconds:g} s",
    }
    for j, case in enumerate(cases):
        ratio_ax, lag_ax = axes[0][j], axes[1][j]
        target = goal.get(case, {}).get("wall_ratio")
        _ratio_bars(ratio_ax, w, rows, case, target, "wall_s", "wall time")
        _log_x(ratio_ax)
        title = what.get(case, case)
        if target:
            title += f"\n(target x{target:g}, dashed)"
        ratio_ax.set_title(title, fontsize=9)
        _hbars(lag_ax, w, rows, [(case, "lag p99", "")], "lag_p99_ms")
        _log_x(lag_ax)
        lag_target = goal.get(case, {}).get("lag_p99_ms")
        if lag_target:
            lag_ax.axvline(lag_target, color="#d62728", linestyle="--", linewidth=1.2)
        lag_label = "1 ms timer's lag p99 (ms, log)"
        if lag_target:
            lag_label += f"; target {lag_target:g} ms, dashed"
        lag_ax.set_xlabel(lag_label, fontsize=8)
        for ax in (ratio_ax, lag_ax):
            ax.tick_params(labelsize=7)
    # The target's contender, or any that failed, without numbers: say so, not just omit.
    subject = (w.get("targets") or {}).get("contender")
    absent = [
        f"{name} ({r.get('status')})"
        for name, r in w["results"].items()
        if name not in rows
        and (r.get("status") == "error" or (name == subject and r.get("status") == "missing"))
    ]
    fig.suptitle(
        "Blocking calls written straight in a coroutine: do the other tasks and timers "
        "keep running?\ntop: wall time ÷ stock asyncio's (median of rounds, whiskers "
        "min-max; lower is better); bottom: lag p99 of a 1 ms timer beside them",
        fontsize=10,
    )
    if absent:
        fig.supxlabel(
            "no numbers here: " + ", ".join(absent) + "; the report says why",
            fontsize=8,
            color="#444444",
        )
    return [("unwrapped", fig)]


DRAWERS: dict[str, Callable[[Mapping[str, Any]], Figures]] = {
    "hashing": _hashing,
    "cheap_calls": _cheap,
    "random_reads": _random_reads,
    "echo": _echo,
    "blocked_cost": _blocked,
    "kaio_submit": _submit,
    "timer_lag": _timer_lag,
    "fastapi": _fastapi,
    "net_throughput": _net,
    "unwrapped": _unwrapped,
    "served_unwrapped": _served_unwrapped,
}
