"""What a person looks at: the final table, the roofline picture and a self-contained HTML report."""

from __future__ import annotations

import base64
import html
import io
import json
import math
from pathlib import Path

from .. import atomicfile
from ..i18n import msg
from .limits import limit_for

UNITS = {"gbs": "GB/s", "gflops": "GFLOP/s", "us": "µs/launch"}
STATUS_STYLE = {"ok": "green", "checked": "cyan", "skipped": "dim", "wrong": "red", "error": "red"}
FAMILY_MARKERS = {"stream": "o", "reduction": "s", "transpose": "^", "stencil": "D", "histogram": "v",
                  "matmul": "*", "transfer": "x", "latency": "+", "roofline": "."}


def fmt_value(r: dict, key: str = "value") -> str:
    v = r.get(key)
    if v is None:
        return ""
    return f"{v:,.2f} {UNITS[r['metric']]}" if v < 100 else f"{v:,.0f} {UNITS[r['metric']]}"


def fmt_fraction(r: dict) -> str:
    f = r.get("fraction")
    return "" if f is None else f"{f:.0%}"


def table(doc: dict, *, show_skipped: bool = False):
    """The final table as a ``rich.table.Table``."""
    from rich.markup import escape
    from rich.table import Table

    from ..tier import shown_label

    env = doc["environment"]
    title = msg("techday.bench_title", "techday bench ({mode}) on {label}", mode=doc["mode"], label=shown_label(doc["label"]))
    t = Table(title=title, caption=_caption(doc))
    columns = [msg("techday.bench_col_kernel", "kernel [impl]"), msg("techday.bench_col_on", "on"),
               msg("techday.bench_col_status", "status"), msg("techday.bench_col_median", "median ms"),
               msg("techday.bench_col_figure", "figure"), msg("techday.bench_col_best", "best"),
               msg("techday.bench_col_limit", "limit"), "±"]
    for k, col in enumerate(columns):
        t.add_column(escape(col), justify="left" if k < 3 else "right", no_wrap=True)  # "[impl]" is not markup
    for r in doc["results"]:
        if r["status"] == "skipped" and not show_skipped:
            continue
        s = r.get("seconds") or {}
        style = STATUS_STYLE.get(r["status"], "")
        on = r.get("label") or ("sim" if r["status"] == "checked" else r.get("device", "").upper())
        t.add_row(escape(f"{r['family']}.{r['kernel']} [{r['impl']}]"), on, f"[{style}]{r['status']}[/]",
                  f"{s['median'] * 1e3:.3f}" if s else "", fmt_value(r), fmt_value(r, "best"), fmt_fraction(r),
                  f"{s['spread']:.0%}" if s else "")
    del env
    return t


def _caption(doc: dict) -> str:
    if doc["tier"] == "cpu":
        return msg("techday.bench_caption_cpu",
                   "CPU tier: every figure is a CPU figure, not a GPU figure. Numba CUDA kernels were checked in the "
                   "simulator (status 'checked'), never timed.")
    lim = doc["limits"]
    parts = [msg("techday.bench_caption_limits", "limits from {source}: DRAM {gbs:.0f} GB/s", source=lim["source"],
                 gbs=lim["dram_gbs"]) if lim.get("dram_gbs") else "",
             f"FP32 {lim['fp32_gflops'] / 1e3:.1f} TFLOP/s" if lim.get("fp32_gflops") else ""]
    return ", ".join(p for p in parts if p)


def skipped_reasons(doc: dict) -> list[str]:
    """One line per distinct reason something was skipped."""
    seen: dict[str, list[str]] = {}
    for r in doc["results"]:
        if r["status"] == "skipped":
            seen.setdefault(r["reason"], []).append(f"{r['family']}.{r['kernel']}[{r['impl']}]")
    return [f"skipped {len(v)}: {reason}" for reason, v in seen.items()]


# ---------------------------------------------------------------------------------------------
# Roofline


def _device_name(doc: dict) -> str:
    gpu = doc["environment"].get("gpu")
    return gpu["name"] if gpu else f"CPU ({doc['environment'].get('cpu', '?')})"


def measured_cpu_roof(doc: dict) -> dict:
    """The CPU tier's roof, measured on the machine itself: the best STREAM triad (GB/s) of its CPU
    implementations and the best FP32 matrix product (GFLOP/s). ``None`` where the run has neither."""
    ok = [r for r in doc.get("results", []) if r.get("status") == "ok" and r.get("device") == "cpu"]
    triad = [r["value"] for r in ok if r.get("family") == "stream" and r.get("kernel") == "triad"]
    mm = [r["value"] for r in ok if r.get("family") == "matmul" and r.get("metric") == "gflops"]
    return {"gbs": max(triad) if triad else None, "gflops": max(mm) if mm else None}


# Devices drawn with a roof and a legend entry of their own; the rest are points in one grey, under one
# entry. A CPU-tier run names its CPU in its own words: 400 participants' runs under 400 CPU names drew
# 400 roofs and legend entries (22.8 s here, and a legend that covered the plot).
MAX_ROOFS = 12
# The lowest rate the roofline draws, in GFLOP/s (1 MFLOP/s: a 2-core CPU's slowest kernel of the suite
# makes about a thousand times more). The frame follows what it draws: one file timed at 1e305 s per
# repetition put a point at 1e-296 GFLOP/s and pressed every other point of a board into one line at
# the top of the picture. Points below are counted in the legend, not drawn.
MIN_PLOTTED_GFLOPS = 1e-3
OTHER = "#9a9a9a"


def roof_devices(docs: list[dict], cap: int = MAX_ROOFS) -> list[str]:
    """The devices a roofline draws on their own: the ``cap`` GPUs first (their names are the table's
    rows), then CPUs, each by the most runs, then by name."""
    counts: dict[tuple, int] = {}
    for doc in docs:
        key = (doc["tier"] != "gpu", _device_name(doc))
        counts[key] = counts.get(key, 0) + 1
    return [name for _, name in sorted(counts, key=lambda k: (k[0], -counts[k], k[1]))[:cap]]


def roofline_png(docs: list[dict], path: Path | None = None, title: str | None = None) -> bytes:
    """A log-log roofline: one roof per GPU (DRAM slope and FP32 flat, dashed tensor-core peaks), and
    every result with FLOPs as a point at (intensity, GFLOP/s). CPU-tier runs have no roof and say so.
    Past :data:`MAX_ROOFS` devices, the others are drawn as grey points under one legend entry."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8.5, 5.5), dpi=110)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    xs = [0.05, 2000.0]
    any_cpu = False
    seen_devices: dict[str, str] = {}
    roofs_drawn: set[str] = set()
    points: dict[tuple, list] = {}
    own = set(roof_devices(docs))
    others: set[str] = set()
    below = 0  # points under MIN_PLOTTED_GFLOPS, not drawn
    for doc in docs:
        name = _device_name(doc)
        if name not in own:
            others.add(name)
            any_cpu |= doc["tier"] != "gpu"
            for r in doc["results"]:
                if r.get("status") == "ok" and r.get("gflops") and r.get("intensity"):
                    if not r["gflops"] >= MIN_PLOTTED_GFLOPS:
                        below += 1
                        continue
                    group = (OTHER, FAMILY_MARKERS.get(r["family"], "o"), "black" if r["device"] == "gpu" else "none")
                    points.setdefault(group, []).append((r["intensity"], r["gflops"]))
            continue
        new_device = name not in seen_devices
        color = seen_devices.setdefault(name, colors[len(seen_devices) % len(colors)])
        lim = doc.get("limits") or {}
        any_cpu |= doc["tier"] != "gpu"
        bw, peak = lim.get("dram_gbs"), lim.get("fp32_gflops")
        if bw and peak and doc["tier"] == "gpu" and name not in roofs_drawn:
            roofs_drawn.add(name)
            grid = [10 ** (math.log10(xs[0]) + i * (math.log10(xs[1]) - math.log10(xs[0])) / 200) for i in range(201)]
            ax.plot(grid, [min(peak, x * bw) for x in grid], color=color, lw=1.5,
                    label=msg("techday.roof_gpu", "{name}: roof (DRAM {gbs:.0f} GB/s, FP32 {tflops:.1f} TFLOP/s)",
                              name=name, gbs=bw, tflops=peak / 1e3))
            for key, ls in (("tf32_gflops", ":"), ("bf16_gflops", "--")):
                if lim.get(key):
                    ax.axhline(lim[key], color=color, ls=ls, lw=0.8)
                    ax.text(xs[0], lim[key], msg("techday.roof_peak", " {name}: {kind} peak", name=name,
                                                 kind=key.split("_")[0].upper()), color=color, fontsize=6,
                            va="bottom")
        elif new_device and doc["tier"] != "gpu":
            roof = measured_cpu_roof(doc)
            if roof["gbs"] and roof["gbs"] * xs[0] >= MIN_PLOTTED_GFLOPS:
                # The CPU has no device limit in the table: its roof is what this machine measured,
                # the best STREAM triad (and the best matrix product as the flat part, if any).
                bw, top = roof["gbs"], roof["gflops"] or float("inf")
                grid = [10 ** (math.log10(xs[0]) + i * (math.log10(xs[1]) - math.log10(xs[0])) / 200)
                        for i in range(201)]
                ax.plot(grid, [min(top, x * bw) for x in grid], color=color, lw=1.2, ls="-.",
                        label=msg("techday.roof_cpu_matmul",
                                  "{name}: measured roof (STREAM triad {gbs:.1f} GB/s, matmul {gflops:.0f} GFLOP/s): "
                                  "CPU figures", name=name, gbs=bw, gflops=roof["gflops"]) if roof["gflops"] else
                        msg("techday.roof_cpu", "{name}: measured roof (STREAM triad {gbs:.1f} GB/s): CPU figures",
                            name=name, gbs=bw))
            else:
                ax.plot([], [], color=color, marker="o", ls="",
                        label=msg("techday.roof_cpu_none", "{name} (CPU figures, no roof)", name=name))
        for r in doc["results"]:
            if r.get("status") != "ok" or not r.get("gflops") or not r.get("intensity"):
                continue
            if not r["gflops"] >= MIN_PLOTTED_GFLOPS:
                below += 1
                continue
            group = (color, FAMILY_MARKERS.get(r["family"], "o"), "black" if r["device"] == "gpu" else "none")
            points.setdefault(group, []).append((r["intensity"], r["gflops"]))
    # One scatter per colour, marker and edge, not one per point: a board of 600 runs drew 26,000
    # artists and spent a minute in matplotlib.
    for (color, marker, edge), xy in points.items():
        ax.scatter([x for x, _ in xy], [y for _, y in xy], color=color, marker=marker, s=28, edgecolors=edge,
                   linewidths=0.4, zorder=3)
    if below:
        ax.plot([], [], ls="", label=msg("techday.roof_below", "{count:,} points under {mflops:g} MFLOP/s (not drawn)",
                                         count=below, mflops=MIN_PLOTTED_GFLOPS * 1e3))
    if others:
        ax.plot([], [], color=OTHER, marker="o", ls="",
                label=msg("techday.roof_others", "{count:,} other devices (points only, no roof)", count=len(others)))
    for family, marker in FAMILY_MARKERS.items():
        if any(r.get("family") == family and r.get("status") == "ok" and r.get("gflops") for d in docs for r in d["results"]):
            ax.scatter([], [], marker=marker, color="gray", label=family)
    ax.set_xscale("log")
    ax.set_yscale("log")
    if not any(len(line.get_xdata()) for line in ax.get_lines()) and not any(
            len(c.get_offsets()) for c in ax.collections):  # nothing to plot: an empty frame, not an error
        ax.set_xlim(*xs)
        ax.set_ylim(0.1, 1e5)
    ax.set_xlabel(msg("techday.roof_xlabel", "arithmetic intensity (FLOP per byte of DRAM traffic)"))
    ax.set_ylabel("GFLOP/s")
    heading = title or msg("techday.roof_title", "Roofline")
    if any_cpu:
        heading += "\n" + msg("techday.roof_cpu_heading",
                              "CPU tier: CPU figures, not GPU figures (no device roof; any roof drawn was measured here)")
    ax.set_title(heading, fontsize=10)
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=7, loc="lower right", framealpha=0.85)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    data = buf.getvalue()
    if path is not None:
        atomicfile.write_bytes(path, data)
    return data


# ---------------------------------------------------------------------------------------------
# HTML

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:1100px;color:#222}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}
td,th{padding:.25rem .6rem;border-bottom:1px solid #ddd;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#176117}.wrong,.error{color:#b00020;font-weight:600}.checked{color:#0b5d7a}.skipped{color:#888}
.banner{padding:.6rem 1rem;border-radius:6px;background:#eef5ff}.cpu{background:#fff4e0}
.bar{display:inline-block;height:.7rem;background:#4a7bd0;vertical-align:middle}
img{max-width:100%}
"""


def _bar(fraction) -> str:
    if fraction is None:
        return ""
    width = max(0.0, min(fraction, 1.05)) * 120
    return f'<span class="bar" style="width:{width:.0f}px"></span> {fraction:.0%}'


def html_report(doc: dict, png: bytes | None = None) -> str:
    """One self-contained page: banner, headline figures, results, roofline (embedded PNG), environment."""
    e = html.escape
    env = doc["environment"]
    cpu = doc["tier"] == "cpu"
    rows = []
    for r in doc["results"]:
        s = r.get("seconds") or {}
        rows.append(
            f"<tr><td>{e(r['family'])}.{e(r['kernel'])}</td><td>{e(r['impl'])}</td><td>{e(r.get('label') or '')}</td>"
            f"<td>{e(r.get('size', ''))}</td><td class='{e(r['status'])}'>{e(r['status'])}</td>"
            f"<td class='n'>{s['median'] * 1e3:.3f} ms</td>" if s else
            f"<tr><td>{e(r['family'])}.{e(r['kernel'])}</td><td>{e(r['impl'])}</td><td></td>"
            f"<td>{e(r.get('size', ''))}</td><td class='{e(r['status'])}'>{e(r['status'])}</td><td></td>")
        rows[-1] += (f"<td class='n'>{e(fmt_value(r))}</td><td class='n'>{e(fmt_value(r, 'best'))}</td>"
                     f"<td>{_bar(r.get('fraction'))}</td><td class='n'>{s['spread']:.1%}</td>" if s else
                     "<td></td><td></td><td></td><td></td>")
        warn = " ".join(r.get("warnings") or [])
        if warn:
            rows[-1] += f"<td class='wrong'>{e(warn)}</td></tr>"
            continue
        rows[-1] += f"<td>{e(r.get('reason', '') if r['status'] != 'ok' else r.get('note', ''))}</td></tr>"
    lim = doc["limits"]
    limits_rows = "".join(f"<tr><td>{e(k)}</td><td class='n'>{v:,.0f}</td></tr>" for k, v in lim.items()
                          if isinstance(v, (int, float)) and v)
    env_rows = "".join(f"<tr><td>{e(str(k))}</td><td>{e(json.dumps(v) if isinstance(v, (dict, list)) else str(v))}</td></tr>"
                       for k, v in env.items())
    headline = _headline(doc)
    img = (f'<img alt="roofline" src="data:image/png;base64,{base64.b64encode(png).decode()}">' if png else "")
    banner = ("CPU tier: every figure on this page is a CPU figure, never a GPU figure. Numba CUDA kernels were "
              "checked in the CUDA simulator at a tiny size and not timed." if cpu else
              f"GPU tier: {e(env['gpu']['name'])}, compute capability {e(env['gpu']['cc'])}, "
              f"driver {e(str(env.get('driver_version')))}, CUDA runtime {e(str(env.get('cuda_runtime')))}.")
    notes = "".join(f"<li>{e(n)}</li>" for n in doc.get("warnings", []) + doc.get("notes", []) + lim.get("notes", [])
                    + skipped_reasons(doc))
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>techday bench: {e(doc['label'])}</title><style>{_CSS}</style></head><body>
<h1>techday bench: {e(doc['label'])}</h1>
<p class="banner{' cpu' if cpu else ''}">{banner}</p>
<p>{e(doc['mode'])} run, {e(doc['started'])}, {doc.get('seconds', 0):.0f} s, run id <code>{e(doc['run_id'])}</code>,
device hash <code>{e(env.get('device_hash', ''))}</code>.</p>
<h2>Headline figures</h2><ul>{headline}</ul>{_targets_html(doc)}
<h2>Roofline</h2>{img}
<p>Points under the slanted roof are limited by memory bandwidth, points under the flat roof by arithmetic.
A point far below its roof has another limit: latency, atomics, launch overhead, or a poor kernel.</p>
<h2>Results</h2>
<table><tr><th>kernel</th><th>impl</th><th>on</th><th>size</th><th>status</th><th>median</th><th>figure</th>
<th>best</th><th>of limit</th><th>spread</th><th>note</th></tr>{''.join(rows)}</table>
<h2>Limits</h2><table>{limits_rows or '<tr><td>none (CPU tier)</td></tr>'}</table>
<h2>Notes</h2><ul>{notes}</ul>
<h2>Environment</h2><table>{env_rows}</table>
</body></html>"""


def _targets_html(doc: dict) -> str:
    rows = targets(doc)
    if not rows:
        return ""
    e = html.escape
    body = "".join(f"<tr><td>{e(t['target'])}</td><td class='n'>{t['measured']:.3g}</td>"
                   f"<td class='{'ok' if t['met'] else 'wrong'}'>{'met' if t['met'] else 'not met'}</td></tr>"
                   for t in rows)
    return f"<h2>Targets</h2><table><tr><th>target</th><th>measured</th><th></th></tr>{body}</table>"


def _best(doc: dict, family: str, kernel: str):
    ok = [r for r in doc["results"] if r["family"] == family and r["kernel"] == kernel and r["status"] == "ok"]
    if not ok:
        return None
    return min(ok, key=lambda r: r["value"]) if ok[0]["metric"] == "us" else max(ok, key=lambda r: r["value"])


def _headline(doc: dict) -> str:
    e = html.escape
    out = []
    for family, kernel, what in (("stream", "triad", "STREAM triad"), ("stream", "dot", "dot"),
                                 ("reduction", "sum", "sum"), ("transpose", "padded", "padded transpose"),
                                 ("matmul", "fp32", "FP32 matmul"), ("matmul", "bf16", "BF16 matmul"),
                                 ("latency", "empty-launch", "launch latency")):
        r = _best(doc, family, kernel)
        if r:
            frac = f", {r['fraction']:.0%} of the device limit" if r.get("fraction") is not None else ""
            out.append(f"<li>{e(what)}: <b>{e(fmt_value(r))}</b> ({e(r['impl'])}, {e(r.get('label') or '')}{frac})</li>")
    return "".join(out) or "<li>nothing was timed</li>"


def write_outputs(doc: dict, out: Path) -> dict[str, Path]:
    """results.json, roofline.png and report.html in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "results.json", "png": out / "roofline.png", "html": out / "report.html"}
    atomicfile.write_text(paths["json"], json.dumps(doc, indent=1, sort_keys=False) + "\n")
    png = roofline_png([doc], paths["png"], title=msg("techday.roof_title_of", "Roofline: {label}", label=doc["label"]))
    atomicfile.write_text(paths["html"], html_report(doc, png))
    return paths


__all__ = ["table", "roofline_png", "html_report", "write_outputs", "limit_for", "skipped_reasons"]


# ---------------------------------------------------------------------------------------------
# The targets for an H100, evaluated on any GPU run (recorded, never asserted in tests).


def _get(doc, family, kernel, impl):
    return next((r for r in doc["results"] if (r["family"], r["kernel"], r["impl"]) == (family, kernel, impl)
                 and r["status"] == "ok"), None)


def targets(doc: dict) -> list[dict]:
    """Each target with the measured figure and whether it was met (GPU tier only; [] elsewhere)."""
    if doc.get("tier") != "gpu":
        return []
    out = []

    def add(what, measured, goal, higher=True):
        if measured is not None:
            out.append({"target": what, "measured": measured, "goal": goal,
                        "met": measured >= goal if higher else measured <= goal})

    for impl in ("numba-cuda", "cupy"):
        r = _get(doc, "stream", "triad", impl)
        add(f"{impl} triad >= 88% of DRAM", r and r.get("fraction"), 0.88)
    for fam, ker in (("stream", "dot"), ("reduction", "sum")):
        for impl in ("numba-cuda", "cupy"):
            r = _get(doc, fam, ker, impl)
            add(f"{impl} {ker} >= 85% of DRAM", r and r.get("fraction"), 0.85)
    padded, copy = _get(doc, "transpose", "padded", "numba-cuda"), _get(doc, "stream", "copy", "numba-cuda")
    add("padded transpose >= 80% of copy", padded and copy and padded["value"] / copy["value"], 0.80)
    bf16 = _get(doc, "matmul", "bf16", "torch")
    add("BF16 matmul (cuBLAS) >= 80% of dense peak", bf16 and bf16.get("fraction"), 0.80)
    mine, cublas = _get(doc, "matmul", "fp32", "numba-cuda"), _get(doc, "matmul", "fp32", "cupy")
    add("Numba tiled FP32 >= 25% of cuBLAS FP32", mine and cublas and mine["value"] / cublas["value"], 0.25)
    spreads = [r["seconds"]["spread"] for r in doc["results"] if r["status"] == "ok" and r["metric"] == "gbs"
               and r["device"] == "gpu" and r["family"] in ("stream", "reduction", "transpose", "stencil")]
    add("spread < 3% on memory-bound kernels (worst)", max(spreads) if spreads else None, 0.03, higher=False)
    add("--quick under 30 s", doc.get("seconds") if doc.get("mode") == "quick" else None, 30.0, higher=False)
    return out
