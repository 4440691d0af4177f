"""`LeaseTable` alone: grants, fairness, multi-name requests and their limits."""

from __future__ import annotations

import itertools

import pytest

from trident.scheduler.leases import LeaseRequest, LeaseTable

_ids = itertools.count()


def req(names, count=None, max_leases=1, client="c"):
    names = [names] if isinstance(names, str) else list(names)
    n = next(_ids)
    return LeaseRequest(client, n, f"lease-{n}", names, count or len(names), max_leases)


def step(table, result):
    table.validate()
    return result


def test_a_lock_is_granted_to_one_request_at_a_time():
    table = LeaseTable("lock")
    a, b = req("x"), req("x")
    assert step(table, table.request(a)) == [a]
    assert step(table, table.request(b)) == []
    assert table.held("x") == 1
    released, granted = table.release(a.lease)
    table.validate()
    assert released is a
    assert granted == [b]
    table.release(b.lease)
    table.validate()
    assert table.held("x") == 0
    assert not table.capacity


def test_a_semaphore_grants_max_leases_at_once():
    table = LeaseTable("semaphore")
    reqs = [req("db", max_leases=2) for _ in range(3)]
    granted = [g for r in reqs for g in step(table, table.request(r))]
    assert granted == reqs[:2]
    assert step(table, table.release(reqs[0].lease))[1] == [reqs[2]]


def test_a_multi_request_takes_all_its_names_or_none():
    table = LeaseTable("lock")
    holder = req("b")
    table.request(holder)
    both = req(["a", "b"])
    assert step(table, table.request(both)) == []
    assert table.held("a") == 0  # nothing taken while waiting
    assert step(table, table.release(holder.lease))[1] == [both]
    assert both.granted == ["a", "b"]
    assert table.held("a") == table.held("b") == 1


def test_the_earliest_waiter_keeps_its_claims_so_it_cannot_starve():
    table = LeaseTable("lock")
    holder = req("b")
    table.request(holder)
    both = req(["a", "b"])
    table.request(both)
    late = req("a")
    assert step(table, table.request(late)) == []  # "a" is claimed by the earlier waiter
    _, granted = table.release(holder.lease)
    assert granted == [both]
    _, granted = table.release(both.lease)
    assert step(table, granted) == [late]


def test_withdrawing_a_waiter_lets_later_requests_through():
    table = LeaseTable("lock")
    holder = req("b")
    table.request(holder)
    both = req(["a", "b"])
    table.request(both)
    late = req("a")
    table.request(late)
    assert step(table, table.withdraw(both)) == [late]
    assert step(table, table.withdraw(both)) == []


def test_some_of_several_names():
    table = LeaseTable("lock")
    table.request(req("a"))
    two_of_three = req(["a", "b", "c"], count=2)
    assert step(table, table.request(two_of_three)) == [two_of_three]
    assert two_of_three.granted == ["b", "c"]


def test_invalid_requests_are_refused():
    table = LeaseTable("semaphore")
    table.request(req("s", max_leases=2))
    with pytest.raises(ValueError, match="max_leases=2"):
        table.request(req("s", max_leases=3))
    with pytest.raises(ValueError, match="cannot take 3"):
        table.request(req(["a", "b"], count=3))
    first = req("t")
    table.request(first)
    with pytest.raises(KeyError):
        table.request(LeaseRequest("c", 99, first.lease, ["t"], 1, 1))
    table.validate()


def test_releasing_an_unknown_lease_does_nothing():
    table = LeaseTable("lock")
    assert table.release("nope") == (None, [])
