"""`CoordinationState` through `SchedulerState`: messages in, replies out, invariants
checked after every step (the harness validates on each flush)."""

from __future__ import annotations

import itertools

from trident.protocol import messages as m
from trident.protocol.serialize import dumps, loads
from trident.scheduler.holds import HOLDER_ID

from .test_state import Harness, sent, spec

_request_ids = itertools.count(1)


def rid():
    return next(_request_ids)


def replies(out, client="c"):
    return {msg.request_id: msg for msg in sent(out, client, m.Reply)}


def value(payload=42, keys=()):
    return m.StoredValue(dumps(payload), list(keys))


def acquire(h, name="x", *, client="c", kind="lock", task=None, worker=None, lease=None, **kw):
    request_id = rid()
    msg = m.AcquireLeases(
        request_id,
        kind,
        [name] if isinstance(name, str) else list(name),
        kw.get("count", 1 if isinstance(name, str) else len(name)),
        kw.get("max_leases", 1),
        lease or f"lease-{request_id}",
        task,
        worker,
    )
    return request_id, msg.lease, h.client(msg, client=client)


def two_clients(**kwargs):
    return Harness(clients=("c", "d"), **kwargs)


# --- leases -------------------------------------------------------------------------------


def test_a_lock_waits_on_the_scheduler_and_is_granted_on_release():
    h = two_clients()
    first, lease, out = acquire(h)
    assert replies(out)[first].value is True
    second, _, out = acquire(h, client="d")
    assert not replies(out, "d")  # parked, no answer yet
    out = h.client(m.ReleaseLease("lock", lease))
    assert replies(out, "d")[second].value is True


def test_withdrawing_a_wait_answers_none_exactly_once():
    h = two_clients()
    acquire(h)
    waiting, _, _ = acquire(h, client="d")
    out = h.client(m.Withdraw(waiting), client="d")
    assert replies(out, "d")[waiting].value is None
    assert not h.client(m.Withdraw(waiting), client="d")  # nothing pending any more


def test_only_the_owner_releases_a_lease():
    h = two_clients()
    _, lease, _ = acquire(h)
    h.client(m.ReleaseLease("lock", lease), client="d")
    assert h.state.coordination.leases["lock"].held("x") == 1


def test_a_disconnecting_client_gives_its_leases_back():
    h = two_clients()
    acquire(h)
    waiting, _, _ = acquire(h, client="d")
    h.state.remove_client("c")
    out = h.flush()
    assert replies(out, "d")[waiting].value is True


def test_a_failing_task_gives_its_leases_back():
    h = two_clients()
    h.submit(spec("t-1"))
    worker = h.state.tasks["t-1"].processing_on.address
    acquire(h, task="t-1", worker=worker, client="c")
    waiting, _, _ = acquire(h, client="d")
    out = h.fail("t-1")
    assert replies(out, "d")[waiting].value is True


def test_a_cancelled_task_gives_its_leases_back_and_stops_waiting():
    h = two_clients()
    h.submit(spec("t-1"), spec("t-2"))
    acquire(h, task="t-1", worker="w0")
    blocked, _, _ = acquire(h, task="t-2", worker="w1")  # t-2 waits for the lock
    other, _, _ = acquire(h, client="d")
    out = h.client(m.ReleaseKeys(["t-2"]))
    assert replies(out)[blocked].value is None  # the cancelled task's wait ends
    out = h.client(m.ReleaseKeys(["t-1"]))
    assert replies(out, "d")[other].value is True


def test_a_lost_worker_gives_back_the_leases_taken_there():
    h = two_clients()
    acquire(h, worker="w1")  # e.g. an actor method on w1
    waiting, _, _ = acquire(h, client="d")
    h.state.remove_worker("w1")
    assert replies(h.flush(), "d")[waiting].value is True


def test_a_task_rerun_after_its_worker_died_gives_back_its_lease():
    h = two_clients()
    h.submit(spec("t-1"))
    worker = h.state.tasks["t-1"].processing_on.address
    acquire(h, task="t-1", worker=None)
    waiting, _, _ = acquire(h, client="d")
    h.state.remove_worker(worker)
    assert replies(h.flush(), "d")[waiting].value is True


def test_semaphore_counts_and_mismatched_sizes():
    h = Harness()
    for _ in range(2):
        acquire(h, "s", kind="semaphore", max_leases=2)
    count = rid()
    out = h.client(m.LeaseCount(count, "semaphore", "s"))
    assert replies(out)[count].value == 2
    bad, _, out = acquire(h, "s", kind="semaphore", max_leases=3)
    assert "max_leases=2" in replies(out)[bad].error


def test_a_multi_lock_and_a_lock_exclude_each_other():
    h = two_clients()
    _, lease, _ = acquire(h, ["a", "b"])
    single, _, out = acquire(h, "b", client="d")
    assert not replies(out, "d")
    out = h.client(m.ReleaseLease("lock", lease))
    assert replies(out, "d")[single].value is True


# --- queues -------------------------------------------------------------------------------


def put(h, name, payload, client="c", front=False, keys=()):
    request_id = rid()
    out = h.client(m.QueuePut(request_id, name, [value(payload, keys)], front, None), client)
    return request_id, out


def get(h, name, batch=0, client="c", task=None):
    request_id = rid()
    return request_id, h.client(m.QueueGet(request_id, name, batch, task), client)


def items_of(reply):
    items, handoff = reply.value
    return [loads(payload) for payload, _ in items], handoff


def test_queue_items_come_out_in_order_and_getters_wait():
    h = two_clients()
    h.client(m.QueueCreate("q", 0))
    put(h, "q", 1)
    put(h, "q", 2)
    first, out = get(h, "q")
    assert items_of(replies(out)[first]) == ([1], None)
    waiting, out = get(h, "q", batch=2, client="d")
    assert not replies(out, "d")
    _, out = put(h, "q", 3)
    assert items_of(replies(out, "d")[waiting])[0] == [2, 3]
    put(h, "q", 4)
    size = rid()
    assert replies(h.client(m.QueueSize(size, "q")))[size].value == 1
    everything, out = get(h, "q", batch=-1)
    assert items_of(replies(out)[everything])[0] == [4]


def test_a_full_queue_makes_putters_wait():
    h = Harness()
    h.client(m.QueueCreate("q", 1))
    first, out = put(h, "q", 1)
    assert replies(out)[first].value is True
    second, out = put(h, "q", 2)
    assert second not in replies(out)
    taken, out = get(h, "q")
    assert items_of(replies(out)[taken])[0] == [1]
    assert replies(out)[second].value is True


def test_items_put_back_go_to_the_front():
    h = Harness()
    put(h, "q", 2)
    put(h, "q", 1, front=True)
    taken, out = get(h, "q", batch=2)
    assert items_of(replies(out)[taken])[0] == [1, 2]


def test_closing_a_queue_fails_its_waiters():
    h = Harness()
    waiting, _ = get(h, "q")
    out = h.client(m.QueueClose("q"))
    assert "closed" in replies(out)[waiting].error
    assert "q" not in h.state.coordination.queues


def test_a_cancelled_task_stops_waiting_for_an_item():
    h = Harness()
    h.submit(spec("t-1"))
    waiting, _ = get(h, "q", task="t-1")
    out = h.client(m.ReleaseKeys(["t-1"]))
    assert replies(out)[waiting].value is None
    put(h, "q", 1)
    assert len(h.state.coordination.queues["q"].items) == 1  # nobody took it


def test_a_future_in_a_queue_keeps_its_key_alive_until_handed_over():
    h = two_clients()
    h.submit(spec("f-1"))
    h.finish("f-1")
    put(h, "q", "a future", keys=["f-1"])
    h.client(m.ReleaseKeys(["f-1"]))  # the putting client drops its future
    assert h.state.tasks["f-1"].state == "memory"
    taken, out = get(h, "q", client="d")
    _, handoff = items_of(replies(out, "d")[taken])
    assert handoff is not None
    h.client(m.WantKeys(["f-1"]), client="d")  # the receiver makes its own future
    h.client(m.HandoffsDone([handoff]), client="d")
    assert h.state.tasks["f-1"].state == "memory"
    h.client(m.ReleaseKeys(["f-1"]), client="d")
    assert "f-1" not in h.state.tasks


def test_a_handoff_is_released_when_its_client_leaves():
    h = two_clients()
    h.submit(spec("f-1"))
    h.finish("f-1")
    put(h, "q", "a future", keys=["f-1"])
    h.client(m.ReleaseKeys(["f-1"]))
    get(h, "q", client="d")
    h.state.remove_client("d")
    h.flush()
    assert "f-1" not in h.state.tasks


def test_messages_for_the_holder_are_never_sent():
    h = Harness()
    h.submit(spec("f-1"))
    put(h, "q", "pending future", keys=["f-1"])
    out = h.finish("f-1")
    assert HOLDER_ID not in out


# --- variables, events, topics -----------------------------------------------------------


def test_variable_get_waits_for_a_value_and_set_replaces_it():
    h = two_clients()
    h.submit(spec("f-1"), spec("f-2"))
    h.finish("f-1")
    h.finish("f-2")
    waiting = rid()
    out = h.client(m.VariableGet(waiting, "v", None), client="d")
    assert not replies(out, "d")
    setter = rid()
    out = h.client(m.VariableSet(setter, "v", value("one", ["f-1"])))
    assert replies(out)[setter].value is True
    payload, keys, handoff = replies(out, "d")[waiting].value
    assert loads(payload) == "one"
    assert keys == ["f-1"]
    assert handoff is not None
    h.client(m.HandoffsDone([handoff]), client="d")
    h.client(m.ReleaseKeys(["f-1", "f-2"]))
    assert {"f-1"} <= set(h.state.tasks)
    assert "f-2" not in h.state.tasks
    h.client(m.VariableSet(rid(), "v", value("two")))
    assert "f-1" not in h.state.tasks  # replaced: the old future is released
    h.client(m.VariableDelete("v"))
    assert "v" not in h.state.coordination.variables


def test_events_release_every_waiter():
    h = two_clients()
    waiters = [(rid(), client) for client in ("c", "d")]
    for request_id, client in waiters:
        h.client(m.EventWait(request_id, "e", None), client)
    out = h.client(m.EventSet(rid(), "e", True))
    for request_id, client in waiters:
        assert replies(out, client)[request_id].value is True
    immediate = rid()
    assert replies(h.client(m.EventWait(immediate, "e", None)))[immediate].value is True
    h.client(m.EventSet(rid(), "e", False))
    assert "e" not in h.state.coordination.events


def test_published_values_reach_subscribed_clients_only():
    h = two_clients()
    h.client(m.TopicSubscription("t", True), client="d")
    out = h.client(m.Publish("t", value("hello")))
    (published,) = sent(out, "d", m.Published)
    assert loads(published.value.payload) == "hello"
    assert published.handoff is None
    assert not sent(out, "c", m.Published)
    h.client(m.TopicSubscription("t", False), client="d")
    assert not sent(h.client(m.Publish("t", value("again"))), "d", m.Published)


# --- datasets and metadata -----------------------------------------------------------------


def test_datasets_are_shared_and_hold_their_futures():
    h = two_clients()
    h.submit(spec("f-1"))
    h.finish("f-1")
    publish = rid()
    out = h.client(m.PublishDatasets(publish, {"ds": value("data", ["f-1"])}, False))
    assert replies(out)[publish].value == []
    again = rid()
    out = h.client(m.PublishDatasets(again, {"ds": value("x"), "new": value(1)}, False))
    assert replies(out)[again].value == ["ds"]
    assert set(h.state.datasets.datasets) == {"ds"}  # all or nothing
    h.client(m.ReleaseKeys(["f-1"]))
    assert h.state.tasks["f-1"].state == "memory"
    listing = rid()
    assert replies(h.client(m.ListDatasets(listing), client="d"), "d")[listing].value == ["ds"]
    fetch = rid()
    out = h.client(m.GetDataset(fetch, "ds"), client="d")
    payload, keys, handoff = replies(out, "d")[fetch].value
    assert loads(payload) == "data"
    assert keys == ["f-1"]
    h.client(m.HandoffsDone([handoff]), client="d")
    h.client(m.UnpublishDataset(rid(), ["ds"]))
    assert "f-1" not in h.state.tasks
    missing = rid()
    assert replies(h.client(m.GetDataset(missing, "ds")))[missing].value is None


def test_metadata_walks_nested_keys():
    h = Harness()
    h.client(m.SetMetadata(rid(), ["a", "b", "c"], dumps(1)))
    h.client(m.SetMetadata(rid(), ["a", "d"], {"e": dumps(2)}))
    query = rid()
    found, tree = replies(h.client(m.GetMetadata(query, ["a"])))[query].value
    assert found
    assert loads(tree["b"]["c"]) == 1
    assert loads(tree["d"]["e"]) == 2
    query = rid()
    assert replies(h.client(m.GetMetadata(query, ["a", "x"])))[query].value == [False, None]
    h.client(m.SetMetadata(rid(), ["a", "b"], dumps("leaf")))
    query = rid()
    assert replies(h.client(m.GetMetadata(query, ["a", "b", "c"])))[query].value[0] is False


# --- error replay ---------------------------------------------------------------------------


def test_the_cause_of_a_failure_is_the_task_that_raised():
    h = Harness()
    h.submit(spec("a-1"), spec("b-1", ["a-1"]), spec("c-1", ["b-1"]))
    h.finish("a-1")
    h.fail("b-1")
    assert h.state.tasks["c-1"].state == "erred"
    h.client(m.ReleaseKeys(["a-1", "b-1"]))  # only the last future is kept
    query = rid()
    cause = replies(h.client(m.ErrorCause(query, "c-1")))[query].value
    assert cause["key"] == "b-1"
    assert cause["dependencies"] == ["a-1"]
    assert loads(cause["args"]) == "b-1"
    assert loads(cause["function"]) is len
    query = rid()
    assert "did not fail" in replies(h.client(m.ErrorCause(query, "a-1")))[query].error
