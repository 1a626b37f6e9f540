"""The cockpit's own widgets: plain-text panels (peer text is never parsed as markup) and the
operator-message prompt."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.cells import cell_len
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Input, Static

STYLES = {"error": "bold red", "warning": "yellow", "info": "", "dim": "dim"}


def plain(lines: Sequence[str] | str, style: str = "") -> Text:
    """``lines`` as one Rich Text with no markup interpretation: ``[red]`` in a purpose stays text."""
    text = lines if isinstance(lines, str) else "\n".join(lines)
    return Text(text, style=style, no_wrap=False)


def styled(lines: Sequence[tuple[str, str]]) -> Text:
    """``(severity, line)`` pairs as one Text, each line in its severity's style."""
    out = Text()
    for index, (severity, line) in enumerate(lines):
        if index:
            out.append("\n")
        out.append(line, style=STYLES.get(severity, ""))
    return out


class Plain(Static):
    """A Static of plain text that repaints only when its text really changed (a refresh that
    changes nothing costs no render)."""

    def __init__(self, text: Text | None = None, *, id: str | None = None) -> None:
        self._shown = text or Text("")
        super().__init__(self._shown, id=id, markup=False)

    def show(self, text: Text) -> None:
        if text != self._shown:
            self._shown = text
            self.update(text)


class Panel(Plain):
    """A titled block of plain text."""

    DEFAULT_CSS = """
    Panel { border: round $primary-darken-2; padding: 0 1; height: auto; }
    """

    def __init__(self, title: str, *, id: str) -> None:
        super().__init__(id=id)
        self.border_title = title


Cells = tuple[tuple[str, str], ...]
"""One row: ``(text, style)`` per column."""


class AgentList(Plain, can_focus=True):
    """The agents, one aligned line each, the selected one highlighted; ↑/↓ move, Enter selects.

    One Text for the whole table: a grid widget renders (and caches) every cell separately and
    forgets them all on any change, which costs a refresh of twenty agents tens of milliseconds.
    The selection is a row key (an agent's identity), never an index.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "move(-1)", "up", show=False),
        Binding("down", "move(1)", "down", show=False),
        Binding("enter", "choose", "jump"),
    ]
    DEFAULT_CSS = """
    AgentList { height: auto; padding: 0 1; }
    """

    class Highlighted(Message):
        """The selection moved to ``key``."""

        def __init__(self, key: str) -> None:
            super().__init__()
            self.key = key

    class Chosen(Message):
        """Enter was pressed on ``key``."""

        def __init__(self, key: str) -> None:
            super().__init__()
            self.key = key

    def __init__(self, columns: Sequence[str], *, id: str) -> None:
        super().__init__(id=id)
        self.columns = tuple(columns)
        self.rows: dict[str, Cells] = {}
        self.selected: str | None = None

    @property
    def cells(self) -> dict[str, list[str]]:
        """What each row shows, by key (for tests and tools)."""
        return {key: [text for text, _ in row] for key, row in self.rows.items()}

    def set_rows(self, rows: dict[str, Cells]) -> None:
        """Show ``rows`` (in order); the selection stays on its agent, else goes to the first one."""
        self.rows = rows
        if self.selected not in rows:
            self.select(next(iter(rows), None))
        self._draw()

    def select(self, key: str | None) -> None:
        if key is not None and key not in self.rows:
            return
        changed = key != self.selected
        self.selected = key
        self._draw()
        if changed and key is not None:
            self.post_message(self.Highlighted(key))

    def action_move(self, step: int) -> None:
        keys = list(self.rows)
        if not keys:
            return
        at = keys.index(self.selected) if self.selected in keys else 0
        self.select(keys[max(0, min(len(keys) - 1, at + step))])

    def action_choose(self) -> None:
        if self.selected is not None:
            self.post_message(self.Chosen(self.selected))

    def _draw(self) -> None:
        widths = [cell_len(c) for c in self.columns]
        for row in self.rows.values():
            widths = [max(w, cell_len(text)) for w, (text, _) in zip(widths, row, strict=True)]
        out = Text()
        out.append("  " + _line(tuple((c, "") for c in self.columns), widths)[0], style="bold dim")
        for key, row in self.rows.items():
            line, spans = _line(row, widths)
            mark = "▶ " if key == self.selected else "  "
            start = len(out) + 1 + len(mark)
            out.append("\n" + mark + line, style="reverse" if key == self.selected else "")
            for begin, end, style in spans:
                if style:
                    out.stylize(style, start + begin, start + end)
        if not self.rows:
            out.append("\n  (no agents)", style="dim")
        self.show(out)


def _line(row: Cells, widths: Sequence[int]) -> tuple[str, list[tuple[int, int, str]]]:
    """The row's cells padded to ``widths`` (by terminal cells, so emoji align), and each cell's span."""
    parts: list[str] = []
    spans: list[tuple[int, int, str]] = []
    at = 0
    for (text, style), width in zip(row, widths, strict=True):
        padded = text + " " * (width - cell_len(text))
        spans.append((at, at + len(text), style))
        parts.append(padded)
        at += len(padded) + 2
    return "  ".join(parts).rstrip(), spans


class MessagePrompt(ModalScreen[str | None]):
    """Asks for the text of an operator message to one agent; Enter sends, Escape cancels."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "cancel")]
    DEFAULT_CSS = """
    MessagePrompt { align: center middle; }
    MessagePrompt > Vertical {
        width: 80%; height: auto; border: thick $accent; padding: 1 2; background: $surface;
    }
    """

    def __init__(self, label: str) -> None:
        super().__init__()
        self.label = label

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(
                plain(
                    f"Operator message to {self.label}: it arrives as human-authorized but untrusted, "
                    "one-way context (no reply target). Enter sends, Escape cancels."
                ),
                markup=False,
            )
            yield Input(placeholder="message", id="message-text")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)
