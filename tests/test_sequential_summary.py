"""What a session says of its sequential designs: a line per design below the summary table
(the look that decided it and why, or the look that could not be judged), the same reason in
the JSON report, progress lines that name the look and count to the end of the design while
it is undecided and stop once it is decided, and the live terminal line's last word.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from _support import IN_PROCESS, NO_XDIST, experiment_source, from_json, with_and_without_workers

from pytest_crystallize._harness.terminal import LiveProgress

pytestmark = pytest.mark.usefixtures("private_cache_key")

# 12 replicates in 3 looks (4, 8, 12 per condition). "strong" (delta 5) crosses at look 1;
# "aa" (delta 0: the baseline again, p = 1) is futile at look 2; "last" is "aa" without
# futility, so it runs to look 3; "broken"'s treatment raises in every run, so its look 1
# cannot be judged; "halted"'s treatment stops its first run with pytest.fail, so its chunk's
# other runs never run and no look is judged; "plain" has no design and gets no line.
DESIGNS = {
    "strong": ({"boost": 5.0}, ".sequential(looks=3)"),
    "aa": ({"flat": 0.0}, ".sequential(looks=3)"),
    "last": ({"flat": 0.0}, ".sequential(looks=3, futility=False)"),
    "broken": ({"oops": -1.0}, ".sequential(looks=3)"),
    "halted": ({"halt": -10.0}, ".sequential(looks=3)"),
    "plain": ({"lift": 5.0}, ""),
}
STEP = """
import time; time.sleep(0.01)
if delta < -5: __import__("pytest").fail("halt")
if delta < 0: raise ValueError("boom")
"""
ADJUSTED = "; its p-values and CIs are adjusted for the design (stage-wise ordering)"
FUTILE = (
    "stopped for futility (every comparison that has not crossed has less than a 2.5% chance "
    "to cross by the last look; a two-sided test in its metric's better direction: score: "
    "higher is better (assumed; if lower is, say so with --crystallize-lower-is-better score "
    "or the ini setting crystallize_lower_is_better))"
)
PROGRESS = re.compile(
    r"^crystallize: experiment_seq\.py::(\w+): (\d+)/(\d+) runs(.*), (\d+) failed, "
    r"(up to )?about \d+ (s|min) left$"
)


def designs_source(names: list[str]) -> str:
    """The experiments of ``DESIGNS`` named, each with its design, 12 replicates each."""
    source = experiment_source({n: DESIGNS[n][0] for n in names}, replicates=12, step_code=STEP)
    for name in names:
        start = source.index(f'Experiment.builder("{name}")')
        end = source.index(".replicates(12)", start)
        source = f"{source[:end]}{DESIGNS[name][1]}\n    {source[end:]}"
    return source


def _line(name: str, how: str, look: int, used: int, why: str) -> str:
    return (
        f"sequential: {name} {how} look {look} of 3 ({used} of 12 replicates per condition): {why}"
    )


@with_and_without_workers
def test_each_design_gets_a_decision_line_a_json_reason_and_progress_to_its_decision(
    ourtester: pytest.Pytester, dist: list[str]
) -> None:
    ourtester.makepyfile(experiment_seq=designs_source(list(DESIGNS)))
    result = ourtester.runpytest(
        "--crystallize",
        "--crystallize-json=r.json",
        "--crystallize-progress-interval=0.01",
        *dist,
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # aa, last, broken and halted fail
    lines = [
        _line("strong", "stopped at", 1, 4, "every comparison crossed its boundary" + ADJUSTED),
        _line("aa", "stopped at", 2, 8, FUTILE + ADJUSTED),
        _line("last", "ran to", 3, 12, "the last look decides every comparison" + ADJUSTED),
        _line("broken", "stopped at", 1, 4, "a comparison could not be judged"),
        "sequential: halted was not decided: look 1 of 3 could not be judged (its verdicts say "
        "why)",
    ]
    # Below the table and its notes, in the session's order; exactly these lines.
    result.stdout.fnmatch_lines(["*= crystallize =*", "experiment  *", *lines, "*= short test*"])
    shown = [line for line in result.outlines if line.startswith("sequential: ")]
    assert shown == lines
    reasons = {
        e["name"]: e["sequential"] and e["sequential"]["reason"]
        for e in from_json(ourtester.path / "r.json")["experiments"]
    }
    assert reasons == {
        "strong": "look 1 of 3: every comparison crossed its boundary",
        "aa": f"look 2 of 3: {FUTILE}",
        "last": "look 3 of 3: the last look decides every comparison",
        "broken": "look 1 of 3: a comparison could not be judged",
        "halted": None,  # no look was judged (stopped_at_look is null)
        "plain": None,  # no design
    }
    check_progress(result.outlines, in_process=dist == IN_PROCESS)


def check_progress(outlines: list[str], *, in_process: bool) -> None:
    """Each progress line of a design counts its 24 runs and names the look it waits for (the
    first not judged yet); none after the decision (in one process the looks run in order, so
    strong's lines end within look 1's 8 runs and aa's within look 2's 16)."""
    found: dict[str, list[tuple[int, int]]] = {}
    for line in outlines:
        if match := PROGRESS.match(line):
            name, done, total, design, _, up_to, _ = match.groups()
            assert (int(total), 0 < int(done) < 24) == (24, True), line
            look = re.fullmatch(
                r" \(look (\d) of 3; stops at the first look that decides\)", design
            )
            if DESIGNS[name][1]:
                assert look is not None, line
                assert up_to == "up to ", line
                found.setdefault(name, []).append((int(done), int(look[1])))
            else:
                assert (design, up_to) == ("", None), line
                found.setdefault(name, []).append((int(done), 0))
    assert found.keys() >= {"aa", "last", "plain"}, outlines
    assert {look for _, look in found.get("strong", [])} <= {1}  # decided at look 1
    assert {look for _, look in found["aa"]} <= {1, 2}  # decided at look 2
    if in_process:
        assert {look for _, look in found["last"]} == {1, 2, 3}
        assert max(done for done, _ in found["strong"]) <= 8
        assert max(done for done, _ in found["aa"]) <= 16


def test_the_live_line_of_a_design_decided_early_says_where_it_stopped(
    ourtester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(LiveProgress, "_DELAY", 0.0)  # shown from the first run
    ourtester.makeconftest(
        """
        import pytest

        @pytest.hookimpl(trylast=True)
        def pytest_configure(config):
            reporter = config.pluginmanager.get_plugin("terminalreporter")
            reporter.isatty = lambda: True  # as if on a terminal
        """
    )
    ourtester.makepyfile(experiment_seq=designs_source(["strong"]))
    result = ourtester.runpytest("--crystallize", "-p", "no:sugar", *NO_XDIST)
    result.assert_outcomes(passed=3, skipped=4)
    shown = [line.split("  ")[0] for line in result.outlines if line.startswith("strong: ")]
    assert shown[:-1]
    assert all(re.fullmatch(r"strong: \d+/24 runs, about \d+ s left", s) for s in shown[:-1])
    assert re.fullmatch(
        r"strong: decided at look 1 of 3 after 8 of 24 runs in \d+\.\d s", shown[-1]
    )


class _Terminal:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def ensure_newline(self) -> None:
        pass

    def rewrite(self, line: str, **markup: Any) -> None:
        self.lines.append(line)


def test_the_live_line_says_nothing_of_a_decision_it_never_showed_and_says_it_once() -> None:
    terminal = _Terminal()
    quick = LiveProgress(terminal, None, "quick", 24)
    quick.advance()  # under two seconds: not shown
    quick.decided(1, 3)
    assert terminal.lines == []
    slow = LiveProgress(terminal, None, "slow", 24)
    slow.start -= 10.0  # ten seconds ago: shown
    for _ in range(8):
        slow.advance()
    slow.decided(1, 3)
    slow.decided(1, 3)  # every skipped chunk of a later look tells it: said once
    assert terminal.lines[0] == "slow: 1/24 runs, about 230 s left"
    assert re.fullmatch(
        r"slow: decided at look 1 of 3 after 8 of 24 runs in 10\.\d s", terminal.lines[-1]
    )
    assert sum("decided" in line for line in terminal.lines) == 1
