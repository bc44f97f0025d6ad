"""Draws loop-bench's chart: one panel of grouped bars per benchmark family, each bar a ratio
to tokio (above 1 is better), from the panels loop-bench writes to results/chart.json.

Usage: python3 chart.py chart.json chart.png   (needs matplotlib: pip install matplotlib)
"""

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLORS = {
    "ours-mio": "#1f77b4",
    "ours-polling": "#6baed6",
    "ours-uring": "#08306b",
    "streams-mio": "#9467bd",
    "raw-mio": "#7f7f7f",
    "raw-uring-multishot": "#c7c7c7",
    "tokio": "#d62728",
    "uvloop": "#2ca02c",
    "asyncio": "#98df8a",
    "node": "#ff7f0e",
}


def main():
    src, dst = sys.argv[1], sys.argv[2]
    with open(src) as f:
        panels = json.load(f)
    fig, axes = plt.subplots(len(panels), 1, figsize=(13, 4.2 * len(panels)))
    if len(panels) == 1:
        axes = [axes]
    for ax, panel in zip(axes, panels):
        groups = panel["groups"]
        series = [(name, vals) for name, vals in panel["series"] if any(v is not None for v in vals)]
        width = 0.8 / max(len(series), 1)
        for i, (name, vals) in enumerate(series):
            xs = [g + (i - (len(series) - 1) / 2) * width for g in range(len(groups))]
            ys = [v if v is not None else 0 for v in vals]
            bars = ax.bar(xs, ys, width, label=name, color=COLORS.get(name))
            for b, v in zip(bars, vals):
                if v is not None:
                    ax.annotate(f"{v:.2f}", (b.get_x() + b.get_width() / 2, b.get_height()),
                                ha="center", va="bottom", fontsize=6, rotation=90)
        ax.axhline(1.0, color="black", linewidth=0.8, linestyle="--")
        ax.set_yscale("log")
        ax.set_xticks(range(len(groups)))
        ax.set_xticklabels(groups, fontsize=8)
        ax.set_title(panel["title"], fontsize=10)
        ax.set_ylabel("ratio (log scale)")
        ax.legend(fontsize=7, ncol=len(series), loc="upper center", bbox_to_anchor=(0.5, -0.1))
    fig.tight_layout()
    fig.savefig(dst, dpi=110)


if __name__ == "__main__":
    main()
