"""Facts about this machine: process liveness and the project scope.

Empty on purpose: importing a submodule loads only what it needs (the hook imports
``oxtail_fs.store.names`` alone).
"""
