"""PNG figures from a results document (matplotlib, Agg backend, no display needed).

One function per workload that has a picture worth drawing; each returns the files it
wrote, relative to the output directory, so that ``report.md`` can link them. Without
matplotlib, :func:`render` returns nothing and says why.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

Doc = Mapping[str, Any]
LAG_FLOOR_MS = 0.01  # timer lags below this are drawn at it (log axis)


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

    os.makedirs(os.path.join(out_dir, "plots"), exist_ok=True)
    figures: dict[str, list[str]] = {}
    for name, draw in DRAWERS.items():
        w = doc["workloads"].get(name)
        if w is None:
            continue
        for suffix, fig in draw(w):
            rel = os.path.join("plots", f"{name}{suffix}.png")
            fig.savefig(os.path.join(out_dir, rel), dpi=110, bbox_inches="tight")
            plt.close(fig)
            figures.setdefault(name, []).append(rel)
    return figures


def _color(i: int) -> Any:
    """A distinct colour for the i-th contender (tab20: dark shades first, then light)."""
    from matplotlib import colormaps

    return colormaps["tab20"]((2 * i) % 20 + (2 * i) // 20)


def _ok(w: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """(contender, result) pairs that have at least one measured case."""
    return [(n, r) for n, r in w["results"].items() if r.get("cases")]


def _median(r: Mapping[str, Any], case: str, metric: str) -> float | None:
    m = r.get("cases", {}).get(case, {}).get("metrics", {}).get(metric)
    return None if m is None else float(m["median"])


def _errbar(r: Mapping[str, Any], case: str, metric: str) -> tuple[float, float, float] | None:
    m = r.get("cases", {}).get(case, {}).get("metrics", {}).get(metric)
    if m is None:
        return None
    return float(m["median"]), float(m["median"] - m["min"]), float(m["max"] - m["median"])


def _bars(
    w: Mapping[str, Any], cases: list[str], metric: str, title: str, *, log: bool = False
) -> Any:
    import matplotlib.pyplot as plt

    rows = _ok(w)
    fig, ax = plt.subplots(figsize=(9, 1.5 + 0.16 * max(1, len(rows)) * len(cases)))
    height = 0.8 / max(1, len(cases))
    for j, case in enumerate(cases):
        ys, xs, lo, hi = [], [], [], []
        for i, (_, r) in enumerate(rows):
            e = _errbar(r, case, metric)
            if e is not None:
                ys.append(i + j * height)
                xs.append(e[0])
                lo.append(e[1])
                hi.append(e[2])
        ax.barh(ys, xs, height=height, xerr=[lo, hi], label=case, capsize=2)
    ax.set_yticks([i + 0.4 - height / 2 for i in range(len(rows))], [n for n, _ in rows])
    ax.invert_yaxis()
    unit = w["metrics"][metric]["unit"]
    ax.set_xlabel(f"{metric} ({unit}); bars: median, whiskers: min-max over repeats")
    if log:
        ax.set_xscale("log")
    ax.set_title(title)
    if len(cases) > 1:
        ax.legend()
    return fig


def _hashing(w: Mapping[str, Any]) -> list[tuple[str, Any]]:
    fig = _bars(w, ["cold", "warm"], "overlap", "File hashing: wall / max(read-only, hash-only)")
    ax = fig.axes[0]
    ax.axvline(1.0, color="grey", linestyle=":", label="perfect overlap")
    ax.axvline(1.15, color="red", linestyle="--", label="target 1.15")
    ax.legend()
    return [("", fig)]


def _cheap(w: Mapping[str, Any]) -> list[tuple[str, Any]]:
    cases = ["noop/seq", "noop/c64", "pread4k/seq", "pread4k/c64", "stat/seq", "stat/c64"]
    return [("", _bars(w, cases, "us_per_call", "Cost of a call that does not block", log=True))]


def _random_reads(w: Mapping[str, Any]) -> list[tuple[str, Any]]:
    import matplotlib.pyplot as plt

    depths = [int(d) for d in w["params"]["depths"]]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5))
    for name, r in _ok(w):
        pts = [(d, _median(r, f"depth{d}", "iops")) for d in depths]
        xs = [d for d, v in pts if v is not None]
        ys = [v for _, v in pts if v is not None]
        style = "k--" if name == "fio" else "-o"
        ax1.plot(xs, ys, style, label=name)
        cdf = r["cases"].get(f"depth{max(depths)}", {}).get("samples", {}).get("latency_us_cdf")
        if cdf:
            ax2.plot(cdf, [i / (len(cdf) - 1) for i in range(len(cdf))], label=name)
    ax1.set_xscale("log", base=2)
    ax1.set_xlabel("concurrent reads")
    ax1.set_ylabel("IOPS (median of repeats)")
    ax1.set_title("4 KiB O_DIRECT random reads: IOPS by concurrency")
    ax1.legend(fontsize=8)
    ax2.set_xscale("log")
    ax2.set_xlabel("read latency (us)")
    ax2.set_ylabel("fraction of reads")
    ax2.set_title(f"Latency CDF at concurrency {max(depths)} (last repeat)")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    return [("", fig)]


def _echo(w: Mapping[str, Any]) -> list[tuple[str, Any]]:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for name, r in _ok(w):
        cdf = r["cases"].get("busy", {}).get("samples", {}).get("latency_ms_cdf")
        if cdf:
            ax.plot(cdf, [i / (len(cdf) - 1) for i in range(len(cdf))], label=name)
    ax.set_xscale("log")
    ax.set_xlabel("request latency (ms)")
    ax.set_ylabel("fraction of requests")
    ax.set_title("Echo latency while the server does blocking file I/O (last repeat)")
    ax.legend(fontsize=8)
    return [("", fig)]


def _blocked(w: Mapping[str, Any]) -> list[tuple[str, Any]]:
    import matplotlib.pyplot as plt

    counts = [int(n) for n in w["params"]["counts"]]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    for metric, ax in zip(("threads", "kib_per_blocked", "cpu_us_per_call"), axes, strict=True):
        for i, (name, r) in enumerate(_ok(w)):
            for cap, style in (("uncapped", "-o"), ("default", ":x")):
                pts = [(n, _median(r, f"n{n}/{cap}", metric)) for n in counts]
                xs = [n for n, v in pts if v is not None]
                ys = [v for _, v in pts if v is not None]
                if xs:
                    ax.plot(xs, ys, style, color=_color(i), label=f"{name} ({cap})")
        ax.set_xscale("log")
        ax.set_xlabel("concurrent blocked calls")
        ax.set_ylabel(f"{metric} ({w['metrics'][metric]['unit']})")
        ax.set_title(metric)
    axes[0].legend(fontsize=6)
    fig.tight_layout()
    return [("", fig)]


def _submit(w: Mapping[str, Any]) -> list[tuple[str, Any]]:
    cases = ["buffered", "direct"]
    return [("", _bars(w, cases, "submit_p99_us", "Write submission time, p99", log=True))]


def _timer_lag(w: Mapping[str, Any]) -> list[tuple[str, Any]]:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 1, figsize=(11, 8), sharey=True)
    for case, ax in zip(("sequential", "concurrent"), axes, strict=True):
        for name, r in _ok(w):
            samples = r["cases"].get(case, {}).get("samples", {})
            if samples.get("t_s"):
                # a lag of 0 cannot be drawn on a log axis: shown at the 10 us floor
                lag = [max(v, LAG_FLOOR_MS) for v in samples["lag_ms"]]
                ax.plot(samples["t_s"], lag, label=name, lw=1)
        ax.set_yscale("log")
        ax.set_xlabel("time (s)")
        ax.set_ylabel("timer lag (ms)")
        ax.set_title(f"Timer lag over time, {case} blocking calls (last repeat)")
        ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return [("", fig)]


DRAWERS: dict[str, Callable[[Mapping[str, Any]], list[tuple[str, Any]]]] = {
    "hashing": _hashing,
    "cheap_calls": _cheap,
    "random_reads": _random_reads,
    "echo": _echo,
    "blocked_cost": _blocked,
    "kaio_submit": _submit,
    "timer_lag": _timer_lag,
}
