"""gate: fail (exit 1) when a fresh test metric regresses past its tolerance from the baseline.

    python -m stages.gate            # reports/metrics.json vs baseline/metrics.json -> table, exit 0/1
    python -m stages.gate --accept   # make reports/metrics.json the new baseline (then commit it)

The baseline is a committed copy of a good run's reports/metrics.json, kept apart from it
because every pipeline run rewrites reports/metrics.json. Each metric in `gate.metrics`
(params.yaml) has a direction (max: higher is better, min: lower is better) and may move
the wrong way by at most max(abs_tol, rel_tol * |baseline|); moving the right way always
passes. The table goes to stdout and to reports/gate.md (markdown, for a PR comment).

A missing or unreadable baseline or metrics file, or a gated metric missing from either,
is an error (exit 1, one clear line, and the same line in reports/gate.md), never a pass.

Not a DVC stage on purpose: `dvc repro` and `dvc exp run` must keep working for ideas that
turn out worse (that is what experiments are for); CI runs the gate after the pipeline.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

from stages import paths
from stages.errors import PipelineError, run_main
from stages.files import write_json, write_text
from stages.params import GateRule, load_params

# Float noise: 0.9 - 0.87 is 0.030000000000000027, which must still pass abs_tol 0.03.
EPSILON = 1e-9

ACCEPT_HINT = "python -m stages.gate --accept"


@dataclass(frozen=True)
class Row:
    """One metric's verdict: baseline vs new under its rule."""

    metric: str
    rule: GateRule
    baseline: float
    new: float

    @property
    def delta(self) -> float:
        return self.new - self.baseline

    @property
    def allowed(self) -> float:
        """How far the metric may move the wrong way."""
        return max(self.rule.abs_tol, self.rule.rel_tol * abs(self.baseline))

    @property
    def worsening(self) -> float:
        return -self.delta if self.rule.direction == "max" else self.delta

    @property
    def passed(self) -> bool:
        # NaN (e.g. ROC AUC with a class missing from the test split) compares False: a fail.
        return self.worsening <= self.allowed + EPSILON


def compare(baseline: dict, new: dict, rules: dict[str, GateRule],
            baseline_name: str = "baseline", new_name: str = "metrics") -> list[Row]:
    """Rows in the order of `rules`. Raises PipelineError when a gated metric is missing or
    not a number, naming every such metric at once."""
    problems = unusable(baseline, rules, baseline_name, "accept a baseline from a good run")
    problems += unusable(new, rules, new_name)
    if problems:
        raise PipelineError("; ".join(problems))
    return [Row(metric, rule, float(baseline[metric]), float(new[metric])) for metric, rule in rules.items()]


def unusable(values: dict, rules: dict[str, GateRule], name: str, finite_hint: str | None = None) -> list[str]:
    """Why `values` cannot be gated: gated metrics missing or not numbers (and, when
    `finite_hint` is given, not finite: a baseline of NaN would let anything pass or fail)."""
    problems = []
    missing = [m for m in rules if m not in values]
    if missing:
        problems.append(f"{name} has no {', '.join(missing)} (it has: {', '.join(sorted(values)) or 'nothing'})")
    bad = [f"{m}={values[m]!r}" for m in rules if m in values and not _is_number(values[m])]
    if bad:
        problems.append(f"{name}: not a number: {', '.join(bad)}")
    not_finite = [m for m in rules if _is_number(values.get(m)) and not math.isfinite(values[m])]
    if finite_hint and not_finite:
        problems.append(f"{name}: {', '.join(not_finite)} is not finite; {finite_hint}")
    return problems


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def tolerance_text(row: Row) -> str:
    verb = "drop" if row.rule.direction == "max" else "rise"
    text = f"{verb} ≤ {row.allowed:.4f}"
    if row.rule.rel_tol > 0:
        text += f" (max of {row.rule.abs_tol:g}, {row.rule.rel_tol:.0%} of baseline)"
    return text


def render(rows: list[Row], baseline_path: Path, metrics_path: Path, notes: list[str] = ()) -> str:
    """The markdown report: a verdict line, the table, how to accept a new baseline."""
    failed = [r.metric for r in rows if not r.passed]
    verdict = "FAIL" if failed else "PASS"
    summary = (f"{len(failed)} of {len(rows)} metrics regressed past tolerance: {', '.join(failed)}" if failed
               else f"all {len(rows)} metrics within tolerance")
    lines = [
        f"## Metric gate: {verdict}",
        "",
        f"`{metrics_path.as_posix()}` vs baseline `{baseline_path.as_posix()}`: {summary}.",
        "",
        "| metric | baseline | new | delta | tolerance | result |",
        "| --- | ---: | ---: | ---: | --- | --- |",
    ]
    for r in rows:
        result = "pass" if r.passed else "**FAIL**"
        lines.append(f"| {r.metric} | {r.baseline:.4f} | {r.new:.4f} | {r.delta:+.4f} | {tolerance_text(r)} "
                     f"| {result} |")
    lines += ["", *(f"- {note}" for note in notes)] if notes else []
    lines += ["", f"To accept these metrics as the new baseline on purpose: `{ACCEPT_HINT}`, then commit "
                  f"`{baseline_path.as_posix()}`."]
    return "\n".join(lines) + "\n"


def error_report(message: str) -> str:
    return (f"## Metric gate: ERROR\n\n```\n{message}\n```\n\n"
            "The gate could not compare the metrics; this is not a pass.\n")


def read_metrics(path: Path, missing_hint: str) -> dict:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise PipelineError(f"{path} not found: {missing_hint}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise PipelineError(f"{path}: cannot read it: {error}") from None
    except json.JSONDecodeError as error:
        raise PipelineError(f"{path} is not valid JSON ({error})") from None
    if not isinstance(data, dict):
        raise PipelineError(f"{path} must hold a JSON object of metric: value, got {type(data).__name__}")
    return data


def notes_for(baseline: dict, new: dict) -> list[str]:
    """What a reader should know before trusting the comparison."""
    if "n_test" in baseline and "n_test" in new and baseline["n_test"] != new["n_test"]:
        return [f"the test split changed size (baseline n_test={baseline['n_test']}, new n_test={new['n_test']}): "
                "the metrics may not be comparable"]
    return []


def write_report(path: Path, text: str) -> None:
    try:
        write_text(path, text)
    except OSError as error:
        raise PipelineError(f"cannot write the report {path}: {error.strerror or error}") from None


def check(params_path: Path, metrics_path: Path, baseline_path: Path, report_path: Path) -> bool:
    """Compare, print and write the report; True when every metric passes."""
    try:
        rules = load_params(params_path).gate.metrics
        new = read_metrics(metrics_path, "run the pipeline first (dvc repro)")
        baseline = read_metrics(
            baseline_path, f"no baseline to compare with; make one from a good run with `{ACCEPT_HINT}` and commit it")
        rows = compare(baseline, new, rules, baseline_name=str(baseline_path), new_name=str(metrics_path))
    except PipelineError as error:
        # A stale PASS left in the report would be worse than none: it may be posted on a PR.
        # If the report cannot be written either, the original error is still the one to show.
        with contextlib.suppress(PipelineError):
            write_report(report_path, error_report(str(error)))
        raise
    report = render(rows, baseline_path, metrics_path, notes_for(baseline, new))
    write_report(report_path, report)
    print(report, end="")
    print(f"gate: report -> {report_path}")
    return all(r.passed for r in rows)


def accept(params_path: Path, metrics_path: Path, baseline_path: Path) -> dict:
    """Copy the metrics into the baseline (atomically), refusing metrics the gate could not use."""
    rules = load_params(params_path).gate.metrics
    new = read_metrics(metrics_path, "run the pipeline first (dvc repro), then accept its metrics")
    problems = unusable(new, rules, str(metrics_path), "not a baseline to keep")
    if problems:
        raise PipelineError("; ".join(problems))
    write_json(baseline_path, new)
    print(f"gate: accepted {metrics_path} as the new baseline {baseline_path}: "
          + ", ".join(f"{m}={new[m]:.4g}" for m in rules))
    print(f"gate: commit it: git add {baseline_path} && git commit -m 'Accept new metric baseline'")
    return new


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="gate",
        description="Compare the pipeline's test metrics with the committed baseline; exit 1 when one "
                    "regressed past its tolerance (params.yaml gate.metrics).")
    parser.add_argument("--accept", action="store_true",
                        help="copy the metrics into the baseline file instead of comparing (a deliberate new baseline)")
    parser.add_argument("--metrics", type=Path, default=paths.METRICS, help="fresh metrics (default: %(default)s)")
    parser.add_argument("--baseline", type=Path, default=paths.BASELINE, help="baseline (default: %(default)s)")
    parser.add_argument("--report", type=Path, default=paths.GATE_REPORT,
                        help="markdown report to write (default: %(default)s)")
    parser.add_argument("--params", type=Path, default=paths.PARAMS, help="params file (default: %(default)s)")
    return parser.parse_args(argv)


def gate(args: argparse.Namespace) -> None:
    if args.accept:
        accept(args.params, args.metrics, args.baseline)
    elif not check(args.params, args.metrics, args.baseline, args.report):
        print("gate: FAIL: a metric regressed past its tolerance (see the table above)", file=sys.stderr)
        raise SystemExit(1)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    run_main("gate", lambda: gate(args))


if __name__ == "__main__":
    main()
