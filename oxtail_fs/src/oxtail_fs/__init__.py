"""oxtail-fs: local-machine adapters (filesystem store, process tree, tmux waker)."""
