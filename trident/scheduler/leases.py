"""`LeaseTable`: leases on named slots, the state behind `Lock`, `MultiLock` and `Semaphore`.

Each name offers `max_leases` slots (1 for locks). A request asks for one slot on each of
`count` names among its `names` (a `MultiLock` may ask for some of its names, a `Lock`
or `Semaphore` asks for its one name) and is granted all of them at once, never part.

Waiting requests are served strictly in arrival order: in each pass the earliest request
claims the free slots it wants first, and the slots it claimed stay out of reach of
later requests even while it keeps waiting for the rest. A later request can therefore
never starve an earlier one, and since claims are taken in one global order, requests
waiting on each other's names cannot deadlock.

Pure bookkeeping: no messages, no clocks. `CoordinationState` answers the requests.
"""

from __future__ import annotations


class LeaseRequest:
    """One acquire: waiting until granted, then the lease itself until released."""

    __slots__ = (
        "client_id",
        "count",
        "granted",
        "lease",
        "max_leases",
        "names",
        "request_id",
        "task",
        "worker",
    )

    def __init__(
        self,
        client_id: str,
        request_id: int,
        lease: str,
        names: list[str],
        count: int,
        max_leases: int,
        task: str | None = None,
        worker: str | None = None,
    ):
        self.client_id = client_id
        self.request_id = request_id
        self.lease = lease
        self.names = names
        self.count = count
        self.max_leases = max_leases
        self.task = task
        self.worker = worker
        #: the names this lease holds, once granted
        self.granted: list[str] = []

    def __repr__(self) -> str:
        state = f"holds {self.granted}" if self.granted else f"waits for {self.names}"
        return f"<LeaseRequest {self.lease} {state}>"


class LeaseTable:
    """Leases and waiting requests of one namespace (``lock`` or ``semaphore``)."""

    def __init__(self, kind: str):
        self.kind = kind
        #: name -> slots it offers, while any lease or request mentions the name
        self.capacity: dict[str, int] = {}
        #: name -> slots taken
        self.taken: dict[str, int] = {}
        #: lease id -> granted request
        self.leases: dict[str, LeaseRequest] = {}
        #: requests not granted yet, in arrival order
        self.waiting: list[LeaseRequest] = []

    def request(self, req: LeaseRequest) -> list[LeaseRequest]:
        """Queue `req` and return every request granted as a result (maybe `req` itself).

        Raises `ValueError` when `req` disagrees with a name's number of slots, or asks
        for more names than it lists, and `KeyError` when its lease id is in use.
        """
        if not 0 < req.count <= len(set(req.names)):
            raise ValueError(f"cannot take {req.count} of the {len(req.names)} names {req.names}")
        if req.max_leases < 1:
            raise ValueError(f"max_leases must be at least 1, not {req.max_leases}")
        if req.lease in self.leases or any(w.lease == req.lease for w in self.waiting):
            raise KeyError(f"lease {req.lease!r} is already in use")
        for name in req.names:
            known = self.capacity.get(name)
            if known is not None and known != req.max_leases:
                raise ValueError(
                    f"{self.kind} {name!r} has max_leases={known}, not {req.max_leases}"
                )
        for name in req.names:
            self.capacity[name] = req.max_leases
        self.waiting.append(req)
        return self._grant()

    def withdraw(self, req: LeaseRequest) -> list[LeaseRequest]:
        """Drop a waiting request; returns the requests its leaving lets through."""
        if req not in self.waiting:
            return []
        self.waiting.remove(req)
        granted = self._grant()
        self._forget_idle(req.names)
        return granted

    def release(self, lease: str) -> tuple[LeaseRequest | None, list[LeaseRequest]]:
        """Give back a lease: (the released request or None, requests granted now)."""
        req = self.leases.pop(lease, None)
        if req is None:
            return None, []
        for name in req.granted:
            self.taken[name] -= 1
            if not self.taken[name]:
                del self.taken[name]
        granted = self._grant()
        self._forget_idle(req.names)
        return req, granted

    def held(self, name: str) -> int:
        """How many leases on `name` are held now."""
        return self.taken.get(name, 0)

    def _grant(self) -> list[LeaseRequest]:
        if not self.waiting:
            return []
        granted: list[LeaseRequest] = []
        free: dict[str, int] = {}
        still_waiting: list[LeaseRequest] = []
        for req in self.waiting:
            claimed = []
            for name in req.names:
                slots = free.get(name)
                if slots is None:
                    slots = free[name] = self.capacity[name] - self.taken.get(name, 0)
                if slots > 0 and name not in claimed:
                    claimed.append(name)
                    if len(claimed) == req.count:
                        break
            for name in claimed:
                free[name] -= 1
            if len(claimed) < req.count:
                still_waiting.append(req)
                continue
            req.granted = claimed
            for name in claimed:
                self.taken[name] = self.taken.get(name, 0) + 1
            self.leases[req.lease] = req
            granted.append(req)
        self.waiting = still_waiting
        return granted

    def _forget_idle(self, names: list[str]) -> None:
        """Forget the capacity of names no lease or request mentions any more."""
        for name in names:
            if name in self.taken or name not in self.capacity:
                continue
            if not any(name in req.names for req in self.waiting):
                del self.capacity[name]

    def validate(self) -> None:
        """Check the counts against the leases (for tests)."""
        counted: dict[str, int] = {}
        for lease, req in self.leases.items():
            assert req.lease == lease, req
            assert len(req.granted) == req.count, req
            for name in req.granted:
                counted[name] = counted.get(name, 0) + 1
        assert counted == self.taken, (counted, self.taken)
        for name, taken in self.taken.items():
            assert taken <= self.capacity[name], name
        for req in self.waiting:
            assert not req.granted, req
            assert req.lease not in self.leases, req
            for name in req.names:
                assert name in self.capacity, name
