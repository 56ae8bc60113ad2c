"""What the commands show and write: a progress bar, per-epoch tables, metrics files, plots."""

from __future__ import annotations

import csv
import json
import os
import sys
import textwrap
import warnings

from .engine import Reporter, RunResult

__all__ = [
    "ProgressReporter",
    "format_table",
    "epoch_table",
    "write_metrics",
    "plot_panels",
    "build_figure",
    "loss_panels",
    "same_curves",
    "PNG_MAGIC",
]

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
EPOCH_COLUMNS = ("epoch", "train_loss", "test_loss", "test_accuracy", "lr", "seconds")
EPOCH_HEADERS = ("epoch", "train loss", "test loss", "test acc", "lr", "time")  # the columns as tables title them


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):  # (nan fails the test and formats as "nan")
        return f"{value:.4g}" if abs(value) < 1e4 else f"{value:.3e}"
    return str(value)


def format_table(headers, rows) -> str:
    """A plain right-aligned text table."""
    cells = [[str(h) for h in headers]] + [[_fmt(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=False)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _epoch_row(rec: dict) -> list:
    acc = rec["test_accuracy"]
    return [
        rec["epoch"],
        rec["train_loss"],
        rec["test_loss"],
        None if acc is None else f"{100 * acc:.1f}%",
        rec["lr"],
        f"{rec['seconds']:.2f}s",
    ]


def epoch_table(history: list[dict]) -> str:
    return format_table(EPOCH_HEADERS, [_epoch_row(r) for r in history])


class ProgressReporter(Reporter):
    """A tqdm bar over the steps, and one table row per epoch printed above it."""

    def __init__(self, enabled: bool = True, stream=None, table: bool = True):
        self.enabled, self.stream, self.table = enabled, stream or sys.stdout, table
        self.bar = None
        self._printed_header = False

    def start(self, label, total_steps, done_steps):
        from tqdm import tqdm

        self._printed_header = False
        # disable=None: a bar only on a terminal (no control characters in logs and pipes)
        self.bar = tqdm(
            total=total_steps,
            initial=done_steps,
            desc=label,
            unit="step",
            leave=False,
            disable=None if self.enabled else True,
            file=sys.stderr,
            dynamic_ncols=True,
        )

    def step(self, loss):
        if self.bar is not None:
            self.bar.update(1)
            if self.bar.n % 20 == 0:
                self.bar.set_postfix(loss=f"{loss:.4g}", refresh=False)

    def epoch(self, record):
        if not self.table:
            return
        header, row = EPOCH_HEADERS, _epoch_row(record)
        widths = [max(len(h), 10) for h in header]
        lines = []
        if not self._printed_header:
            lines.append("  ".join(h.rjust(w) for h, w in zip(header, widths, strict=False)))
            lines.append("  ".join("-" * w for w in widths))
            self._printed_header = True
        lines.append("  ".join(_fmt(v).rjust(w) for v, w in zip(row, widths, strict=False)))
        if self.bar is not None and not self.bar.disable:
            self.bar.write("\n".join(lines), file=self.stream)
        else:
            print("\n".join(lines), file=self.stream, flush=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def write_metrics(out_dir: str, runs: list[RunResult], meta: dict) -> tuple[str, str]:
    """``metrics.csv`` (one row per run and epoch) and ``metrics.json`` (``meta`` + histories)."""
    os.makedirs(out_dir, exist_ok=True)
    csv_path, json_path = os.path.join(out_dir, "metrics.csv"), os.path.join(out_dir, "metrics.json")
    with open(csv_path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(("run",) + EPOCH_COLUMNS)
        for run in runs:
            for rec in run.history:
                w.writerow([run.label] + ["" if rec[c] is None else rec[c] for c in EPOCH_COLUMNS])
    payload = dict(
        meta, runs=[{"label": r.label, "resumed_from_epoch": r.resumed_from, "history": r.history} for r in runs]
    )
    with open(json_path, "w") as f:
        json.dump(payload, f, indent=2, default=str)
    return csv_path, json_path


def loss_panels(runs: list[RunResult], title: str = "", regression: bool = False) -> list[dict]:
    """Panels for :func:`plot_panels`: train loss, test loss, and test accuracy when known."""
    tag = f"{title}: " if title else ""
    name = "MSE" if regression else "loss"
    series = [("train_loss", f"train {name}", name, True), ("test_loss", f"test {name}", name, True)]
    if any(h["test_accuracy"] is not None for r in runs for h in r.history):
        series.append(("test_accuracy", "test accuracy", "accuracy", False))
    return [
        {
            "title": tag + panel_title,
            "ylabel": ylabel,
            "logy": logy,
            "lines": {r.label: ([h["epoch"] for h in r.history], [h[key] for h in r.history]) for r in runs},
        }
        for key, panel_title, ylabel, logy in series
    ]


LINE_STYLES = ("-", "--", "-.", ":")
MARKERS = ("o", "s", "^", "D", "v", "x", "P", "*")
LEGEND_WRAP = 38  # characters per legend line


def _style(i: int, n_points: int) -> dict:
    """Line ``i``'s look: colour, dash pattern and marker all change with ``i``, and the
    markers of line ``i`` start at a different point, so identical curves stay visible."""
    every = max(1, n_points // 12)
    return {
        "color": f"C{i % 10}",
        "linestyle": LINE_STYLES[i % len(LINE_STYLES)],
        "marker": MARKERS[i % len(MARKERS)],
        "markersize": 4,
        "markevery": (i % every, every),
        "linewidth": 1.6,
        "alpha": 0.9,
    }


def build_figure(panels: list[dict], suptitle: str = "", xlabel: str = "epoch", ncols: int | None = None):
    """The matplotlib figure of :func:`plot_panels` (see there)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    ncols = ncols or len(panels)
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 3.6 * nrows), squeeze=False)
    line_panels = [p for p in panels if "lines" in p]
    shared = bool(line_panels) and all(list(p["lines"]) == list(line_panels[0]["lines"]) for p in line_panels)
    handles = None
    for ax, panel in zip(axes.flat, panels, strict=False):
        if "bars" in panel:
            labels = list(panel["bars"])
            ax.barh(labels, [panel["bars"][k] for k in labels], color="tab:blue")
            ax.invert_yaxis()
            ax.set_xlabel(panel.get("xlabel", ""))
        else:
            for i, (label, (xs, ys)) in enumerate(panel["lines"].items()):
                ax.plot(xs, ys, label=textwrap.fill(str(label), LEGEND_WRAP), **_style(i, len(xs)))
            positive = all(y is not None and y > 0 for _, ys in panel["lines"].values() for y in ys)
            if panel.get("logy") and positive:
                ax.set_yscale("log")
            ax.set_xlabel(panel.get("xlabel", xlabel))
            if shared:
                handles = handles or ax.get_legend_handles_labels()
            else:
                ax.legend(fontsize=7)
        ax.set_title(textwrap.fill(panel["title"], 48), fontsize=10)
        ax.set_ylabel(panel.get("ylabel", ""))
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    if suptitle:
        fig.suptitle(textwrap.fill(suptitle, width=int(40 * ncols)), fontsize=11)
    with warnings.catch_warnings():  # a long title may not fit; the plot is still right
        warnings.simplefilter("ignore", UserWarning)
        fig.tight_layout()
    if handles is not None:  # one legend for all panels, below them (the saved image grows to hold it)
        width = max(len(line) for label in handles[1] for line in label.splitlines())
        ncol = max(1, min(len(handles[1]), int(4.6 * ncols * 72 / (6.5 * (width + 6)))))
        fig.legend(*handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=ncol, fontsize=8, frameon=False)
    return fig


def plot_panels(
    panels: list[dict], path: str, suptitle: str = "", xlabel: str = "epoch", ncols: int | None = None
) -> str:
    """One PNG, the panels side by side (``lines``: label -> (x, y); ``bars``: label -> value).

    Lines differ in colour, dash pattern and marker (identical curves stay visible);
    when every panel shows the same lines, one legend below the panels names them, with
    long labels wrapped, and the image is cropped to hold everything (labels included).
    """
    import matplotlib.pyplot as plt

    fig = build_figure(panels, suptitle, xlabel, ncols)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight", pad_inches=0.15)
    plt.close(fig)
    return path


def same_curves(runs: list[RunResult]) -> dict[str, str]:
    """``{label: earlier label}`` for runs whose train loss, test loss and accuracy
    histories are exactly those of an earlier run (their curves coincide in a plot)."""

    def curves(run):
        return [(h["train_loss"], h["test_loss"], h["test_accuracy"]) for h in run.history]

    out = {}
    for i, run in enumerate(runs):
        for earlier in runs[:i]:
            if curves(run) == curves(earlier):
                out[run.label] = earlier.label
                break
    return out
