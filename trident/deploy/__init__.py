"""Running clusters from a shell: the ``trident`` command's runtimes and their files.

`up` (a scheduler and nanny-supervised workers in one foreground process),
`standalone` (``trident scheduler`` and ``trident worker`` for several machines),
`certificates` (throwaway TLS certificates) and `info` (printing a cluster's state).
"""
