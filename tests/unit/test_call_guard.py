"""The short-lived facts (``MemoryFactStore``) and the rules built on them (``CallGuard``):
time to live, bounded memory, one live socket per call, ended calls stay ended, nonces once."""

from __future__ import annotations

import pytest

from app.api.guard import CallGuard, SocketLease
from app.clock import FakeClock
from app.facts import MemoryFactStore


def guard_on(clock: FakeClock, max_entries: int = 1000) -> CallGuard:
    return CallGuard(MemoryFactStore(clock.now, max_entries), replay_window=3600, socket_ttl=600)


async def test_facts_expire_after_their_time_to_live() -> None:
    clock = FakeClock()
    store = MemoryFactStore(clock.now)
    assert await store.add("a", "1", 10)
    assert not await store.add("a", "2", 10)  # set only if absent
    await clock.advance(9.999)
    assert await store.get("a") == "1"
    await clock.advance(0.001)
    assert await store.get("a") is None
    assert await store.add("a", "3", 10)  # expired facts make room again
    await store.put("a", "4", 1)  # put replaces value and time to live
    await clock.advance(1)
    assert await store.get("a") is None
    assert len(store) == 1  # not swept until something is stored
    await store.put("b", "1", 5)
    assert len(store) == 1


async def test_remove_only_what_it_holds() -> None:
    store = MemoryFactStore(FakeClock().now)
    await store.put("live:c", "socket-1", 60)
    assert not await store.remove("live:c", "socket-2")
    assert await store.get("live:c") == "socket-1"
    assert await store.remove("live:c", "socket-1")
    assert await store.get("live:c") is None


async def test_memory_is_bounded_and_forgets_the_soonest_to_expire_first() -> None:
    clock = FakeClock()
    store = MemoryFactStore(clock.now, max_entries=100)
    await store.put("live:call", "s", 86_400)  # a long call's socket, stored first
    for i in range(10_000):
        await store.add(f"nonce:{i}", "1", 3600 + i)
        if i % 7 == 0:
            await store.remove(f"nonce:{i}", "1")  # leaves stale heap entries behind
    assert len(store) <= 100
    assert await store.get("live:call") == "s"  # never the one furthest from expiry
    assert await store.get("nonce:9999") == "1"
    assert await store.get("nonce:0") is None
    assert len(store._expiry) <= 2 * 100 + 64


async def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="max_entries"):
        MemoryFactStore(FakeClock().now, 0)
    with pytest.raises(ValueError, match="ttl"):
        await MemoryFactStore(FakeClock().now).put("k", "v", 0)


async def test_one_live_socket_per_call() -> None:
    guard = guard_on(FakeClock())
    first = await guard.open_socket("call-1")
    assert isinstance(first, SocketLease)
    assert await guard.open_socket("call-1") == "live"
    assert await guard.call_state("call-1") == "live"
    assert isinstance(await guard.open_socket("call-2"), SocketLease)  # other calls are free


@pytest.mark.parametrize("reason", ["socket-closed", "message-too-big", "error"])
async def test_a_dropped_socket_may_reconnect_until_the_hangup(reason: str) -> None:
    guard = guard_on(FakeClock())
    first = await guard.open_socket("call-1")
    assert isinstance(first, SocketLease)
    await guard.socket_ended(first, reason)
    assert await guard.call_state("call-1") == "new"
    again = await guard.open_socket("call-1")  # Vobiz's maxRetries: new socket, same URL
    assert isinstance(again, SocketLease)
    assert again.socket_id != first.socket_id
    await guard.socket_ended(again, reason)
    await guard.call_ended("call-1", "hangup")
    assert await guard.open_socket("call-1") == "ended"


@pytest.mark.parametrize(
    "reason", ["hangup", "stream-stopped", "call-id-mismatch", "unsupported-media-format", "agent"]
)
async def test_a_call_that_ended_stays_ended(reason: str) -> None:
    clock = FakeClock()
    guard = guard_on(clock)
    lease = await guard.open_socket("call-1")
    assert isinstance(lease, SocketLease)
    await guard.socket_ended(lease, reason)
    assert await guard.call_state("call-1") == "ended"
    await clock.advance(3599)
    assert await guard.open_socket("call-1") == "ended"


async def test_a_stale_lease_does_not_free_a_newer_socket() -> None:
    guard = guard_on(FakeClock())
    first = await guard.open_socket("call-1")
    assert isinstance(first, SocketLease)
    await guard.socket_ended(first, "socket-closed")
    second = await guard.open_socket("call-1")
    assert isinstance(second, SocketLease)
    await guard.socket_ended(first, "socket-closed")  # released twice: the second socket stays live
    assert await guard.open_socket("call-1") == "live"


async def test_a_nonce_is_good_once_within_the_window() -> None:
    clock = FakeClock()
    guard = guard_on(clock)
    assert await guard.first_use(["111", "222"])
    assert not await guard.first_use(["111", "222"])
    assert not await guard.first_use(["222"])  # a replay that keeps only one of the headers
    assert not await guard.first_use(["333", "111"])
    assert await guard.first_use(["333"])  # not remembered by the refused request above
    await clock.advance(3600)
    assert await guard.first_use(["111"])  # past the window: forgotten (documented limit)
