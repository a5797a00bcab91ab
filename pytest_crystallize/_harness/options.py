"""The plugin's settings, one row each: a command-line option and its ini twin.

A row with a flag is a command-line option and an ini value of the same name
(``--crystallize-json`` and ``crystallize_json``); the command line wins when it is given. Every
value is checked where it is read: argparse ``type=`` functions reject a bad command-line value
while the arguments are parsed, and ``resolve_settings`` rejects a bad ini value with a
``pytest.UsageError`` before anything runs. Both messages name the option and the value. After
``resolve_settings``, ``config.getoption(name)`` is the effective value too.

This module is imported by ``plugin.py`` in every pytest run: it imports nothing heavy.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest

from . import parsers


def _metric_name(text: str) -> str:
    if not text.strip() or ":" in text:
        msg = f"expected a metric's name, such as 'latency', got {text!r}"
        raise ValueError(msg)
    return text.strip()


def _baseline_name(text: str) -> str:
    """A name a baseline can be saved under, checked by the rule the session uses."""
    # Deferred, like every import of the engine here: this module loads in every pytest run.
    from .._engine.errors import CrystallizeUsageError  # deferred: see above
    from .._store.baselines import baseline_path  # deferred: see above

    try:
        baseline_path(Path(), text)
    except CrystallizeUsageError:
        msg = f"expected a baseline name of letters, digits, '.', '_' and '-', got {text!r}"
        raise ValueError(msg) from None
    return text


_GATE_FLAG = "--crystallize-compare-fail "


def _gate(text: str) -> str:
    """A comparison gate such as ``total:-5%``, checked by the parser the session uses."""
    from .._engine.errors import CrystallizeUsageError  # deferred: loaded only to check a gate
    from .._store.baselines import parse_gate  # deferred: loaded only to check a gate

    try:
        parse_gate(text)
    except CrystallizeUsageError as exc:
        raise ValueError(str(exc).removeprefix(_GATE_FLAG)) from None
    return text


def _gate_cli(text: str) -> str:
    try:
        return _gate(text)
    except ValueError as exc:  # the flag leads the message, as when the session checks it
        msg = f"{_GATE_FLAG}{exc}"
        raise argparse.ArgumentTypeError(msg) from None


def _cli(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """An argparse ``type=``: ``argument --flag: <what parse says>``, exit code 4."""

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = parse.__name__.lstrip("_")  # argparse names it on an unexpected error
    return convert


@dataclass(frozen=True)
class Option:
    """One setting: ``name`` is the ini name and the argparse dest; the flag is derived.

    ``kind``: ``flag`` (a switch; ini type bool), ``value`` (one string, checked by
    ``parse``), ``choice`` (one of ``choices``) or ``list`` (a repeatable flag; ini type args,
    each item checked by ``parse``). ``cli=False`` is an ini-only setting.
    """

    name: str
    kind: Literal["flag", "value", "choice", "list"]
    help: str
    default: Any = None
    parse: Callable[[str], Any] | None = None
    choices: tuple[str, ...] = ()
    metavar: str | None = None
    cli: bool = True
    cli_parse: Callable[[str], Any] | None = None  # argparse type=; default: _cli(parse)
    ini_help: str | None = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def ini_type(self) -> Literal["bool", "args", "string"]:
        return "bool" if self.kind == "flag" else "args" if self.kind == "list" else "string"

    def check(self, text: str) -> Any:
        """``text`` as the setting's value; ``ValueError(<what is wrong>)`` if it is bad."""
        if self.kind == "choice" and text not in self.choices:
            msg = f"takes one of {', '.join(self.choices)}, got {text!r}"
            raise ValueError(msg)
        return self.parse(text) if self.parse is not None else text


_CORRECTIONS = ("holm", "bonferroni", "bh", "none")

OPTIONS: dict[str, Option] = {
    option.name: option
    for option in (
        Option(
            "crystallize",
            "flag",
            "collect experiment files (see ini crystallize_files) and report their verdicts",
            default=False,
            ini_help="collect experiment files without --crystallize",
        ),
        Option(
            "crystallize_replicates",
            "value",
            "run every experiment with N replicates instead of its own count (quick checks)",
            parse=parsers.positive_int,
            metavar="N",
        ),
        Option(
            "crystallize_no_cache",
            "flag",
            "do not read or write the step cache in this run",
            default=False,
        ),
        Option(
            "crystallize_cache_clear",
            "flag",
            "empty the step cache (in .pytest_cache) before running",
            default=False,
        ),
        Option(
            "crystallize_alpha",
            "value",
            "the significance level of every verifier not given an alpha of its own (default 0.05)",
            parse=parsers.alpha,
            metavar="ALPHA",
        ),
        Option(
            "crystallize_correction",
            "choice",
            "adjust p-values over each experiment's comparisons: holm (default), bonferroni, "
            "bh or none",
            default="holm",
            choices=_CORRECTIONS,
        ),
        Option(
            "crystallize_inconclusive",
            "choice",
            "what an inconclusive gate counts as: fail (default), skip or pass",
            default="fail",
            choices=("fail", "skip", "pass"),
        ),
        Option(
            "crystallize_plan",
            "value",
            "pilot run: report the replicates needed to detect EFFECT (0.5, or 5% of the "
            "baseline) with 80% power, instead of gating",
            parse=parsers.plan_effect,
            metavar="EFFECT",
        ),
        Option(
            "crystallize_sequential",
            "value",
            "sequential designs: off runs every experiment's full design (audits); LOOKS "
            "judges every experiment at LOOKS looks, stopping early when decided (default: "
            "each experiment's own .sequential(...))",
            parse=parsers.sequential,
            metavar="off|LOOKS",
        ),
        Option(
            "crystallize_json",
            "value",
            "write the session's experiments, runs and verdicts as JSON",
            metavar="PATH",
        ),
        Option(
            "crystallize_shard",
            "value",
            "run the K-th of N shares of the replicates (one CI job each) and write their runs "
            "to --crystallize-json for --crystallize-merge; no verdict is judged here",
            parse=parsers.shard,
            metavar="K/N",
        ),
        Option(
            "crystallize_merge",
            "list",
            "judge the runs of the shards' JSON reports (each file, or a glob such as "
            "'shards/*.json'; repeatable) instead of running the replicates",
            default=[],
            parse=parsers.shard_report,
            metavar="PATH",
        ),
        Option(
            "crystallize_md",
            "value",
            "write a Markdown summary of the verdicts (also appended to $GITHUB_STEP_SUMMARY)",
            metavar="PATH",
        ),
        Option(
            "crystallize_no_step_summary",
            "flag",
            "do not append the Markdown summary to $GITHUB_STEP_SUMMARY",
            default=False,
        ),
        Option(
            "crystallize_html",
            "value",
            "write a self-contained HTML report with plots of every metric",
            metavar="PATH",
        ),
        Option(
            "crystallize_save",
            "value",
            "save each experiment's runs as baseline NAME (.crystallize/baselines/NAME.json)",
            parse=_baseline_name,
            metavar="NAME",
        ),
        Option(
            "crystallize_compare",
            "value",
            "compare each experiment's baseline condition with the saved baseline NAME",
            parse=_baseline_name,
            metavar="NAME",
        ),
        Option(
            "crystallize_compare_fail",
            "list",
            "gate a comparison: 'total:-5%' fails when total falls by more than 5% "
            "(non-inferiority); repeatable",
            default=[],
            parse=_gate,
            cli_parse=_gate_cli,
            metavar="METRIC:+-MARGIN",
        ),
        Option(
            "crystallize_compare_missing",
            "choice",
            "when the baseline to compare with (or an experiment in it) is not saved yet: skip "
            "the comparison (default) or fail",
            default="skip",
            choices=("skip", "fail"),
        ),
        Option(
            "crystallize_lower_is_better",
            "list",
            "a metric for which lower is better (latency, loss), for the words improved and "
            "regressed of an ungated comparison; repeatable",
            default=[],
            parse=_metric_name,
            metavar="METRIC",
        ),
        Option(
            "crystallize_progress_interval",
            "value",
            "without a terminal (CI logs), print each running experiment's progress at most "
            "every SECONDS (default 30; 0 turns it off)",
            default=30.0,
            parse=parsers.seconds,
            metavar="SECONDS",
        ),
        Option(
            "crystallize_executor",
            "choice",
            "how a chunk runs its replicates: plugin (default) with the experiment's execution "
            "plugin (threads, processes, async, Dask...), or serial, one after another, for "
            "debugging",
            default="plugin",
            choices=("plugin", "serial"),
        ),
        Option(
            "crystallize_dask",
            "value",
            "run every chunk's replicates on the Dask cluster of the scheduler at ADDRESS "
            "(needs pip install 'pytest-crystallize[dask]')",
            parse=parsers.dask_address,
            metavar="ADDRESS",
        ),
        Option(
            "crystallize_cache_max_mb",
            "value",
            "cap the step cache at this many MB; least recently used entries go first",
            parse=parsers.megabytes,
            cli=False,
        ),
        Option(
            "crystallize_files",
            "list",
            "glob patterns of experiment files (default: experiment_*.py *_experiment.py)",
            default=["experiment_*.py", "*_experiment.py"],
            cli=False,
        ),
    )
}


def add_options(parser: pytest.Parser) -> None:
    """Register every row: a ``--flag`` in the crystallize group (unless ini-only) and its ini
    twin. A flag's argparse default is None, so ``setting`` can tell that it was not given."""
    group = parser.getgroup("crystallize", "crystallize (statistically gated experiments)")
    for option in OPTIONS.values():
        if option.cli:
            help_text = f"{option.help} (ini {option.name})".replace("%", "%%")
            kwargs: dict[str, Any] = {"dest": option.name, "default": None, "help": help_text}
            if option.kind == "flag":
                kwargs["action"] = "store_true"
            else:
                if option.kind == "list":
                    kwargs["action"] = "append"
                if option.kind == "choice":
                    kwargs["choices"] = option.choices
                elif option.cli_parse is not None or option.parse is not None:
                    kwargs["type"] = option.cli_parse or _cli(option.parse)  # type: ignore[arg-type]
                if option.metavar:
                    kwargs["metavar"] = option.metavar
            group.addoption(option.flag, **kwargs)
        ini_help = option.ini_help or (
            f"{option.help} (overridden by {option.flag})" if option.cli else option.help
        )
        default = option.default if option.kind in ("flag", "list") else ""
        parser.addini(option.name, ini_help, type=option.ini_type, default=default)


def _from_ini(config: pytest.Config, option: Option) -> Any:
    """The ini value of ``option``, checked; ``option.default`` when it is not set."""
    where = f"ini {option.name}"
    try:
        raw = config.getini(option.name)
    except (ValueError, TypeError, pytest.UsageError) as exc:  # pytest's own type check
        expected = "true or false" if option.kind == "flag" else f"a {option.ini_type}"
        msg = f"{where} takes {expected}: {exc}"
        raise pytest.UsageError(msg) from None
    if option.kind == "flag":
        return bool(raw)
    if option.kind == "list":
        items = list(raw)
    else:
        text = raw.strip()
        if not text:
            return option.default
        items = [text]
    try:
        checked = [option.check(item) for item in items]
    except ValueError as exc:
        msg = f"{where} {exc}"
        raise pytest.UsageError(msg) from None
    return items if option.kind == "list" else checked[0]


def setting(config: pytest.Config, name: str) -> Any:
    """The effective value of setting ``name``: the command line, else the ini file, else the
    default. A bad ini value raises ``pytest.UsageError`` naming it."""
    option = OPTIONS[name]
    if option.cli:
        value = config.getoption(name)
        if value is not None:
            return value
    return _from_ini(config, option)


def resolve_settings(config: pytest.Config) -> None:
    """Check every setting, the ini values too where the command line overrides them, and
    store the command-line ones' effective values in ``config.option``: ``config.getoption``
    sees the ini values too (xdist workers parse the command line and the ini file again and
    resolve them the same way). Then check
    that the report paths can be written (``_harness/targets.py``)."""
    set_from_ini = set()
    for option in OPTIONS.values():
        from_ini = _from_ini(config, option)
        if option.cli and getattr(config.option, option.name, None) is None:
            setattr(config.option, option.name, from_ini)
            set_from_ini.add(option.name)
    from .targets import check_targets  # deferred: only with --crystallize, as resolve_settings

    check_targets(config, set_from_ini)
