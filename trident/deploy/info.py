"""``trident info``: a cluster's workers, threads, memory and tasks, as text."""

from __future__ import annotations

from typing import Any

from ..client.client import Client
from ..security import Security
from ..sizes import format_bytes

DEATHS_SHOWN = 5


async def fetch_info(address: str, security: Security, timeout: float) -> dict[str, Any]:
    """`Client.scheduler_info` of the scheduler at `address`.

    Raises `OSError`, `TimeoutError` or `AuthenticationError` if it cannot be reached.
    """
    async with Client(
        address, security=security, asynchronous=True, set_as_default=False, timeout=timeout
    ) as client:
        info: dict[str, Any] = await client.scheduler_info()
        return info


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def format_info(address: str, info: dict[str, Any]) -> str:
    """The summary ``trident info`` prints for `info` (from `fetch_info`)."""
    workers = info.get("workers", {})
    threads = sum(w["nthreads"] for w in workers.values())
    memory = sum(w["memory_limit"] for w in workers.values())
    states = info.get("task_states", {})
    by_state = ", ".join(f"{n} {state}" for state, n in sorted(states.items()))
    clients, worker_clients = info.get("clients", 0), info.get("worker_clients", 0)
    lines = [
        f"scheduler  {address}  ({info.get('id', '?')})",
        f"workers    {len(workers)}, {threads} threads, "
        f"{format_bytes(memory) if memory else 'no'} memory limit in total",
        f"tasks      {info.get('tasks', 0)}" + (f" ({by_state})" if by_state else ""),
        f"clients    {clients - worker_clients} (this one included)"
        + (f", and {worker_clients} of workers for their tasks" if worker_clients else ""),
    ]
    if workers:
        rows = [
            ["address", "name", "threads", "memory limit", "running", "keys", "stored", "nanny"]
        ]
        for worker_address, w in sorted(workers.items(), key=lambda item: str(item[1]["name"])):
            rows.append(
                [
                    worker_address,
                    str(w["name"]),
                    str(w["nthreads"]),
                    format_bytes(w["memory_limit"]) if w["memory_limit"] else "-",
                    str(w["processing"]),
                    str(w["keys"]),
                    format_bytes(w["nbytes"]),
                    "yes" if w.get("nanny") else "no",
                ]
            )
        lines += ["", *_table(rows)]
    deaths = info.get("worker_deaths", [])
    if deaths:
        lines += ["", f"worker deaths ({len(deaths)}, latest last):"]
        for death in deaths[-DEATHS_SHOWN:]:
            lines.append(f"  {death['name'] or death['address']}: {death['reason']}")
    return "\n".join(lines)
