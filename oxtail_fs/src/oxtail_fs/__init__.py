"""oxtail-fs: the local-machine adapters of oxtail.

- :class:`~oxtail_fs.store.fs_store.FsStore`: the filesystem Store (flock locks,
  crash-consistent writes, 0700/0600 permissions, inotify waits);
- :class:`~oxtail_fs.tmux.waker.TmuxWaker`: types the wake line into a pane verified
  from the live process tree;
- :class:`~oxtail_fs.host.project.LocalHost`: pid-and-start-time liveness and the
  project scope rules.

Import the submodules directly; this package imports nothing on its own so
that a hook can load just the store.
"""
