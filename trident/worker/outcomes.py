"""`outcome_event`: what the end of one run tells `WorkerState`.

The executor hands the worker an `Outcome` per finished run (sync runs in batches from
its threads, async runs one at a time); each becomes one state event: `RunSkipped`
(the run was cancelled before it started), `RunRescheduled` (it raised `Reschedule`),
`RunFailed` or `RunFinished`.
"""

from __future__ import annotations

from . import events as ev
from .executor import RESCHEDULED, Outcome


def outcome_event(outcome: Outcome, stimulus_id: str) -> tuple[ev.Event, bool | None]:
    """The state event for `outcome`, and whether its task succeeded (None: skipped)."""
    run_id = outcome.run_id
    if outcome.skipped:
        return ev.RunSkipped(run_id, stimulus_id), None
    if outcome.error is not None:
        if outcome.error is RESCHEDULED:
            return ev.RunRescheduled(run_id, stimulus_id), False
        event = ev.RunFailed(run_id, outcome.error, outcome.start, outcome.stop, stimulus_id)
        return event, False
    finished = ev.RunFinished(
        run_id,
        outcome.value,
        outcome.nbytes,
        outcome.type_name,
        outcome.start,
        outcome.stop,
        outcome.payload,
        stimulus_id,
    )
    return finished, True
