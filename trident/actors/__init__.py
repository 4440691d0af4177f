"""Actors: stateful objects hosted on workers and called remotely.

`location` describes where an actor lives (the value its key holds on the cluster),
`host` runs actors on a worker, `handle` is what users hold (`Actor`, `ActorFuture`),
and `calls` carries method calls from a client (or a worker) to the hosting worker.
"""
