"""tmux: the client, the pane binding and discovery, and the waker that types into a verified pane.

Empty on purpose: importing a submodule loads only what it needs (the hook imports
``oxtail_fs.store.names`` alone).
"""
