"""The comparison plot's log axes (evals/report.py, issue 18): tick labels that do not run into
each other (the cost axis once read "5e-050.00010.0002"), measured on the drawn figure."""

from __future__ import annotations

import pytest

from evals.report import _tick_label, comparison_figure
from evals.runner import BackendReport

# The figures of docs/comparison.png (README, "Measured on all 3,080 BANKING77 test rows").
README_ROWS = [("custom", 0.9016, 11.6, 3.41e-05, None), ("peft", 0.9003, 1277.3, 0.003285, None),
               ("cascade", 0.9175, 64.1, 0.001169, 0.177)]


def _reports(rows) -> dict[str, BackendReport]:
    return {b: BackendReport(backend=b, n=3080, accuracy=a, p50_ms=p, cost_per_1k_usd=c, escalation_rate=e, latency_n=200)
            for b, a, p, c, e in rows}


def _labels(ax, renderer) -> list[tuple[str, float, float]]:
    """(text, left, right) in pixels of the visible, non-empty x tick labels, left to right."""
    lo, hi = ax.get_xlim()
    out = []
    for tick in ax.xaxis.get_major_ticks():
        lab = tick.label1
        if lab.get_visible() and lab.get_text() and lo <= tick.get_loc() <= hi:
            box = lab.get_window_extent(renderer)
            out.append((lab.get_text(), box.x0, box.x1))
    return sorted(out, key=lambda t: t[1])


@pytest.mark.parametrize("rows", [
    README_ROWS,
    [("a", 0.9, 0.8, 2e-6, None), ("b", 0.8, 45000.0, 0.9, None)],   # six decades of cost
    [("a", 0.9, 3.0, 0.00012, None), ("b", 0.8, 4.0, 0.00015, None)],  # one decade
])
def test_no_tick_labels_overlap(rows):
    fig = comparison_figure(_reports(rows))
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        labels = _labels(ax, renderer)
        assert len(labels) >= 2, [t for t, *_ in labels]
        for (t1, _, right), (t2, left, _) in zip(labels, labels[1:]):
            assert right + 2 <= left, f"{t1!r} runs into {t2!r}"


def test_cost_axis_labels_are_powers_of_ten_and_latency_axis_plain():
    fig = comparison_figure(_reports(README_ROWS))
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    latency, cost = (_labels(ax, renderer) for ax in fig.axes)
    assert [t for t, *_ in latency] == ["5", "10", "20", "50", "100", "200", "500", "1000", "2000"]
    assert [t for t, *_ in cost] == [r"$3\times10^{-5}$", r"$10^{-4}$", r"$3\times10^{-4}$", r"$10^{-3}$", r"$3\times10^{-3}$"]
    assert _tick_label(0.02) == "0.02" and _tick_label(5e-5, sci=True) == r"$5\times10^{-5}$"
