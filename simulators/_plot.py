"""Draw a scenario run: the numeric vitals over time with ground-truth windows shaded, and a short
ECG/PPG strip with the true beats marked. Matplotlib (the ``plot`` extra) is imported on use."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from simulators.scenarios import Scenario

__all__ = ["plot_scenario"]

_PANELS = (
    ("Heart / pulse rate (/min)", ("heart_rate", "pulse_rate")),
    ("SpO2 (%)", ("spo2",)),
    ("Respiratory rate (/min)", ("respiratory_rate",)),
    ("Blood pressure (mmHg)", ("bp_systolic", "bp_diastolic")),
    ("Temperature (degC)", ("body_temperature",)),
    ("Weight (kg)", ("body_weight",)),
    ("Glucose (mmol/L)", ("blood_glucose",)),
)
_EVENT_COLOURS = {
    "af": "tab:red", "hypoxia": "tab:blue", "fever": "tab:orange", "weight_gain": "tab:brown",
    "hypoglycaemia": "tab:purple", "hypertension": "tab:pink", "tachycardia": "tab:olive",
    "tachypnoea": "tab:cyan", "pvc_burst": "tab:gray", "motion": "gold", "lead_off": "black",
    "dropout": "lightgray",
}
_MAX_POINTS = 4000
_STRIP_S = 10.0
DEFAULT_START_NS = 1_704_067_200_000_000_000  # 2024-01-01T00:00:00Z: plots and exports are reproducible


def _strip_start(scenario: Scenario, span_s: float) -> float:
    # Show the start of the first AF episode if there is one, else a minute in.
    for event in scenario.timeline:
        if event.type == "af" and event.start_s < span_s:
            return max(event.start_s - 4.0, 0.0)
    return min(60.0, max(span_s - _STRIP_S, 0.0))


def plot_scenario(
    scenario: Scenario,
    out: Path,
    *,
    hours: float | None = None,
    seed: int = 0,
    start_ns: int = DEFAULT_START_NS,
    dpi: int = 72,
) -> Path:
    """Render ``hours`` (default: the whole scenario) of ``scenario`` to the PNG file ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    span_s = scenario.duration_s if hours is None else hours * 3600.0
    run = scenario.start(start_ns, seed)
    chunk = run.advance(span_s)
    truth = run.ground_truth()
    panels = [(title, [m for m in metrics if m in chunk.numerics]) for title, metrics in _PANELS]
    panels = [(title, metrics) for title, metrics in panels if metrics]
    waves = [m for m in ("ecg", "ppg") if m in scenario.metrics]
    rows = len(panels) + len(waves)
    fig, axes = plt.subplots(rows, 1, figsize=(11, 1.7 * rows + 0.8), squeeze=False)
    fig.suptitle(f"{scenario.name}: {scenario.description}", fontsize=9)
    scale = 3600.0 if span_s <= 3 * 86400 else 86400.0
    unit = "h" if scale == 3600.0 else "days"
    labelled: set[str] = set()
    for ax, (title, metrics) in zip(axes[: len(panels), 0], panels, strict=True):
        for metric in metrics:
            times_ns, values = chunk.numerics[metric]
            x = (times_ns - start_ns) / 1e9 / scale
            order = np.argsort(x, kind="stable")
            step = max(1, len(x) // _MAX_POINTS)
            style: dict[str, Any] = {"lw": 0.7} if len(x) > 50 else {"marker": "o", "ms": 3, "lw": 0.5}
            ax.plot(x[order][::step], values[order][::step], label=metric, **style)
        for event in truth:
            colour = _EVENT_COLOURS.get(event.kind, "tab:gray")
            label = event.kind if event.kind not in labelled else None
            labelled.add(event.kind)
            ax.axvspan(event.start_s / scale, min(event.end_s, span_s) / scale, color=colour, alpha=0.15,
                       label=label)
        ax.set_xlim(0, span_s / scale)
        ax.set_ylabel(title, fontsize=7)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6, loc="upper left", ncol=4)
        labelled.clear()
    if panels:
        axes[len(panels) - 1, 0].set_xlabel(f"time ({unit})", fontsize=7)
    if waves:
        strip = _strip_start(scenario, span_s)
        strip_run = scenario.start(start_ns, seed)
        strip_run.advance(strip, waveforms=False)
        wchunk = strip_run.advance(_STRIP_S, waveforms=True)
        for ax, metric in zip(axes[len(panels):, 0], waves, strict=True):
            first_ns, fs, values = wchunk.waveforms[metric]
            t = (first_ns - start_ns) / 1e9 + np.arange(len(values)) / fs
            ax.plot(t, values, lw=0.7, color="tab:green" if metric == "ppg" else "tab:blue")
            beat_t = (wchunk.r_peaks_ns - start_ns) / 1e9
            if metric == "ecg":
                ax.plot(beat_t, np.interp(beat_t, t, values), "x", color="tab:red", ms=4)
                top = float(np.max(values)) if len(values) else 1.0
                for bt, kind in zip(beat_t, wchunk.beat_types, strict=True):
                    ax.text(bt, top * 1.08, str(kind), fontsize=6, ha="center")
                ax.set_ylabel("ECG (mV)\nN/V/A = true beats", fontsize=7)
            else:
                ax.set_ylabel("PPG (a.u.)", fontsize=7)
            for event in wchunk.events:
                ax.axvspan(max(event.start_s, t[0]), min(event.end_s, t[-1]),
                           color=_EVENT_COLOURS.get(event.kind, "tab:gray"), alpha=0.12, label=event.kind)
            if wchunk.events:
                ax.legend(fontsize=6, loc="lower left")
            ax.tick_params(labelsize=7)
        axes[-1, 0].set_xlabel("time (s)", fontsize=7)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi)
    plt.close(fig)
    return out
