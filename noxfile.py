"""Development sessions: ``nox -s tests``, ``lint``, ``typecheck``, ``docs``, ``bench``,
``workloads``, ``chaos``, ``scaling``."""

import nox

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.default_venv_backend = "venv"


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test suite."""
    session.install("-e", ".[test]")
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff (style, common bugs, formatting) and the import contracts of pyproject.toml."""
    session.install("-e", ".[lint]")
    paths = ["trident", "tests", "benchmarks", "examples", "noxfile.py"]
    session.run("ruff", "check", *paths)
    session.run("ruff", "format", "--check", *paths)
    session.run("lint-imports", "--no-cache")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy over the trident package."""
    session.install("-e", ".[typecheck]")
    session.run("mypy")


@nox.session
def docs(session: nox.Session) -> None:
    """The documentation site (mkdocs), built into site/; fails on any warning."""
    session.install("-e", ".[docs]")
    session.run("mkdocs", "build", "--strict", *session.posargs, env={"NO_MKDOCS_2_WARNING": "1"})


@nox.session
def bench(session: nox.Session) -> None:
    """trident, dask.distributed and Ray side by side: ``nox -s bench -- --repeats 5``."""
    session.install("-e", ".[bench-ray]")
    session.run("python", "-m", "benchmarks", *session.posargs)


@nox.session
def workloads(session: nox.Session) -> None:
    """Real workloads (dask collections, mixed futures, scikit-learn) on trident and
    dask.distributed, seconds and peak memory: ``nox -s workloads -- --repeats 3``."""
    session.install("-e", ".[test,sklearn]", "distributed")
    session.run("python", "-m", "benchmarks.workloads", *session.posargs)


@nox.session
def scaling(session: nox.Session) -> None:
    """Throughput as the cluster grows: ``trident up`` against ``dask scheduler`` + ``dask
    worker``, each scheduler in a process of its own, with one single-thread worker per
    core left after the scheduler and the client: ``nox -s scaling -- --workers 14``."""
    import os

    session.install("-e", ".[bench]")
    workers = str(max(2, (os.cpu_count() or 4) - 2))
    args = session.posargs or ["--workers", workers]
    session.run(
        *("python", "-m", "benchmarks", "--deploy", "cli", "--runtimes", "trident,dask"),
        *("--only", "map_gather_20k,tree_4096,round_trip,chain_1000"),
        *args,
    )


@nox.session
def chaos(session: nox.Session) -> None:
    """A 10,000-task graph while worker processes are SIGKILLed, on trident and
    dask.distributed: ``nox -s chaos -- --interval 3 --runtimes trident``."""
    session.install("-e", ".[bench]")
    session.run("python", "-m", "benchmarks.chaos", *session.posargs)
