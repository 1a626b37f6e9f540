"""The cockpit (``oxtail-mcp cockpit``): a live terminal view of a project's fleet on Textual.

| module | holds |
|---|---|
| :mod:`.source` | one frame: the ``status`` snapshot and the comms log; change detection |
| :mod:`.comms` | the recent-communications log, from the received ledgers |
| :mod:`.view` | what each panel says, as plain text (pure; peer text made inert here) |
| :mod:`.jump` | focusing an agent's verified tmux pane |
| :mod:`.widgets` | plain-text panels and the operator-message prompt |
| :mod:`.app` | the Textual app: layout, refresh, keys |

Nothing on the hook path imports this package (tests/mcp/test_hook_imports.py).
"""
