"""`Client.dump_cluster_state`: the scheduler's and every worker's state, with their
event logs, in a file that loads back."""

from __future__ import annotations

import pytest
import trio

from trident.client.dump import load_cluster_dump


@pytest.fixture(autouse=True)
async def bounded_time():
    with trio.fail_after(30):
        yield


def inc(x):
    return x + 1


@pytest.mark.parametrize("format", ["msgpack", "yaml"])
async def test_the_dump_holds_tasks_workers_and_both_event_logs(trident_client, tmp_path, format):
    futures = trident_client.map(inc, range(5))
    total = trident_client.submit(sum, futures)
    assert await total == 15
    workers = (await trident_client.scheduler_info())["workers"]
    path = await trident_client.dump_cluster_state(str(tmp_path / "dump"), format=format)
    assert path.endswith(".msgpack.gz" if format == "msgpack" else ".yaml")
    dump = load_cluster_dump(path)

    scheduler = dump["scheduler"]
    assert scheduler["tasks"][total.key]["state"] == "memory"
    assert set(scheduler["workers"]) == set(workers)
    log_events = {entry[1] for entry in scheduler["log"]}
    assert {"UpdateGraph", "TaskFinished", "flush"} <= log_events
    assert all(isinstance(entry[0], int) for entry in scheduler["log"])

    assert set(dump["workers"]) == set(workers)
    ran_sum = [w for w in dump["workers"].values() if total.key in w["tasks"]]
    assert len(ran_sum) == 1
    assert ran_sum[0]["tasks"][total.key]["state"] == "memory"
    worker_log = ran_sum[0]["log"]
    finished = [entry for entry in worker_log if entry[1] == "RunFinished"]
    assert finished
    assert all(entry[0].startswith("outcomes-") for entry in finished)
    assert any(entry[1] == "RunTask" and entry[2] == total.key for entry in worker_log)


async def test_excluded_task_fields_are_left_out_and_bad_formats_refused(trident_client, tmp_path):
    assert await trident_client.submit(inc, 1) == 2
    path = await trident_client.dump_cluster_state(str(tmp_path / "d"), exclude=["dependents"])
    dump = load_cluster_dump(path)
    for record in dump["scheduler"]["tasks"].values():
        assert "dependents" not in record
        assert "state" in record
    for worker in dump["workers"].values():
        for record in worker["tasks"].values():
            assert "dependents" not in record
    with pytest.raises(ValueError, match="format"):
        await trident_client.dump_cluster_state(str(tmp_path / "x"), format="json")
