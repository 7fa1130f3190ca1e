"""The ``rxfeed`` command line: plugins, replay, inspect, generate."""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import json
import os
import sys
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import click
from pydantic import ValidationError

from rxfeed import config as cfg
from rxfeed import sources
from rxfeed.interfaces import RxBackend
from rxfeed.plugins import get_plugins
from rxfeed.recovery import DEFAULT_WINDOW_MS


#: Exit codes: the command was not run as given (an argument, option, config
#: value or named path is wrong) / it ran, or its environment could not run it, and failed.
USAGE, RUNTIME = 2, 1

#: Optional imports -> (distribution, extra) to install.
OPTIONAL = {"pyarrow": ("pyarrow", "outputs"), "zmq": ("pyzmq", "outputs"), "matplotlib": ("matplotlib", "outputs"),
            "prometheus_client": ("prometheus-client", "metrics")}


class CliError(Exception):
    """An expected failure, reported as ``rxfeed: error: <message>`` with exit ``code``."""

    def __init__(self, message: str, code: int = USAGE) -> None:
        super().__init__(message)
        self.code = code


def _fail(msg: str, code: int = USAGE) -> NoReturn:
    raise CliError(msg, code)


def _key_text(exc: KeyError) -> str:
    """A KeyError's own text (``str()`` would quote it)."""
    return str(exc.args[0]) if exc.args else "unknown key"


def _missing_extra(module: str, what: str, exc: ImportError, hint: str = "") -> str:
    dist, extra = OPTIONAL[module]
    return f"{what} needs {dist}, which is not installed ({exc}): pip install 'rxfeed[{extra}]'{hint}"


def _require(module: str, what: str, hint: str = "") -> None:
    """Fail clearly, before any work, when an optional package is missing."""
    try:
        __import__(module)
    except ImportError as exc:
        _fail(_missing_extra(module, what, exc, hint), RUNTIME)


def _os_text(exc: OSError) -> str:
    names = [str(n) for n in (exc.filename, exc.filename2) if n is not None]
    what = exc.strerror or str(exc)
    return f"{' -> '.join(names)}: {what}" if names else what


def _failure(exc: Exception) -> tuple[str, int] | None:
    """Message and exit code of an expected failure; None for anything else
    (a bug, which keeps its traceback)."""
    if isinstance(exc, CliError):
        return str(exc), exc.code
    if isinstance(exc, click.UsageError):
        hint = f"\nTry '{exc.ctx.command_path} --help' for help." if exc.ctx else ""
        return exc.format_message() + hint, USAGE
    if isinstance(exc, click.ClickException):
        return exc.format_message(), exc.exit_code
    if isinstance(exc, ValidationError):
        return cfg.describe_validation(exc, exc.title), USAGE
    if isinstance(exc, cfg.ConfigError):
        return str(exc), USAGE
    if isinstance(exc, ImportError):
        return (_missing_extra(exc.name, "this command", exc), RUNTIME) if exc.name in OPTIONAL else None
    if isinstance(exc, OSError):
        return _os_text(exc), RUNTIME
    if isinstance(exc, (ValueError, RuntimeError)):
        return str(exc) or type(exc).__name__, RUNTIME
    return None


class RxfeedGroup(click.Group):
    """The ``rxfeed`` command group, and its one error path: every expected
    failure of any subcommand becomes ``rxfeed: error: <message>`` and exit
    code 2 (usage) or 1 (runtime), never a traceback (``RXFEED_TRACEBACK=1``
    adds it, for bug reports)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.Abort):
            raise  # --help, --version, Ctrl-C: click's own
        except Exception as exc:
            failure = None if isinstance(exc, OSError) and exc.errno == errno.EPIPE else _failure(exc)
            if failure is None:
                raise
            if os.environ.get("RXFEED_TRACEBACK"):
                traceback.print_exception(exc)
            click.echo(f"rxfeed: error: {failure[0]}", err=True)
            ctx.exit(failure[1])


class OutputPath(click.ParamType):
    """A path the command writes, checked before any work: a file (its
    directory exists and is writable) or, with ``directory``, a directory
    (made if missing: its nearest existing parent is a writable directory)."""

    name = "path"

    def __init__(self, directory: bool = False, empty_ok: bool = False) -> None:
        self.directory = directory
        self.empty_ok = empty_ok

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        value = os.fspath(value)
        if value == "" and self.empty_ok:
            return value
        problem = _dir_problem(Path(value)) if self.directory else _file_problem(Path(value))
        if problem:
            self.fail(f"{value!r}: {problem}", param, ctx)
        return value


def _writable_dir_problem(d: Path) -> str | None:
    if not d.is_dir():
        return f"{d} is not a directory"
    if not os.access(d, os.W_OK | os.X_OK):
        return f"directory {d} is not writable"
    return None


def _file_problem(p: Path) -> str | None:
    if p.is_dir():
        return "is a directory"
    parent = p.parent
    if not parent.exists():
        # the nearest existing ancestor says why: a regular file, or a missing directory
        anc = next((a for a in parent.parents if a.exists()), Path("."))
        return f"{anc} is not a directory" if not anc.is_dir() else f"directory {parent} does not exist"
    problem = _writable_dir_problem(parent)
    if problem is None and p.exists() and not os.access(p, os.W_OK):
        problem = "is not writable"
    return problem


def _dir_problem(p: Path) -> str | None:
    if p.exists():
        return "exists and is not a directory" if not p.is_dir() else _writable_dir_problem(p)
    return _writable_dir_problem(next((a for a in p.parents if a.exists()), Path(".")))


def _resolve(source: str, backend: str | None, decoder: str | None, plugins: Any) -> tuple[str, str]:
    """(backend, decoder) for SOURCE: as given, else detected from the file;
    a decoder is never guessed when detection cannot tell. A plugin hook that
    failed on the way is skipped, and said on stderr."""
    before = len(plugins.failures)
    chosen = _detect(source, backend, decoder, plugins)
    for name, err in plugins.failures[before:]:
        click.echo(f"rxfeed: warning: plugin {name} failed: {err}", err=True)
    return chosen


def _detect(source: str, backend: str | None, decoder: str | None, plugins: Any) -> tuple[str, str]:
    if backend and decoder:
        return backend, decoder
    try:
        head = sources.head(source)
    except OSError as exc:
        _fail(f"{source}: {exc.strerror or exc}")
    failures_before = len(plugins.failures)
    found = plugins.detect(source, head)
    only = plugins.decoders.names()
    if not found:
        if backend and len(only) == 1:
            return backend, only[0]
        ask = "--decoder" if backend else "--backend and --decoder"
        _fail(f"{source}: no plugin recognises this file (give {ask}; decoders: {', '.join(only) or 'none'})"
              + _new_failures(plugins, failures_before))
    if decoder or found[1]:
        return backend or found[0], decoder or found[1]
    payloads = _sample_payloads(source, found[0], plugins)
    claims = plugins.claim_payloads(payloads) if payloads else []
    if len(claims) == 1:
        return backend or found[0], claims[0]
    if not claims and len(only) == 1:
        return backend or found[0], only[0]
    why = (f"decoders {', '.join(claims)} all claim its payloads" if claims else
           "no decoder claims its payloads" if payloads else "no UDP payload near its start to tell the protocol")
    _fail(f"{source}: {why}: give --decoder (decoders: {', '.join(only) or 'none'})"
          + _new_failures(plugins, failures_before))


def _new_failures(plugins: Any, before: int) -> str:
    """Plugin hooks that failed while detecting (they are skipped, but say so)."""
    new = plugins.failures[before:]
    return "".join(f"; plugin {name} failed: {err}" for name, err in new)


def _sample_payloads(source: str, backend: str, plugins: Any, n: int = 32, head_bytes: int = 1 << 16) -> list[bytes]:
    """Up to ``n`` payloads from the first ``head_bytes`` of SOURCE's content,
    read by ``backend`` from a copy (a pipe's bytes stay kept for the run)."""
    import tempfile

    from rxfeed.pipeline import Pipeline

    from .rerequest import PayloadCollector

    sampler = PayloadCollector()
    with tempfile.TemporaryDirectory(prefix="rxfeed-detect-") as tmp:
        path = os.path.join(tmp, "head")
        with open(path, "wb") as f:
            f.write(sources.head(source, head_bytes))
        try:
            bconf = plugins.backends.get(backend).config_for_source(path, {})
            Pipeline(backend, sampler, backend_config=bconf, plugins=plugins,
                     run={"max_packets": n, "handle_signals": False}).run()
        except (ValueError, RuntimeError, OSError):  # an unreadable head: no payloads, no claim
            pass
    return sampler.payloads


def _decoder_if_detected(source: str) -> str | None:
    """The decoder detection picks for SOURCE, or None when it cannot tell (the
    caller then says what it expected in its own words)."""
    try:
        return _detect(source, None, None, get_plugins())[1]
    except CliError:
        return None


def _only_decoder() -> str:
    """The decoder to use when none is named: the only one installed."""
    names = get_plugins().decoders.names()
    if len(names) != 1:
        _fail(f"give --decoder ({', '.join(names) or 'none installed'})")
    return names[0]


def _need(decoder: Any, capability: str, what: str) -> None:
    """Fail clearly when the chosen decoder lacks what a command needs
    (rxfeed.interfaces.CAPABILITIES)."""
    if capability not in getattr(decoder, "capabilities", frozenset()):
        _fail(f"decoder {decoder.name!r} cannot {what}: it does not offer {capability!r} "
              f"(see rxfeed.interfaces.CAPABILITIES)")


@contextlib.contextmanager
def _building(backend: str, decoder: str) -> Iterator[None]:
    """While a pipeline is built, a failure is the user's (exit 2): no such
    plugin, a wrong config value, a source the backend cannot open; or a
    plugin's native part missing from this build (exit 1)."""
    try:
        yield
    except (ValueError, RuntimeError) as exc:
        _fail(str(exc))
    except OSError as exc:  # the source cannot be opened: the user's, like a ValueError
        _fail(_os_text(exc))
    except ImportError as exc:
        culprit = getattr(exc, "rxfeed_plugin", f"backend {backend!r} or decoder {decoder!r}")
        _fail(f"{culprit} cannot load: {exc}", RUNTIME)
    except Exception as exc:
        culprit = getattr(exc, "rxfeed_plugin", None)
        if culprit is None and isinstance(exc, KeyError):  # no such plugin (the registry's lookup)
            _fail(_key_text(exc) + _failures_hint())
        if culprit is None:
            raise  # a bug of rxfeed's own: keep the traceback
        if os.environ.get("RXFEED_TRACEBACK"):
            traceback.print_exception(exc)
        _fail(f"{culprit} failed to start: {type(exc).__name__}: {exc} (a bug of that plugin; "
              f"RXFEED_TRACEBACK=1 shows where)", RUNTIME)


def _failures_hint() -> str:
    """A pointer to plugins that failed, for a 'no such plugin' error."""
    failed = [name for name, _ in get_plugins().failures]
    return f" ({len(failed)} plugin(s) failed to load or run: {', '.join(failed)}; see rxfeed plugins)" if failed else ""


def _build(source: str, backend: str | None, decoder: str | None, filters: tuple[str, ...], speed: float,
           loops: int, config_file: str | None, run: dict[str, Any], options: dict[str, Any] | None = None,
           decoder_options: dict[str, Any] | None = None,
           recovery: tuple[bool, str | None, float | None] = (False, None, None)):
    """A pipeline for SOURCE; ``decoder_options`` override decoder settings the
    chosen decoder has (others are left out); ``recovery``: (a second line?,
    re-request server, reorder window) from the command line."""
    from rxfeed.pipeline import Pipeline

    plugins = get_plugins()
    tree = cfg.load(config_file)
    run_tree = {**tree.get("run", {}), **{k: v for k, v in run.items() if v is not None}}
    bname, dname = _resolve(source, backend or run_tree.get("backend"), decoder or run_tree.get("decoder"),
                            plugins)
    run_tree["backend"], run_tree["decoder"] = bname, dname
    bconf = _replay_settings({**tree.get("backend", {}).get(bname, {}), **(options or {})}, filters, speed, loops)
    with _building(bname, dname):
        fields = plugins.decoders.get(dname).Config.model_fields
        dconf = {**tree.get("decoder", {}).get(dname, {}),
                 **{k: v for k, v in (decoder_options or {}).items() if k in fields}}
        rec = _recovery_options(dname, tree, *recovery)
        if rec is not None:
            dconf["recovery"] = rec
        bconf = plugins.backends.get(bname).config_for_source(source, bconf)
        return Pipeline(bname, dname, backend_config=bconf, decoder_config=dconf, run=run_tree, plugins=plugins)


_source_opts = [
    click.option("--backend", "-b", help="backend (default: detected from the file)"),
    click.option("--decoder", "-d", help="decoder (default: detected from the file)"),
    click.option("--filter", "filters", multiple=True, metavar="GROUP:PORT", help="keep only these destinations"),
    click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False), help="TOML config"),
]


_publish_opts = [
    click.option("--publish", multiple=True, metavar="ENDPOINT",
                 help="publish: ZeroMQ PUB endpoints (decoded records, a topic per symbol, e.g. "
                      "tcp://127.0.0.1:5556), or NATS URLs (book events to JetStream, e.g. "
                      "nats://127.0.0.1:4222; a cluster: several, or comma-separated)"),
    click.option("--publish-opt", "publish_opts", multiple=True, metavar="KEY=VALUE",
                 help="a JetStream sink setting (docs/distribution.md), e.g. replicas=3, wait_when_full=true"),
]
_run_opts = [
    click.option("-o", "--option", "options", multiple=True, metavar="KEY=VALUE",
                 help="backend setting (JSON values allowed), e.g. -o port=net_af_packet0 -o lcores=1"),
    click.option("--max-packets", type=int, help="stop after N packets"),
    click.option("--max-seconds", type=float, help="stop after S seconds"),
    click.option("--burst", type=int, help="packets per burst"),
    click.option("--cpu", type=int, help="pin the loop to this CPU"),
    click.option("--latency", is_flag=True, help="rdtsc histogram per burst, inside the loop"),
    click.option("--json", "as_json", is_flag=True, help="print the summary as one JSON object"),
    click.option("--faults", "faults", metavar="SPEC",
                 help="inject seeded faults around the backend (line A with --line-b), e.g. "
                      "drop=0.01,reorder=0.02,seed=7 (docs/recovery.md)"),
    click.option("--faults-b", "faults_b", metavar="SPEC", help="with --line-b: seeded faults on line B"),
    click.option("--line-silence-s", type=click.FloatRange(min=0), default=1.0, show_default=True, metavar="S",
                 help="with --line-b: a line silent this long is reported down (and up with its next packet)"),
    click.option("--rerequest", metavar="HOST:PORT",
                 help="fill holes from this MoldUDP64 re-request server (turns the reorder window on)"),
    click.option("--reorder-window-ms", type=click.FloatRange(min=0), metavar="MS",
                 help="how long a hole waits for another line or a re-request before it is declared lost "
                      f"(default with --line-b/--rerequest: {DEFAULT_WINDOW_MS:g}; 0: off)"),
    click.option("--record", "record_dir", type=OutputPath(directory=True), metavar="DIR",
                 help="write what was received to pcapng files in DIR (made if missing; docs/recovery.md)"),
    click.option("--record-rotate-mb", type=click.FloatRange(min=0, min_open=True), metavar="MB",
                 help="with --record: a new file before one grows past MB MiB"),
    click.option("--record-rotate-s", type=click.FloatRange(min=0, min_open=True), metavar="S",
                 help="with --record: a new file once its first packet is S seconds old (receive time)"),
    click.option("--metrics", "metrics_at", metavar="HOST:PORT",
                 help="serve Prometheus metrics on http://HOST:PORT/metrics (port 0: any free; docs/operations.md)"),
    click.option("--metrics-linger", type=click.FloatRange(min=0), default=0.0, metavar="S",
                 help="with --metrics: keep serving the final values S seconds after the run (Ctrl-C ends it)"),
]


def _recovery_options(decoder: str, tree: dict[str, Any], two_lines: bool, rerequest: str | None,
                      window_ms: float | None) -> dict[str, Any] | None:
    """The decoder's ``recovery`` settings: the config file's, then the
    command line's; the reorder window defaults on with a second line or a
    re-request server. None when nothing asks for recovery."""
    if not (two_lines or rerequest or window_ms is not None):
        return None
    dcls = get_plugins().decoders.get(decoder)
    if "recovery" not in dcls.Config.model_fields:
        _fail(f"decoder {decoder!r} has no recovery settings (--line-b, --rerequest, --reorder-window-ms)")
    rec = dict(tree.get("decoder", {}).get(decoder, {}).get("recovery", {}))
    if rerequest:
        rec["rerequest"] = rerequest
    if window_ms is not None:
        rec["reorder_window_ms"] = window_ms
    elif not rec.get("reorder_window_ms"):
        rec["reorder_window_ms"] = DEFAULT_WINDOW_MS
    return rec


def _replay_settings(bconf: dict[str, Any], filters: tuple[str, ...], speed: float, loops: int) -> dict[str, Any]:
    """``bconf`` with replay's --filter, --speed and --loop."""
    if filters:
        bconf["filters"] = list(filters)
    if speed:
        bconf["speed"] = speed
    if loops > 1:
        bconf["loops"] = loops
    return bconf


def _replay_line_b(pipe: Any, line_b: str | None, filters: tuple[str, ...], speed: float, loops: int,
                   options: dict[str, Any]) -> Any:
    """Line B for ``replay --line-b SOURCE``: the same backend as line A, on SOURCE."""
    if line_b is None:
        return None
    bcls = type(pipe.backend)
    bconf = _replay_settings(dict(options), filters, speed, loops)
    try:
        with _building(bcls.name, pipe.decoder.name):
            return bcls(cfg.validate(bcls.Config, bcls.config_for_source(line_b, bconf), f"--line-b {line_b}"))
    except SystemExit:
        pipe.close()
        raise


def _with_lines(pipe: Any, line_b: Any, faults_a: Any, faults_b: Any, silence_s: float) -> None:
    """``--line-b``: the pipeline's backend becomes line A of a LinesBackend
    whose line B is ``line_b`` (each wrapped in its own faults, if asked)."""
    from rxfeed.lines import LinesBackend, LinesConfig

    if line_b is None:
        _with_faults(pipe, faults_a)
        return
    fcls = get_plugins().backends.get("faults")
    a = fcls.wrap(pipe.backend, faults_a) if faults_a is not None else pipe.backend
    b = fcls.wrap(line_b, faults_b) if faults_b is not None else line_b
    try:
        pipe.backend = LinesBackend([a, b], LinesConfig(silence_s=silence_s))
    except cfg.ConfigError as exc:
        a.close()
        b.close()
        _fail(f"--line-b: {exc}")


def _add(opts):
    def deco(f):
        for o in reversed(opts):
            f = o(f)
        return f
    return deco


@click.group(cls=RxfeedGroup)
@click.version_option(package_name="rxfeed")
def main() -> None:
    """rxfeed: exchange market data at kernel-bypass speed."""


@main.command()
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def plugins(as_json: bool) -> None:
    """What was found: plugins, backends, decoders, native parts, failures."""
    ps = get_plugins()
    info = {
        "plugins": [vars(p) for p in ps.loaded],
        "backends": {n: {"plugin": ps.backends.owner(n), "description": ps.backends.get(n).description,
                         "native": ps.backends.get(n).native_capsule is not RxBackend.native_capsule}
                     for n in ps.backends.names()},
        "decoders": {n: {"plugin": ps.decoders.owner(n), "description": ps.decoders.get(n).description,
                         "capabilities": sorted(getattr(ps.decoders.get(n), "capabilities", ()))}
                     for n in ps.decoders.names()},
        "native": ps.native_info(),
        "failures": [{"plugin": n, "error": e} for n, e in ps.failures],
        "blocked": ps.blocked,
    }
    if as_json:
        click.echo(json.dumps(info, indent=2, default=str))
        return
    from rich.console import Console
    from rich.table import Table

    con = Console()
    t = Table(title="rxfeed plugins")
    for col in ("plugin", "distribution", "version", "module"):
        t.add_column(col)
    for p in ps.loaded:
        t.add_row(p.name, p.distribution, p.version, p.module)
    con.print(t)
    for kind in ("backends", "decoders"):
        t = Table(title=kind)
        t.add_column("name")
        t.add_column("plugin")
        t.add_column("description")
        for n, d in info[kind].items():
            t.add_row(n, d["plugin"], d["description"])
        con.print(t)
    for part, what in info["native"].items():
        con.print(f"native {part}: {what}")
    for f in info["failures"]:
        con.print(f"[red]failed plugin {f['plugin']}: {f['error']}[/red]")


@main.command()
@click.argument("source", type=click.Path())
@_add(_source_opts)
@click.option("--speed", type=float, default=0.0, help="pcap pacing: 1 original timing, k k-times faster")
@click.option("--loop", "loops", type=click.IntRange(min=1), default=1, show_default=True,
              help="passes over the file")
@click.option("--books", is_flag=True, help="build every order book; add integrity counters and final BBOs")
@click.option("--line-b", "line_b", type=click.Path(), metavar="SOURCE",
              help="line B of the same feed (a second capture): A/B arbitration, first arrival wins")
@_add(_publish_opts)
@_add(_run_opts)
def replay(source: str, backend: str | None, decoder: str | None, filters: tuple[str, ...],
           config_file: str | None, speed: float, loops: int, line_b: str | None, books: bool,
           publish: tuple[str, ...], publish_opts: tuple[str, ...], options: tuple[str, ...],
           max_packets: int | None,
           max_seconds: float | None, burst: int | None, cpu: int | None, latency: bool, as_json: bool,
           faults: str | None, faults_b: str | None, line_silence_s: float, rerequest: str | None,
           reorder_window_ms: float | None, record_dir: str | None, record_rotate_mb: float | None, record_rotate_s: float | None,
           metrics_at: str | None, metrics_linger: float) -> None:
    """Replay SOURCE through a backend and decoder; print what was received."""
    run = {"max_packets": max_packets, "max_seconds": max_seconds, "burst": burst, "cpu": cpu,
           "latency": latency or None}
    faults_config, faults_b_config = _faults_config(faults), _faults_config(faults_b)
    if faults_b and not line_b:
        _fail("--faults-b needs --line-b")
    metrics = _metrics(metrics_at, metrics_linger)
    record_config = _record_config(record_dir, record_rotate_mb, record_rotate_s)
    opts = _parse_options(options)
    pipe = _build(source, backend, decoder, filters, speed, loops, config_file, run, opts,
                  recovery=(line_b is not None, rerequest, reorder_window_ms))
    second = _replay_line_b(pipe, line_b, filters, speed, loops, opts)
    _with_lines(pipe, second, faults_config, faults_b_config, line_silence_s)
    _with_record(pipe, record_config)
    sinks, order_books = _books_and_publishers(pipe, books, publish, publish_opts)
    _metrics_sinks(metrics, sinks)
    with pipe:
        summary = _run(pipe, not as_json and sys.stderr.isatty(), metrics)
    _close_publishers(summary, sinks)
    _metrics_final(metrics, summary)
    if order_books is not None:
        summary.books = {**order_books.counters(), "final_bbo": order_books.final_bbo()}
    if as_json:
        click.echo(summary.to_json())
    else:
        _print_summary(summary)
    _metrics_linger(metrics, metrics_linger)
    if summary.error:
        sys.exit(1)
    if summary.packets == 0 and summary.stop_reason == "end_of_source":
        drops = f"; dropped: {json.dumps(summary.drops)}" if summary.drops else ""
        _fail(f"{source}: nothing to decode: the source ended with 0 packets read{drops}", RUNTIME)


def _publisher(endpoints: tuple[str, ...]) -> Any:
    """The ZeroMQ PUB sink bound to ``endpoints``, or a clear error."""
    _require("zmq", "--publish")
    import zmq

    for ep in endpoints:
        if "://" not in ep:
            _fail(f"--publish {ep!r}: not a ZeroMQ endpoint; expected tcp://HOST:PORT, ipc://PATH or inproc://NAME "
                  "(or nats://HOST:PORT for JetStream)")
    scls = get_plugins().sinks.get("zmq_pub")
    config = cfg.validate(scls.Config, {"endpoints": endpoints}, "sink.zmq_pub")
    try:
        return scls(config)
    except zmq.ZMQError as exc:
        _fail(f"--publish {' '.join(endpoints)}: cannot bind: {exc}; expected tcp://HOST:PORT, ipc://PATH "
              "or inproc://NAME")


def _nats_publisher(urls: tuple[str, ...], opts: tuple[str, ...]) -> Any:
    """The JetStream sink for ``urls`` (a cluster: several, or one comma-separated), or a clear error."""
    _require("nats", "--publish nats://", "pip install 'rxfeed[nats]'")
    scls = get_plugins().sinks.get("nats_js")
    config = cfg.validate(scls.Config, {"servers": urls, **_parse_options(opts)}, "--publish nats://")
    return scls(config)


def _books_and_publishers(pipe: Any, books: bool, publish: tuple[str, ...],
                          opts: tuple[str, ...]) -> tuple[list, Any]:
    """``--books`` and ``--publish``: the sinks attached, and the books (made
    for --books, or by a JetStream sink that needs them; None when neither)."""
    order_books = None
    if books:
        _need(pipe.decoder, "books", "build order books (--books)")
        order_books = pipe.decoder.make_books()
    return _attach_publishers(pipe, publish, publish_opts=opts, books=order_books)


def _attach_publishers(pipe: Any, publish: tuple[str, ...], publish_opts: tuple[str, ...],
                       books: Any) -> tuple[list, Any]:
    """Sinks for ``--publish`` (ZeroMQ endpoints; nats:// URLs: JetStream), attached
    to the decoder; the books (a JetStream sink makes them when --books did not)."""
    nats_urls = tuple(u for u in publish if u.startswith(("nats://", "tls://")))
    zmq_eps = tuple(u for u in publish if u not in nats_urls)
    if publish_opts and not nats_urls:
        _fail("--publish-opt needs --publish nats://...")
    sinks = []
    if zmq_eps:
        _need(pipe.decoder, "batches", "publish records (--publish)")
        sinks.append(_publisher(zmq_eps))
    if nats_urls:
        _need(pipe.decoder, "books", "publish book events to JetStream (--publish nats://)")
        sinks.append(_nats_publisher(nats_urls, publish_opts))
    for sink in sinks:
        try:
            made = sink.attach(pipe.decoder) if sink.name == "zmq_pub" else sink.attach(pipe.decoder, books)
            books = made if sink.name == "nats_js" else books
        except (ValueError, ConnectionError) as exc:
            for s in sinks:
                s.close()
            _fail(f"--publish: {exc}", RUNTIME if isinstance(exc, ConnectionError) else USAGE)
    return sinks, books


def _close_publishers(summary: Any, sinks: list) -> None:
    """Finish every sink; their counts go to the summary's ``published``."""
    for sink in sinks:
        sink.close()
        if sink.name == "zmq_pub":
            summary.backend_stats["published"] = {"messages": sink.sent_messages, "records": sink.sent_records}
        else:
            summary.backend_stats["published_nats"] = sink.stats()


PROGRESS_MIN_BYTES = 64 << 20


def _run(pipe: Any, show_progress: bool, metrics: Any = None) -> Any:
    """Run one pipeline, or, for a backend with several RX queues, one pipeline
    (own decoder, own thread, own lcore) per queue and a merged summary;
    ``metrics`` (``--metrics``) serves their counters while they run."""
    from rxfeed.pipeline import Pipeline, merge_summaries, run_parallel

    queues = getattr(pipe.backend, "queue_backends", None)
    backends = queues() if queues else [pipe.backend]
    pipes = [pipe] + [Pipeline(b, type(pipe.decoder)(pipe.decoder.config), run=pipe.run_config)
                      for b in backends[1:]]
    with metrics.watching(pipes) if metrics is not None else contextlib.nullcontext():
        if len(pipes) == 1:
            return _run_with_progress(pipe, show_progress)
        return merge_summaries(run_parallel(pipes))


def _metrics(address: str | None, linger: float) -> Any:
    """``--metrics HOST:PORT``: the run's Prometheus endpoint, bound now,
    before any source is opened (a taken port is a usage error), stopped
    when the command ends; None without the option."""
    if address is None:
        if linger:
            _fail("--metrics-linger needs --metrics HOST:PORT")
        return None
    host, port = _host_port(address, "--metrics", lowest_port=0)
    _require("prometheus_client", "--metrics")
    from .metrics import MetricsError, MetricsServer, RunMetrics

    try:
        server = MetricsServer(host.strip("[]"), port).start()
    except MetricsError as exc:
        _fail(f"--metrics {address}: {exc}")
    click.get_current_context().call_on_close(server.stop)
    click.echo(f"rxfeed: metrics on http://{host}:{server.address[1]}/metrics", err=True)
    return RunMetrics(server)


def _metrics_sinks(metrics: Any, sinks: list[Any]) -> None:
    """Serve each sink's ``metrics_samples()`` (when it has them) with ``--metrics``."""
    for sink in sinks if metrics is not None else []:
        metrics.add_sink(sink)


def _metrics_final(metrics: Any, summary: Any) -> None:
    """With ``--metrics``: from now on serve the final summary's values."""
    if metrics is not None:
        metrics.finish(summary)


def _metrics_linger(metrics: Any, linger: float) -> None:
    """With ``--metrics-linger S``: keep the final values up S seconds for a
    last scrape (SIGINT/SIGTERM end the wait)."""
    if metrics is not None and linger > 0:
        with _stop_signals() as stop:
            stop.wait(linger)


def _run_with_progress(pipe: Any, show: bool) -> Any:
    """Run; on a terminal and a large source, draw a progress bar from another
    thread (the loop holds no GIL, so the bar costs the loop nothing)."""
    prog = pipe.backend.progress() if show else None
    if not prog or prog[1] < PROGRESS_MIN_BYTES:
        return pipe.run()
    import threading

    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

    done_flag = threading.Event()
    with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(), TimeRemainingColumn(),
                  transient=True) as bar:
        task = bar.add_task("replay", total=prog[1])

        def poll() -> None:
            while not done_flag.wait(0.2):
                p = pipe.backend.progress()
                if p:
                    bar.update(task, completed=p[0])

        t = threading.Thread(target=poll, daemon=True)
        t.start()
        try:
            return pipe.run()
        finally:
            done_flag.set()
            t.join()


def _faults_config(spec: str | None) -> Any:
    """The faults backend's config from ``--faults SPEC`` (checked before any
    source is opened: a bad spec is a usage error), or None."""
    if spec is None:
        return None
    fcls = get_plugins().backends.get("faults")
    return cfg.validate(fcls.Config, fcls.parse_spec(spec), "--faults")


def _with_faults(pipe: Any, config: Any) -> None:
    """Wrap the pipeline's backend in the faults backend (``--faults``)."""
    _wrap_backend(pipe, "faults", config, "--faults")


def _record_config(directory: str | None, rotate_mb: float | None, rotate_s: float | None) -> Any:
    """The record backend's config from ``--record DIR`` and its rotation
    options (checked before any source is opened), or None."""
    if directory is None:
        if rotate_mb is not None or rotate_s is not None:
            _fail("--record-rotate-mb and --record-rotate-s need --record DIR")
        return None
    rcls = get_plugins().backends.get("record")
    return cfg.validate(rcls.Config, {"dir": directory, "rotate_mb": rotate_mb, "rotate_s": rotate_s}, "--record")


def _with_record(pipe: Any, config: Any) -> None:
    """Wrap the pipeline's backend (faults included: what the decoder sees)
    in the record backend (``--record``); a directory it cannot write is a
    usage error before the run."""
    try:
        _wrap_backend(pipe, "record", config, "--record")
    except cfg.ConfigError as exc:
        _fail(f"--record: {exc}")


def _wrap_backend(pipe: Any, wrapper: str, config: Any, option: str) -> None:
    """Wrap the pipeline's backend in the wrapper backend ``wrapper`` (one RX queue only)."""
    if config is None:
        return
    queues = getattr(pipe.backend, "queue_backends", None)
    if queues is not None:
        extra = queues()[1:]
        for b in extra:
            b.close()
        if extra:
            pipe.close()
            _fail(f"{option} wraps one RX queue; backend {pipe.backend.name!r} is set for {len(extra) + 1}")
    pipe.backend = get_plugins().backends.get(wrapper).wrap(pipe.backend, config)


def _parse_options(options: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for o in options:
        key, sep, value = o.partition("=")
        if not sep:
            _fail(f"-o {o!r}: expected KEY=VALUE")
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


@main.command()
@click.option("--backend", "-b", required=True, help="backend, e.g. dpdk")
@click.option("--decoder", "-d", help="decoder (default: [run] decoder of --config, or the only one installed)")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False), help="TOML config")
@click.option("--until-end-of-session", is_flag=True, help="stop at the feed's end of session (decoders with the end_of_session capability, e.g. MoldUDP64's end-of-session packet for itch50)")
@click.option("--line-b", "line_b", multiple=True, metavar="KEY=VALUE",
              help="line B: a second instance of the backend with these settings over -o's, e.g. "
                   "--line-b groups='[\"233.49.196.111:26477\"]' (A/B arbitration, first arrival wins)")
@click.option("--arrivals", "arrivals_path", type=OutputPath(),
              help="save (sequence, count, handler-done ns) per packet (.npy) for one-way latency")
@click.option("--books", is_flag=True, help="build every order book; add integrity counters and final BBOs")
@_add(_publish_opts)
@_add(_run_opts)
def listen(backend: str, decoder: str | None, options: tuple[str, ...], config_file: str | None, max_packets: int | None,
           max_seconds: float | None, until_end_of_session: bool, line_b: tuple[str, ...],
           arrivals_path: str | None, books: bool, publish: tuple[str, ...], publish_opts: tuple[str, ...],
           burst: int | None,
           cpu: int | None, latency: bool, as_json: bool, faults: str | None, faults_b: str | None,
           line_silence_s: float, rerequest: str | None, reorder_window_ms: float | None, record_dir: str | None,
           record_rotate_mb: float | None, record_rotate_s: float | None, metrics_at: str | None,
           metrics_linger: float) -> None:
    """Receive live from a backend (busy-polling) until a limit, Ctrl-C or end of session."""
    from rxfeed.pipeline import Pipeline

    faults_config, faults_b_config = _faults_config(faults), _faults_config(faults_b)
    if faults_b and not line_b:
        _fail("--faults-b needs --line-b")
    metrics = _metrics(metrics_at, metrics_linger)
    record_config = _record_config(record_dir, record_rotate_mb, record_rotate_s)
    tree = cfg.load(config_file)
    run = {**tree.get("run", {}), **{k: v for k, v in {"max_packets": max_packets, "max_seconds": max_seconds,
                                                       "burst": burst, "cpu": cpu,
                                                       "latency": latency or None}.items() if v is not None}}
    decoder = decoder or run.get("decoder") or _only_decoder()
    run["backend"], run["decoder"] = backend, decoder
    bconf = {**tree.get("backend", {}).get(backend, {}), **_parse_options(options)}
    dconf = dict(tree.get("decoder", {}).get(decoder, {}))
    with _building(backend, decoder):
        dcls = get_plugins().decoders.get(decoder)
        if until_end_of_session:
            _need(dcls, "end_of_session", "stop at the end of a session (--until-end-of-session)")
            dconf["stop_at_end_of_session"] = True
        rec = _recovery_options(decoder, tree, bool(line_b), rerequest, reorder_window_ms)
        if rec is not None:
            dconf["recovery"] = rec
        pipe = Pipeline(backend, decoder, backend_config=bconf, decoder_config=dconf, run=run)
        second = None
        if line_b:
            bcls = get_plugins().backends.get(backend)
            try:
                second = bcls(cfg.validate(bcls.Config, {**bconf, **_parse_options(line_b)}, "--line-b"))
            except BaseException:
                pipe.close()
                raise
    _with_lines(pipe, second, faults_config, faults_b_config, line_silence_s)
    _with_record(pipe, record_config)
    if arrivals_path:
        _need(pipe.decoder, "arrivals", "log arrivals (--arrivals)")
        pipe.decoder.log_arrivals()
    sinks, order_books = _books_and_publishers(pipe, books, publish, publish_opts)
    _metrics_sinks(metrics, sinks)
    click.echo(f"rxfeed: listening on {backend}", err=True)
    with pipe:
        summary = _run(pipe, False, metrics)
    _close_publishers(summary, sinks)
    _metrics_final(metrics, summary)
    if order_books is not None:
        summary.books = {**order_books.counters(), "final_bbo": order_books.final_bbo()}
    if arrivals_path:
        import numpy as np

        np.save(arrivals_path, pipe.decoder.take_arrivals())
    click.echo(summary.to_json() if as_json else "", nl=as_json)
    if not as_json:
        _print_summary(summary)
    _metrics_linger(metrics, metrics_linger)
    if summary.error:
        sys.exit(1)


@main.command()
@click.argument("servers", metavar="nats://HOST:PORT[,...]")
@click.option("--venue", help="the publisher's venue (default: the only one in the bucket)")
@click.option("--symbols", help="comma-separated symbols (default: every symbol)")
@click.option("--books", is_flag=True, help="rebuild the books (snapshot + deltas) and keep them live")
@click.option("--trades", is_flag=True, help="print trades as JSON lines")
@click.option("--bbo", is_flag=True, help="print BBO changes as JSON lines")
@click.option("--from-start", is_flag=True, help="trades/BBO: from the session's first message (default: new ones)")
@click.option("--bucket", default="rxfeed-books", show_default=True, help="key-value bucket of the snapshots")
@click.option("--idle-exit", type=float, default=0.0,
              help="--books: stop once caught up and this many seconds passed without news")
@click.option("--until-end", is_flag=True, help="--books: stop once the publisher's session ended and all of it is applied")
@click.option("--seconds", type=float, help="stop after this many seconds")
@click.option("--count", type=click.IntRange(min=1), help="trades/BBO: stop after this many records")
@click.option("--depth", type=click.IntRange(min=1), help="--books: levels per side to print (default: all)")
@click.option("--json", "as_json", is_flag=True, help="--books: the final books as JSON")
def subscribe(servers: str, venue: str | None, symbols: str | None, books: bool, trades: bool, bbo: bool,
              from_start: bool, bucket: str, idle_exit: float, until_end: bool, seconds: float | None,
              count: int | None,
              depth: int | None, as_json: bool) -> None:
    """Follow a venue published to NATS JetStream (replay/listen --publish nats://...)
    from any host: --books rebuilds its books exactly; --trades/--bbo stream events."""
    _require("nats", "subscribe", "pip install 'rxfeed[nats]'")
    import asyncio

    from rxfeed.tools import subscribe as sub

    if books == (trades or bbo):
        _fail("subscribe: give --books, or --trades and/or --bbo")
    urls = [u.strip() for u in servers.split(",") if u.strip()]
    if not urls or not all(u.startswith(("nats://", "tls://")) for u in urls):
        _fail(f"subscribe {servers!r}: expected nats://HOST:PORT[,nats://HOST:PORT...]")
    wanted = [s.strip() for s in symbols.split(",") if s.strip()] if symbols else None
    try:
        venue = venue or asyncio.run(sub.discover_venue(urls, bucket))
        if books:
            code = asyncio.run(sub.follow_books(urls, venue, wanted, bucket, idle_exit, until_end, seconds, depth,
                                                as_json))
        else:
            kinds = [k for k, on in (("trade", trades), ("bbo", bbo)) if on]
            code = asyncio.run(sub.follow_events(urls, venue, kinds, wanted, bucket, from_start, seconds, count))
    except KeyboardInterrupt:
        code = 0
    except ValueError as exc:
        _fail(f"subscribe: {exc}")
    except Exception as exc:  # connection refused, no such bucket or stream
        _fail(f"subscribe {servers}: {type(exc).__name__}: {exc}", RUNTIME)
    sys.exit(code)


def _recovery_rows(t: Any, r: dict[str, Any]) -> None:
    """The summary's recovery lines: holes, lines, re-requests."""
    lat = r.get("fill_latency_ns", {})
    t.add_row("recovery", f"holes {r['gaps_opened']}: filled {r['gaps_filled']}, lost {r['lost_ranges']} "
              f"({r['lost_messages']} messages); redundant copies {r['redundant_copies']}; reorder peak "
              f"{r['reorder_peak_datagrams']} datagrams / {r['reorder_peak_bytes']:,} bytes"
              + (f"; fill latency p50 {lat['p50'] / 1e3:.0f} us p99 {lat['p99'] / 1e3:.0f} us" if "p50" in lat else ""))
    for ln in r.get("lines", []):
        t.add_row(f"line {ln['line']}", f"packets {ln['packets']:,}, first {ln['first_arrivals']:,}, "
                  f"copies {ln['copies']:,}, line-only gaps {ln['line_gaps']}")
    rr = r.get("rerequest")
    if rr:
        t.add_row("re-request", f"{rr['server']}: {rr['requests_sent']} requests ({rr['messages_requested']} "
                  f"messages, {rr['retries']} retries), recovered {rr['recovered_messages']}, answers "
                  f"{rr['answers']} (refused {sum(rr['answers_refused'].values())}), given up "
                  f"{rr['given_up_ranges']}")
    for lost in r.get("lost", [])[:10]:
        t.add_row("lost", f"{lost['session']} {lost['first']}..{lost['first'] + lost['count'] - 1}")


def _network_rows(t: Any, stats: dict[str, Any]) -> None:
    """The summary's multicast-membership and receive-clock lines."""
    igmp = stats.get("igmp")
    if isinstance(igmp, dict):
        if igmp.get("mode") == "off":
            t.add_row("multicast", f"not joined by rxfeed ({igmp.get('reason', 'igmp.mode=off')})")
        else:
            t.add_row("multicast", f"{igmp['mode']} joins on {igmp.get('interface', '?')}: "
                      + ", ".join(igmp.get("groups", [])) + " " + ", ".join(
                          f"{k}={v}" for k, v in igmp.items() if k not in ("mode", "interface", "groups")))
    if stats.get("clock_source"):
        t.add_row("rx_ts_ns clock", str(stats["clock_source"]))


def _print_summary(s: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console()
    t = Table(title=f"{s.source or 'live'} via {s.backend} -> {s.decoder}", show_header=False)
    t.add_row("stopped", s.stop_reason)
    t.add_row("packets", f"{s.packets:,}")
    t.add_row("messages", f"{s.messages:,}")
    t.add_row("elapsed", f"{s.elapsed_s:.3f} s")
    t.add_row("throughput", f"{s.messages_per_s:,.0f} msg/s")
    t.add_row("gaps", f"{s.gaps} ({s.gap_messages} messages)")
    t.add_row("duplicates", str(s.duplicates))
    t.add_row("errors", ", ".join(f"{k}={v}" for k, v in s.errors.items()) or "none")
    t.add_row("drops", ", ".join(f"{k}={v}" for k, v in s.drops.items()) or "none")
    t.add_row("per type", " ".join(f"{k}:{v}" for k, v in s.messages_per_type.items()))
    own = {k: v for k, v in s.decoder_stats.items() if isinstance(v, (int, float, str)) and v not in (0, "")}
    if own:
        t.add_row(s.decoder, " ".join(f"{k}={v}" for k, v in sorted(own.items())))
    if s.recovery:
        _recovery_rows(t, s.recovery)
    injected = [("", s.backend_stats.get("faults"))] + [
        (f" line {i}", ln.get("stats", {}).get("faults")) for i, ln in enumerate(s.backend_stats.get("lines") or [])]
    for where, faults in injected:
        if isinstance(faults, dict):
            t.add_row("faults injected" + where,
                      " ".join(f"{k}={v}" for k, v in faults.items() if v and k != "delivered") or "none")
    _network_rows(t, s.backend_stats)
    rec = s.backend_stats.get("record")
    if isinstance(rec, dict):
        t.add_row("recorded", f"{rec['recorded_packets']:,} packets in {rec['files']} file(s) in {rec['dir']} "
                  f"(overflow {rec['overflow_packets']}, write errors {rec['write_errors']})")
    if s.latency:
        t.add_row("burst latency (ns)", " ".join(f"{k}={v}" for k, v in s.latency.items()
                                                 if k.startswith(("p", "max"))))
    con.print(t)
    if s.books:
        t = Table(title="books: final best bid / offer (price in 1/10,000 $, shares)")
        for col in ("symbol", "bid", "bid shares", "ask", "ask shares"):
            t.add_column(col)
        for sym, q in s.books["final_bbo"].items():
            t.add_row(sym, str(q["bid_price"]), str(q["bid_shares"]), str(q["ask_price"]), str(q["ask_shares"]))
        con.print(t)
        con.print("book integrity: " + ", ".join(f"{k}={v}" for k, v in s.books["integrity"].items()))
    for w in s.warnings:
        con.print(f"[yellow]warning: {w}[/yellow]")
    if s.error:
        con.print(f"[red]error: {s.error}[/red]")


class _EnoughMessages(Exception):
    """Raised from inspect's callback once it printed what was asked."""


class _Dissector:
    """inspect's output: one line per message (its fields, MoldUDP64 session,
    sequence as on the wire and, when dissecting, status) and, between them,
    one line per session-layer event (gap, session change, implausible jump...)."""

    def __init__(self, fmt: str, limit: int, out: Any, marks: bool) -> None:
        self.fmt, self.limit, self.out, self.marks, self.seen = fmt, limit, out, marks, 0

    def _write(self, d: dict[str, Any], prefix: str = "") -> None:
        if self.fmt == "jsonl":
            self.out.write(json.dumps(d) + "\n")
        else:
            self.out.write(prefix + " ".join(f"{k}={v}" for k, v in d.items()) + "\n")

    def on_message(self, msg: Any, meta: Any) -> None:
        d = dict(zip(msg._fields, msg))
        if meta[1] is not None:
            if meta[0] is not None:  # a protocol without sessions (not MoldUDP64) has none
                d["session"] = meta[0].rstrip() if isinstance(meta[0], str) else meta[0]
            if getattr(meta, "channel", None) is not None:
                d["channel"] = meta.channel
            d["sequence"] = meta[1]
            if self.marks and len(meta) > 3 and meta[3] is not None:
                d["status"] = meta[3]
        self._write(d)
        self.seen += 1
        if self.limit and self.seen >= self.limit:
            raise _EnoughMessages()

    def on_event(self, ev: dict[str, Any]) -> None:
        d = {"event": ev["kind"], **{k: v for k, v in ev.items() if k != "kind"}}
        if self.fmt != "jsonl":
            d.pop("rx_ts_ns", None)
            self._write({k: v for k, v in d.items() if k != "event"}, f"# {d['event']} ")
        else:
            self._write(d)


@main.command()
@click.argument("source", type=click.Path())
@_add(_source_opts)
@click.option("-n", "count", type=click.IntRange(min=0), default=20, show_default=True,
              help="messages to print (0: all)")
@click.option("--types", help="only these message types, e.g. AFE")
@click.option("--format", "fmt", type=click.Choice(["text", "jsonl"]), default="text", show_default=True)
@click.option("--sequenced", is_flag=True,
              help="only what the session layer delivers: each sequence number once, in order, no marks")
def inspect(source: str, backend: str | None, decoder: str | None, filters: tuple[str, ...],
            config_file: str | None, count: int, types: str | None, fmt: str, sequenced: bool) -> None:
    """Dissect SOURCE: print its first N messages as captured, duplicates
    included, each with its MoldUDP64 session, sequence number (as on the wire)
    and status (new, duplicate, implausible, overflow), and the session
    layer's events (gaps, session changes...) as lines of their own
    (``--format jsonl``: one JSON object each, events with an "event" key)."""
    pipe = _build(source, backend, decoder, filters, 0.0, 1, config_file, {"burst": 1},
                  decoder_options={"sequenced": sequenced})
    _need(pipe.decoder, "messages", "show messages (inspect)")
    if not sequenced:
        _need(pipe.decoder, "sequenced", "show every message as captured (inspect without --sequenced)")
    dissector = _Dissector(fmt, count, sys.stdout, marks=not sequenced)
    try:
        pipe.decoder.subscribe(dissector.on_message, types, with_meta=True)
    except ValueError as exc:
        _fail(str(exc))
    if not sequenced:
        pipe.decoder.on_event(dissector.on_event)
    with pipe:
        try:
            summary = pipe.run()
        except _EnoughMessages:
            return
    _report_conditions(summary)
    if summary.error:
        _fail(summary.error)


def _report_conditions(summary: Any) -> None:
    """A dissector's output is the messages; what the backend or decoder had to
    skip, clamp or drop goes to stderr, so it is seen but not mixed in."""
    for w in summary.warnings:
        click.echo(f"rxfeed: warning: {w}", err=True)
    if summary.drops:
        click.echo(f"rxfeed: warning: dropped: {json.dumps(summary.drops)}", err=True)
    if summary.errors:
        click.echo(f"rxfeed: warning: decode errors: {json.dumps(summary.errors)}", err=True)


def _generate_day(output: str, feed: str, messages: int, symbols: int, seed: int, fmt: str | None,
                  market: bool = False) -> int:
    """One synthetic day of ``feed`` to ``output``; the message count. ``market``:
    the full-market ITCH 5.0 day (skewed symbols, moving prices, deep books)."""
    if market:
        if feed != "itch50":
            raise ValueError("--market days are ITCH 5.0 (--feed itch50)")
        from .market_generator import generate_market

        return generate_market(output, messages, symbols, seed, fmt)
    if feed == "itch50":
        from .generator import generate as gen

        return gen(output, messages, symbols, seed, fmt)
    if fmt == "nasdaq":
        raise ValueError(f"--feed {feed}: IEX days are IEX-TP captures (--format pcap or pcapng)")
    from .iex_generator import generate_iex

    return generate_iex(output, feed.removeprefix("iex-"), messages, symbols, seed, fmt)


@main.command()
@click.argument("output", type=OutputPath())
@click.option("--messages", "-n", type=int, default=None,
              help="messages in the day  [default: 100,000; 50,000,000 with --market]")
@click.option("--symbols", type=int, default=None, help="symbols  [default: 8; 8,000 with --market]")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["nasdaq", "pcap", "pcapng"]), help="default: from the name")
@click.option("--feed", type=click.Choice(["itch50", "iex-tops", "iex-deep", "iex-deep+"]), default="itch50",
              show_default=True, help="ITCH 5.0 over MoldUDP64, or an IEX feed over IEX-TP (pcap/pcapng only)")
@click.option("--market", is_flag=True, help="a full-market ITCH 5.0 day: Zipf-skewed symbols, prices that walk, "
              "deep books, a TotalView-like mix (docs/performance.md)")
def generate(output: str, messages: int | None, symbols: int | None, seed: int, fmt: str | None, feed: str,
             market: bool) -> None:
    """Write a deterministic synthetic day: ITCH 5.0 (NASDAQ file, pcap or pcapng) or an IEX feed
    (TOPS, DEEP, DEEP+ over IEX-TP; pcap or pcapng); .gz compresses."""
    t0 = time.perf_counter()
    if messages is None:
        messages = 50_000_000 if market else 100_000
    if symbols is None:
        symbols = 8_000 if market else 8
    try:
        n = _generate_day(output, feed, messages, symbols, seed, fmt, market)
    except ValueError as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"{output}: {exc.strerror or exc}", RUNTIME)
    click.echo(f"wrote {n:,} messages to {output} ({Path(output).stat().st_size:,} bytes) "
               f"in {time.perf_counter() - t0:.1f} s")


@main.command()
@click.argument("source", type=click.Path())
@click.option("-o", "--output", "outdir", required=True, type=OutputPath(directory=True),
              help="output directory (made if missing)")
@click.option("--types", default=None, help="message types to write (default: all)")
@click.option("--no-books", is_flag=True, help="skip trades.parquet, bbo.parquet and depth.parquet")
@click.option("--depth", type=click.IntRange(0, 1000), default=10, show_default=True,
              help="levels per side in depth.parquet (a snapshot per top-N change; 0: none)")
@click.option("--backend", "-b", help="backend (default: detected from the file)")
@click.option("--decoder", "-d", help="decoder (default: detected from the file)")
def convert(source: str, outdir: str, types: str | None, no_books: bool, depth: int, backend: str | None,
            decoder: str | None) -> None:
    """Write SOURCE to Parquet: messages per type, trades and BBO changes (bounded memory)."""
    _require("pyarrow", "convert")
    from .outputs import ParquetOutput

    pipe = _build(source, backend, decoder, (), 0.0, 1, None, {})
    _need(pipe.decoder, "batches", "write Parquet (convert)")
    if not no_books:
        _need(pipe.decoder, "books", "write trades/BBO/depth (convert without --no-books)")
    books = None if no_books else _convert_books(pipe.decoder, depth)
    out = ParquetOutput(outdir, books)
    try:
        out.attach(pipe.decoder, types)
    except ValueError as exc:
        _fail(f"--types {types!r}: {exc}")
    with pipe:
        summary = _run(pipe, sys.stderr.isatty())
    rows = out.close()
    click.echo(json.dumps({"messages": summary.messages, "files": {f"{k}.parquet": v for k, v in rows.items()},
                           "directory": outdir}))
    if summary.error:
        _fail(summary.error, RUNTIME)


def _convert_books(decoder: Any, depth: int) -> Any:
    """Books recording trades, BBO changes and depth-``depth`` snapshots; a
    decoder whose books keep no depth snapshots gets books without them (said on stderr)."""
    try:
        return decoder.make_books(bbo=True, trades=True, depth=depth)
    except ValueError as exc:
        if not depth:
            raise
        click.echo(f"rxfeed: note: no depth.parquet: {exc}", err=True)
        return decoder.make_books(bbo=True, trades=True)


@main.command()
@click.argument("source", type=click.Path())
@click.option("--symbol", "-s", required=True, help="symbol to plot, e.g. AAPL")
@click.option("-o", "--output", type=OutputPath(), default=None, help="PNG path (default: SYMBOL.png)")
@click.option("--backend", "-b", help="backend (default: detected from the file)")
@click.option("--decoder", "-d", help="decoder (default: detected from the file)")
def plot(source: str, symbol: str, output: str | None, backend: str | None, decoder: str | None) -> None:
    """PNG of one symbol's best bid/offer and trades over the day, and its final depth."""
    _require("matplotlib", "plot")
    from .outputs import plot_symbol

    pipe = _build(source, backend, decoder, (), 0.0, 1, None, {})
    _need(pipe.decoder, "books", "plot a book (plot)")
    books = pipe.decoder.make_books(bbo=True, trades=True)
    with pipe:
        summary = pipe.run()
    if summary.error:
        _fail(summary.error, RUNTIME)
    try:
        book = books[symbol]
    except KeyError as exc:
        _fail(_key_text(exc))
    bbo = books.take_bbo()
    trades = books.take_trades()
    key, ident = ("locate", book.locate) if hasattr(book, "locate") else ("symbol", book.index)  # ITCH / IEX
    path = plot_symbol(bbo[bbo[key] == ident], trades[trades[key] == ident], book.depth(20), symbol,
                       output or f"{symbol}.png")
    click.echo(f"wrote {path}")


@main.group()
def bench() -> None:
    """Measurements (``rxfeed bench latency``)."""


@bench.command("latency")
@click.option("--messages", "-n", type=click.IntRange(min=64), default=None,
              help="messages per run  [default: 20,000; 200,000 with --capacity]")
@click.option("--rates", default="2000,10000", show_default=True, help="datagrams per second, comma-separated")
@click.option("--paths", default=None, help="comma-separated subset (default: every available path)")
@click.option("--png", type=OutputPath(empty_ok=True), default="latency-cdf.png", show_default=True,
              help="CDF plot ('': none; not with --capacity)")
@click.option("--json", "as_json", is_flag=True, help="print the rows as JSON")
@click.option("--capacity", is_flag=True,
              help="per path, search the highest asked rate the sender achieved and the receiver got without loss")
@click.option("--start-rate", type=click.FloatRange(min=0, min_open=True), default=10_000.0, show_default=True,
              help="--capacity: first asked rate (datagrams/s)")
@click.option("--factor", type=click.FloatRange(min=1, min_open=True), default=2.0, show_default=True,
              help="--capacity: multiply the asked rate by this while runs pass")
@click.option("--max-rate", type=click.FloatRange(min=0, min_open=True), default=2_000_000.0, show_default=True,
              help="--capacity: highest asked rate (datagrams/s)")
@click.option("--bisect-steps", type=click.IntRange(min=0, max=20), default=3, show_default=True,
              help="--capacity: bisections between the highest pass and the lowest failure")
@click.option("--max-seconds", type=click.FloatRange(min=0, min_open=True), default=300.0, show_default=True,
              help="--capacity: time budget for all paths (a run already started is finished)")
def bench_latency(messages: int | None, rates: str, paths: str | None, png: str, as_json: bool, capacity: bool,
                  start_rate: float, factor: float, max_rate: float, bisect_steps: int, max_seconds: float) -> None:
    """Latency lab: a veth pair in a namespace it creates (and removes), a paced
    sender, and each receive path at each rate; the send rate achieved beside
    the one asked, one-way send -> handler-done latency per datagram, and
    loss. With --capacity, each path's highest loss-free rate instead. Needs
    root (namespaces)."""
    if png and not capacity:
        _require("matplotlib", "bench latency", hint=" (or --png '' for no plot)")
    from .lab import CapacitySearch, available_paths, run_capacity, run_lab

    if os.geteuid() != 0:
        _fail("bench latency needs root (it creates a network namespace and a veth pair)", RUNTIME)
    try:
        rate_list = tuple(float(r) for r in rates.split(","))
    except ValueError:
        _fail(f"--rates {rates!r}: expected numbers separated by commas")
    wanted = paths.split(",") if paths else None
    unknown = set(wanted or []) - set(available_paths())
    if unknown:
        _fail(f"unknown or unavailable paths {sorted(unknown)}; available: {sorted(available_paths())}")
    if capacity:
        try:
            search = CapacitySearch(start_rate, factor, max_rate, bisect_steps, max_seconds)
        except ValueError as exc:
            _fail(f"{exc} (--start-rate {start_rate:g} --max-rate {max_rate:g})")
        _print_capacity(run_capacity(messages or 200_000, search, wanted), as_json)
        return
    messages = messages or 20_000
    rows = run_lab(messages, rate_list, wanted, png)
    table = [{k: v for k, v in r.items() if k != "latency_us"} for r in rows]
    if as_json:
        click.echo(json.dumps(table))
        return
    _print_latency(table, messages)
    click.echo(f"CDF: {png}")


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _print_latency(table: list[dict[str, Any]], messages: int) -> None:
    """The lab's rows as a table; a sender that fell short is marked and said below."""
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"one-way latency, send -> handler done (us); {messages:,} messages per run")
    for col in ("path", "asked/s", "achieved/s", "loss %", "p50", "p90", "p99", "p99.9", "max", "rxfeed p99 (ns)"):
        t.add_column(col)
    short = []
    for r in table:
        if "error" in r:
            t.add_row(r["path"], _rate(r["rate"]), "-", "-", f"failed: {r['error'][:60]}", "", "", "", "", "")
            continue
        mark = " (short!)" if r["sender_short"] else ""
        if mark:
            short.append(r)
        t.add_row(r["path"], _rate(r["rate"]), _rate(r["achieved_datagrams_per_s"]) + mark, str(r["loss_pct"]),
                  *(str(r.get(k, "-")) for k in ("p50_us", "p90_us", "p99_us", "p99_9_us", "max_us")),
                  str(r.get("rxfeed_p99_ns")))
    Console().print(t)
    for r in short:
        click.echo(f"sender fell short on {r['path']}: achieved {_rate(r['achieved_datagrams_per_s'])} of "
                   f"{_rate(r['rate'])} datagrams/s asked ({_rate(r['achieved_messages_per_s'])} of "
                   f"{_rate(r['asked_messages_per_s'])} messages/s)")


def _print_capacity(rows: list[dict[str, Any]], as_json: bool) -> None:
    """Each path's highest loss-free rate: asked, achieved, received, loss, and what stopped the search."""
    if as_json:
        click.echo(json.dumps(rows))
        return
    from rich.console import Console
    from rich.table import Table

    t = Table(title="highest loss-free rate per path (datagrams/s; messages/s)")
    for col in ("path", "asked dgram/s", "achieved dgram/s", "asked msg/s", "achieved msg/s", "received msgs",
                "loss %", "limited by", "runs"):
        t.add_column(col)
    for r in rows:
        t.add_row(r["path"], _rate(r["asked_datagrams_per_s"]), _rate(r["achieved_datagrams_per_s"]),
                  _rate(r["asked_messages_per_s"]), _rate(r["achieved_messages_per_s"]),
                  _rate(r["messages_received"]), str(r["loss_pct"] if r["loss_pct"] is not None else "-"),
                  r["limited_by"], str(len(r["trials"])))
    Console().print(t)


def _host_port(value: str, option: str, lowest_port: int = 1) -> tuple[str, int]:
    """ADDRESS:PORT of an option, or a clear usage error."""
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not lowest_port <= int(port) < 65536:
        _fail(f"{option} {value!r}: expected ADDRESS:PORT (port {lowest_port}..65535)")
    return host, int(port)


_rerequest_opts = [
    click.option("--max-count", type=click.IntRange(min=1), default=10_000, show_default=True,
                 help="re-request: a larger requested count is answered as this many"),
    click.option("--max-payload", type=click.IntRange(23, 65507), default=1400, show_default=True,
                 help="re-request: UDP payload bytes per answer datagram"),
    click.option("--packets-per-request", type=click.IntRange(min=1), default=1, show_default=True,
                 help="re-request: answer datagrams per request (1: as NASDAQ; the client asks again)"),
    click.option("--rate-limit", type=click.FloatRange(min=0), default=100_000.0, show_default=True,
                 help="re-request: messages per second per client address (0: no limit)"),
    click.option("--burst", "burst_limit", type=click.FloatRange(min=0), default=None,
                 help="re-request: messages a client may save up (default: one second's worth)"),
    click.option("--max-clients", type=click.IntRange(min=1), default=4096, show_default=True,
                 help="re-request: client addresses tracked (least recently seen forgotten)"),
]


def _limits(max_count: int, max_payload: int, packets_per_request: int, rate_limit: float,
            burst_limit: float | None, max_clients: int) -> Any:
    from .rerequest import ServerLimits

    try:
        return ServerLimits(max_count, max_payload, packets_per_request, rate_limit, burst_limit, max_clients)
    except ValueError as exc:
        _fail(str(exc))


@main.command("send")
@click.argument("source", type=click.Path(exists=True, dir_okay=False))
@click.option("--group", required=True, metavar="G:P", help="destination group (or unicast address) and port")
@click.option("--rate", type=click.FloatRange(min=0), default=0.0, help="datagrams per second (0: as fast as possible)")
@click.option("--msg-rate", type=click.FloatRange(min=0, min_open=True), default=None,
              help="messages per second instead of --rate")
@click.option("--iface", "iface_ip", default=None, help="local IPv4 address of the interface to send from")
@click.option("--ttl", type=click.IntRange(0, 255), default=1, show_default=True)
@click.option("--max-seconds", type=click.FloatRange(min=0), default=0.0, help="stop after S seconds (0: no limit)")
@click.option("--record", "record_path", type=OutputPath(), help="save send times (.npy)")
@click.option("--rerequest-listen", metavar="HOST:PORT", default=None,
              help="keep a journal of what was sent and answer MoldUDP64 re-requests for it here")
@click.option("--journal-size", type=click.IntRange(min=1), default=1_000_000, show_default=True,
              help="messages the journal keeps (requests for older ones are counted as expired)")
@click.option("--linger", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="seconds to keep answering re-requests after the last datagram")
@_add(_rerequest_opts)
def send_cmd(source: str, group: str, rate: float, msg_rate: float | None, iface_ip: str | None, ttl: int,
             max_seconds: float, record_path: str | None, rerequest_listen: str | None, journal_size: int,
             linger: float, **limit_options: Any) -> None:
    """Replay SOURCE over UDP, paced without sleeping, and print what was sent:
    ITCH 5.0 as MoldUDP64 (with --rerequest-listen, also what its re-request
    server answered), an IEX capture's IEX-TP segments as captured."""
    import numpy as np

    from .sender import JournalOptions, send, source_messages

    host, port = _host_port(group, "--group")
    if iface_ip is not None:
        try:
            ipaddress.IPv4Address(iface_ip)
        except ValueError:
            _fail(f"--iface {iface_ip!r}: expected the IPv4 address of a local interface")
    journal = (JournalOptions(_host_port(rerequest_listen, "--rerequest-listen", 0), journal_size, linger,
                              _limits(**limit_options)) if rerequest_listen else None)
    from .generator import moldudp64_datagrams
    from .sender import captured_segments, send_as_captured

    framing = _decoder_if_detected(source) or ""
    segments = captured_segments(source, framing)
    if segments:  # IEX-TP: sent as captured (its own sessions, sequence numbers, heartbeats)
        if rerequest_listen or msg_rate:
            _fail(f"{source}: {framing} captures are sent as captured; --rerequest-listen and --msg-rate are "
                  "MoldUDP64 only")
        res = send_as_captured(segments, host, port, rate, iface_ip, ttl, max_seconds)
        if record_path:
            np.save(record_path, res.records)
        click.echo(json.dumps(res.summary()))
        return
    try:
        msgs = source_messages(source)
    except ValueError as exc:  # not ITCH: the user's input
        _fail(str(exc))
    if not msgs:
        _fail(f"{source}: no ITCH messages to send")
    if msg_rate:
        n_dgrams = sum(1 for _ in moldudp64_datagrams(msgs, end_of_session=False))
        rate = msg_rate * n_dgrams / max(1, len(msgs))
    with _listening(rerequest_listen or ""):
        res = send(msgs, host, port, rate, iface_ip, ttl, max_seconds=max_seconds, journal=journal)
    if record_path:
        np.save(record_path, res.records)
    click.echo(json.dumps(res.summary()))


@contextlib.contextmanager
def _listening(where: str) -> Iterator[None]:
    """A socket that cannot be bound (address in use, not local) is the user's error."""
    try:
        yield
    except OSError as exc:
        if exc.errno in (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES) and where:
            _fail(f"cannot listen on {where}: {exc.strerror or exc}")
        raise


@main.group()
def serve() -> None:
    """Servers a receiver is tested against (``rxfeed serve rerequest``)."""


@serve.command("rerequest")
@click.argument("source", type=click.Path(exists=True, dir_okay=False))
@click.option("--listen", required=True, metavar="HOST:PORT", help="UDP address to answer on (port 0: any free)")
@click.option("--session", default=None,
              help="MoldUDP64 session (NASDAQ file: the session to answer as, default RXFEED0001; "
                   "capture: which session to keep, default the first)")
@click.option("--filter", "filters", multiple=True, metavar="GROUP:PORT", help="capture: keep only these destinations")
@click.option("--max-seconds", type=click.FloatRange(min=0), default=0.0,
              help="stop after S seconds (0: until Ctrl-C or SIGTERM)")
@click.option("--json", "as_json", is_flag=True, help="print the counters as one JSON object on exit")
@_add(_rerequest_opts)
def serve_rerequest(source: str, listen: str, session: str | None, filters: tuple[str, ...], max_seconds: float,
                    as_json: bool, **limit_options: Any) -> None:
    """Answer re-requests (UDP) from SOURCE: MoldUDP64 re-requests from a
    capture of MoldUDP64 datagrams (pcap/pcapng) or a NASDAQ ITCH file
    (sequence numbers 1..N in file order); IEX-TP Gap Fill Requests from an
    IEX capture (one session of one channel: --session ID, default the
    first). Prints its counters on exit."""
    host, port = _host_port(listen, "--listen", lowest_port=0)
    limits = _limits(**limit_options)
    server = _gap_server(source, session, filters, (host, port), limits, listen)
    a, store = server.address, server.store
    with server, _stop_signals() as stop:  # handlers first: a SIGTERM right after the line below is honoured
        named = getattr(server, "session_id", None) or store.session.decode("ascii", "replace").rstrip()
        click.echo(f"rxfeed: serving {len(store):,} messages of session {named} (sequence {store.first_seq}.."
                   f"{store.end_seq - 1}) on {a[0]}:{a[1]}", err=True)
        stop.wait(max_seconds or None)
    stats = server.stats()
    if as_json:
        click.echo(json.dumps(stats))
    else:
        for k, v in stats.items():
            click.echo(f"{k}: {' '.join(f'{a}={b}' for a, b in v.items()) if isinstance(v, dict) else v}")


def _gap_server(source: str, session: str | None, filters: tuple[str, ...], address: tuple[str, int],
                limits: Any, listen: str) -> Any:
    """The re-request server of SOURCE's protocol (not started): IEX-TP gap
    fill for an IEX capture, MoldUDP64 otherwise."""
    from .rerequest import RerequestServer, load_store

    try:
        if _decoder_if_detected(source) == "iex":
            from .iex_gapfill import IexGapFillServer, iex_store

            if session is not None and not session.isdigit():
                _fail(f"--session {session!r}: an IEX-TP session id is a number")
            found = iex_store(source, int(session) if session else None)
            with _listening(listen):
                return IexGapFillServer(found, listen=address, limits=limits)
        store = load_store(source, session, filters)
    except ValueError as exc:
        _fail(str(exc))
    with _listening(listen):
        return RerequestServer(store, listen=address, limits=limits)


@contextlib.contextmanager
def _stop_signals() -> Iterator[Any]:
    """An event set by SIGINT or SIGTERM while the block runs."""
    import signal
    import threading

    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)



@main.group()
def nats() -> None:
    """A local NATS server with JetStream, for development (``rxfeed nats up``)."""


@nats.command("up")
@click.option("--cluster", "size", type=click.IntRange(1, 9), default=1, show_default=True,
              help="nodes: 1 (one JetStream node) or 3..9 (a cluster; 2 cannot lose a node)")
@click.option("--port", type=click.IntRange(1, 65535), default=4222, show_default=True,
              help="first client port: nodes listen on P, P+1, ...; their cluster ports are +2000, monitor ports +4000")
@click.option("--store", type=OutputPath(directory=True), default=None,
              help="directory of the JetStream stores and logs (kept between runs)  "
                   "[default: ~/.cache/rxfeed/nats, else ./.rxfeed-nats]")
@click.option("--host", default="127.0.0.1", show_default=True, help="IPv4 address to listen on")
@click.option("--json", "as_json", is_flag=True, help="print the URLs as one JSON object")
def nats_up(size: int, port: int, store: str | None, host: str, as_json: bool) -> None:
    """Start nats-server with JetStream (one node, or a cluster of --cluster
    nodes routed together), wait until every node is healthy, print the
    client URL list (what --publish and subscribe take) and the monitoring
    URLs, and run until Ctrl-C or SIGTERM, then stop the nodes cleanly."""
    from .nats_local import MONITOR_PORT_OFFSET, NatsCluster, busy_ports, default_store, find_server

    if size == 2:
        _fail("--cluster 2: two nodes have no quorum once one is lost; use 1, or 3 or more")
    if port + size - 1 + MONITOR_PORT_OFFSET > 65535:
        _fail(f"--port {port}: the monitor ports ({port + MONITOR_PORT_OFFSET}...) would pass 65535; "
              f"use a port up to {65535 - MONITOR_PORT_OFFSET - size + 1}")
    root = Path(store) if store else default_store()
    layout = root / (f"cluster{size}-{port}" if size > 1 else f"single-{port}")
    cluster = NatsCluster.on_ports(find_server(), layout, size, port, host=host, tied_to_parent=True)
    busy = busy_ports(host, cluster.ports())
    if busy:
        _fail(f"port{'s' * (len(busy) > 1)} {', '.join(map(str, busy))} on {host} already in use (client ports "
              f"{port}.., cluster +2000, monitor +4000): stop what holds them or choose another --port", RUNTIME)
    with _stop_signals() as stop:
        try:
            cluster.start()
            if cluster.wait_ready(cancelled=stop.is_set):
                _announce_nats(cluster, layout, as_json)
                _watch_nats(cluster, stop)
        finally:
            cluster.stop()
    if not as_json:
        click.echo("rxfeed: nats-server stopped", err=True)


def _announce_nats(cluster: Any, layout: Path, as_json: bool) -> None:
    """The URLs of a NatsCluster that is up, as text or one JSON object."""
    info = {"servers": cluster.servers, "urls": cluster.urls, "monitor_urls": cluster.monitor_urls,
            "store": str(layout.resolve()), "logs": [str(n.log_path.resolve()) for n in cluster.nodes],
            "cluster_name": cluster.nodes[0].cluster_name if len(cluster.nodes) > 1 else None,
            "pids": [n.proc.pid for n in cluster.nodes]}
    if as_json:
        click.echo(json.dumps(info))
        return
    kind = f"a cluster of {len(cluster.nodes)} nodes" if info["cluster_name"] else "one node"
    click.echo(f"nats-server with JetStream is up: {kind}, stores and logs in {info['store']}\n"
               f"client URLs (for --publish and subscribe):\n  {info['servers']}\n"
               f"monitoring:\n  {' '.join(info['monitor_urls'])}\n"
               "Ctrl-C or SIGTERM stops it.")


def _watch_nats(cluster: Any, stop: Any) -> None:
    """Wait for ``stop``; a node that exits on its own before is an error (with its log)."""
    while not stop.wait(0.5):
        for node in cluster.exited():
            raise node.exit_error()


if __name__ == "__main__":
    main()
