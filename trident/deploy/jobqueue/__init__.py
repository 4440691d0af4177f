"""Workers as batch jobs: `SLURMCluster`, `PBSCluster`, `SGECluster`, `LSFCluster`.

`scripts` writes the job scripts and commands of each batch system (no I/O); `cluster`
runs the scheduler in this process and submits, tracks and cancels the jobs. See
docs/deploy.md for each system from nothing to a computing `Client`.
"""
