"""The cockpit's own widgets: plain-text panels (peer text is never parsed as markup) and the
operator-message prompt."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
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


class Panel(Static):
    """A titled block of plain text."""

    DEFAULT_CSS = """
    Panel { border: round $primary-darken-2; padding: 0 1; height: auto; }
    """

    def __init__(self, title: str, *, id: str) -> None:
        super().__init__(Text(""), id=id, markup=False)
        self.border_title = title


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
