"""``oxtail-mcp setup``: plan every change, refuse before writing if any part cannot go through, then apply.

The order is what makes "every error leaves every file as it was" hold:

1. **Plan** (reads only): choose the clients, check our console script's path, read each MCP
   config and work out its new text, dry-run each hook installer, check that every file to change
   can be written. Any refusal here is one line and nothing has been touched.
2. **Show** (``--dry-run`` stops here): the diffs, or on a run with nothing to change the
   "already" lines and no write at all.
3. **Apply**: each changed file is backed up and replaced (:mod:`files`), ``~/.claude.json`` first
   (the file most likely to be rewritten under us), then ``config.toml``, then the hook installers.
   If ``~/.claude.json`` changed since it was read, the edit is planned again from the new bytes
   and retried once; a second change refuses. A failure part-way puts back every file this run had
   already replaced, unless someone has written it since (the error line names it); backups stay.

Which clients:

| flags | set up | ``--uninstall`` removes from |
|---|---|---|
| none | each present client (:mod:`prereqs`); none present is an error | both |
| ``--claude`` / ``--codex`` | that one, present or not | that one |
| both | both | both |
"""

from __future__ import annotations

import datetime
import functools
import io
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO

import attrs

from oxtail_mcp.commands.setup import claude_json, codex_toml, files, hooks, prereqs
from oxtail_mcp.commands.setup.entry import Edit
from oxtail_mcp.commands.setup.errors import SetupError
from oxtail_mcp.commands.setup.report import Style, check, diff, item, shown
from oxtail_mcp.hooks import installer

CLAUDE, CODEX = "Claude Code", "Codex CLI"
EDITORS: dict[str, tuple[Callable[[Mapping[str, str]], Path], Callable[..., Edit], Callable[[str], Edit]]] = {
    CLAUDE: (claude_json.path, claude_json.register, claude_json.unregister),
    CODEX: (codex_toml.path, codex_toml.register, codex_toml.unregister),
}
"""client → (where its MCP config is, how ours is added, how it is taken out)."""


@attrs.frozen
class Options:
    dry_run: bool = False
    uninstall: bool = False
    claude: bool = False
    codex: bool = False
    force: bool = False


@attrs.frozen
class ConfigStep:
    """One MCP config file: as read, the planned edit, and how to plan it again from other bytes."""

    client: str
    snapshot: files.Snapshot
    edit: Edit
    replan: Callable[[str], Edit]

    @property
    def path(self) -> Path:
        return self.snapshot.path


@attrs.frozen
class Plan:
    configs: list[ConfigStep]
    hooks: list[hooks.HookPlan]
    skipped: list[tuple[str, str]]
    checks: list[prereqs.Check]

    @property
    def pending(self) -> bool:
        return any(s.edit.new is not None for s in self.configs) or any(h.pending for h in self.hooks)


def _clients(options: Options, env: Mapping[str, str]) -> tuple[list[str], list[tuple[str, str]]]:
    asked = [c for c, on in ((CLAUDE, options.claude), (CODEX, options.codex)) if on]
    if asked:
        return asked, []
    if options.uninstall:
        return [CLAUDE, CODEX], []
    chosen: list[str] = []
    skipped: list[tuple[str, str]] = []
    for client, present, why in (
        (CLAUDE, prereqs.claude_present, "no `claude` on PATH, no ~/.claude.json, no ~/.claude/"),
        (CODEX, prereqs.codex_present, "no `codex` on PATH, no ~/.codex/"),
    ):
        if present(env):
            chosen.append(client)
        else:
            skipped.append((client, why))
    if not chosen:
        raise SetupError(
            "found neither Claude Code nor Codex (no `claude` or `codex` on PATH, no ~/.claude or ~/.codex): "
            "install one, or pass --claude / --codex to set it up anyway"
        )
    return chosen, skipped


def _config(client: str, path: Path, edit_of: Callable[[str], Edit]) -> ConfigStep:
    def replan(text: str) -> Edit:
        try:
            return edit_of(text)
        except SetupError as exc:
            raise SetupError(f"{path}: {exc}") from exc
        except Exception as exc:  # a parser's surprise on a user's file is a refusal, not a crash
            raise SetupError(f"{path}: cannot edit it safely ({type(exc).__name__}: {exc})") from exc

    snapshot = files.read_settled(path)
    return ConfigStep(client, snapshot, replan(snapshot.text()), replan)


def make(options: Options, env: Mapping[str, str], now: datetime.datetime) -> Plan:
    """Everything setup would do, worked out without writing; raises :class:`SetupError` on any refusal."""
    clients, skipped = _clients(options, env)
    exe = installer.executable()
    checks: list[prereqs.Check] = []
    if not options.uninstall:
        checks = [prereqs.executable(exe, env, force=options.force), *prereqs.tools(env)]
    configs = []
    for client in clients:
        where, register, unregister = EDITORS[client]
        edit_of = (
            unregister if options.uninstall else functools.partial(register, exe=exe, force=options.force)
        )
        configs.append(_config(client, where(env), edit_of))
    makers = {CLAUDE: hooks.claude, CODEX: hooks.codex_cli}
    hook_plans = [makers[c](env, exe, uninstall=options.uninstall, now=now) for c in clients]
    for path in [s.path for s in configs if s.edit.new is not None] + [
        h.path for h in hook_plans if h.pending
    ]:
        files.check_writable(path)
    return Plan(configs, hook_plans, skipped, checks)


# Showing and applying ------------------------------------------------------------------------------
@attrs.frozen
class Console:
    """Where one run prints, and how: the options that shape the lines, the env that names ``~``."""

    options: Options
    env: Mapping[str, str]
    style: Style
    out: IO[str]
    err: IO[str]

    def line(self, text: str = "") -> None:
        print(text, file=self.out)

    def item(self, mark: str, label: str, text: str) -> None:
        self.line(item(self.style, mark, label, text))

    def header(self, plan: Plan) -> None:
        options, style = self.options, self.style
        title = "oxtail-mcp setup --uninstall" if options.uninstall else "oxtail-mcp setup"
        if options.dry_run:
            title += style.dim(" (dry-run — nothing will be written)")
        self.line(title + "\n")
        for client, why in plan.skipped:
            self.item("–", client, style.dim(f"not found ({why}) — skipped"))

    def unchanged(self, step: ConfigStep) -> None:
        self.item("✓", step.client, f"{shown(step.path, self.env)} — {self.style.dim(step.edit.reason)}")

    def installer_said(self, hook: hooks.HookPlan) -> None:
        """What a hook installer's dry run printed: its "already installed" line, or its diff."""
        self.out.write(hook.preview)
        self.err.write(hook.notes)

    def footer(self, plan: Plan, changed: bool) -> None:
        if plan.checks:
            self.line("\n  prerequisites:")
            for c in plan.checks:
                self.line(check(self.style, c.ok, c.name, c.detail))
        self.line("\n" + self._last_line(plan, changed))

    def _last_line(self, plan: Plan, changed: bool) -> str:
        options, style = self.options, self.style
        if options.dry_run:
            return style.dim("  dry-run complete — re-run without --dry-run to apply.")
        if options.uninstall:
            if not changed:
                return style.ok("  ✓ nothing to change — oxtail was not set up here.")
            return style.ok("  ✓ removed — restart running sessions to drop oxtail (backups are kept).")
        if not any(c.name == "tmux" and c.ok for c in plan.checks):
            return style.warn(
                "  almost there — install tmux so peers can wake each other, then start agents in it."
            )
        if not changed:
            return style.ok("  ✓ nothing to change — oxtail is set up.")
        return style.ok("  ✓ ready — restart running Claude Code / Codex sessions so they start oxtail.")


def show(plan: Plan, console: Console) -> None:
    """Print the whole plan without applying it: ``--dry-run``, or a run with nothing to change."""
    console.header(plan)
    for step in plan.configs:
        if step.edit.new is None:
            console.unchanged(step)
        else:
            console.item("~", step.client, f"{shown(step.path, console.env)} — {step.edit.would}")
            console.out.write(diff(step.path, step.snapshot.text(), step.edit.new))
    console.line()
    for hook in plan.hooks:
        if hook.pending:
            console.item("~", hook.client, f"hooks — would change {shown(hook.path, console.env)}:")
        console.installer_said(hook)
    console.footer(plan, changed=False)


@attrs.define
class _Applied:
    """What this run has replaced so far, newest last: for the rollback."""

    done: list[tuple[files.Snapshot, bytes]] = attrs.field(factory=list)

    def rollback(self) -> list[Path]:
        """Put every replaced file back; returns those left as they are because someone wrote them since."""
        kept = []
        for snapshot, written in reversed(self.done):
            try:
                if not files.restore(snapshot, written):
                    kept.append(snapshot.path)
            except (OSError, SetupError):
                kept.append(snapshot.path)
        return kept


REPLANNED = "    (it changed while setup was writing it: planned again from the new contents)"


@attrs.frozen
class _Replaced:
    """One config file replaced: what it held, what we wrote, the edit made, the lines to print."""

    snapshot: files.Snapshot
    written: bytes
    edit: Edit
    lines: list[str]


def _replace_config(step: ConfigStep, now: datetime.datetime) -> _Replaced | Edit:
    """Back up and replace one config file, planning again once if it changed since it was read.

    Returns the planned-again edit instead when it finds nothing left to do (the client wrote the
    same change itself)."""
    snapshot, edit = step.snapshot, step.edit
    lines: list[str] = []
    while edit.new is not None:
        new = edit.new.encode("utf-8")
        made = files.backup(snapshot, now)
        if files.replace(snapshot, new):
            return _Replaced(snapshot, new, edit, lines + ([f"    backup: {made}"] if made else []))
        if made is not None:
            made.unlink()
        if lines:  # planned again once already
            raise _changed_twice(step.path)
        lines.append(REPLANNED)
        snapshot = files.read_settled(step.path)
        edit = step.replan(snapshot.text())
    return edit


def _changed_twice(path: Path) -> SetupError:
    return SetupError(
        f"{path} changed twice while setup was writing it (Claude Code rewrites it itself); "
        "re-run setup, or quit the running sessions first"
    )


def _run_installer(hook: hooks.HookPlan, console: Console) -> tuple[files.Snapshot, bytes]:
    before = files.read(hook.path)
    notes = io.StringIO()
    if hook.run(False, console.out, notes) != 0:
        lines = [line for line in notes.getvalue().splitlines() if line.strip()]
        raise SetupError(lines[-1] if lines else f"the hook installer failed on {hook.path}")
    console.err.write(notes.getvalue())
    return before, files.reread(hook.path) or b""


def apply(plan: Plan, console: Console, now: datetime.datetime) -> None:
    """Make the changes, in the order the module docstring gives; on any failure put back what was done."""
    console.header(plan)
    applied = _Applied()
    try:
        for step in plan.configs:
            done = step.edit if step.edit.new is None else _replace_config(step, now)
            if isinstance(done, Edit):
                console.unchanged(attrs.evolve(step, edit=done))
                continue
            console.item("✓", step.client, f"{shown(step.path, console.env)} — {done.edit.reason}")
            for line in done.lines:
                console.line(line)
            applied.done.append((done.snapshot, done.written))
        console.line()
        for hook in plan.hooks:
            if hook.pending:
                applied.done.append(_run_installer(hook, console))
            else:
                console.installer_said(hook)
    except (SetupError, OSError) as exc:
        kept = applied.rollback()
        reason = (
            str(exc) if isinstance(exc, SetupError) else f"{exc.filename or 'a file'}: {exc.strerror or exc}"
        )
        put_back = "the files it had changed were put back" if applied.done else "nothing was changed"
        if kept:
            put_back += f", except {', '.join(map(str, kept))} (written by someone else since)"
        raise SetupError(f"{reason}; {put_back}") from exc
    console.footer(plan, changed=bool(applied.done))


def run(options: Options, env: Mapping[str, str], out: IO[str], err: IO[str], *, color: bool) -> int:
    """The whole command; raises :class:`SetupError` (one line, every file as it was) on a refusal."""
    now = datetime.datetime.now(datetime.UTC)
    console = Console(options, env, Style(color), out, err)
    try:
        plan = make(options, env, now)
    except SetupError as exc:
        raise SetupError(f"{exc}; nothing was changed") from exc
    if options.dry_run or not plan.pending:
        show(plan, console)
    else:
        apply(plan, console, now)
    return 0


def color_wanted(stream: IO[str], env: Mapping[str, str]) -> bool:
    return stream.isatty() and "NO_COLOR" not in env
