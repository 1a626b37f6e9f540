"""The filesystem Store: inboxes, journals, ledgers and records under one state directory.

Empty on purpose: importing a submodule loads only what it needs (the hook imports
``oxtail_fs.store.names`` alone).
"""
