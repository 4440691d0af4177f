"""Running clusters from a shell: the runtimes behind the ``trident`` command.

`up` (a scheduler and nanny-supervised workers in one foreground process),
`standalone` (``trident scheduler`` and ``trident worker`` for several machines),
`info` (a cluster's state as text), `banner` (how to connect), `lifecycle` (stopping on
signals), `certificates` (throwaway TLS certificates).
"""
