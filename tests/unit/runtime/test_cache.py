"""Informers: list, watch from the list's version, re-list on 410, reconnect on silence."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

from agent.cache import LAST_APPLIED, Caches, Informer, WatchSettings, lean_copy, rv_newer
from kubectl_canary.resources import ApiError, NotFoundError

from .polling import wait_until


def obj(name: str, rv: str, data: str = "") -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"namespace": "ns", "name": name, "resourceVersion": rv},
        "data": {"v": data},
    }


class ScriptedServer:
    """Answers list/watch from a script; records the resourceVersions watches start from."""

    def __init__(self, lists: list[list[dict]], watches: list[list | Exception]) -> None:
        self.lists = lists
        self.watches = watches
        self.list_calls = 0
        self.watch_from: list[str] = []
        self.idle = threading.Event()

    def list(self, api_version, kind, namespace=None, label_selector=None):
        items = self.lists[min(self.list_calls, len(self.lists) - 1)]
        self.list_calls += 1
        rv = max((int(i["metadata"]["resourceVersion"]) for i in items), default=1)
        return [dict(i) for i in items], str(rv)

    def watch(self, api_version, kind, namespace, rv, timeout_seconds, silence_seconds):
        self.watch_from.append(rv)
        if not self.watches:
            self.idle.set()
            time.sleep(0.05)
            return iter(())
        step = self.watches.pop(0)
        if isinstance(step, Exception):
            raise step
        return self._stream(step)

    @staticmethod
    def _stream(events: list) -> Iterator[tuple[str, dict]]:
        yield from events


def informer(server: ScriptedServer, seen: list | None = None) -> Informer:
    settings = WatchSettings(timeout_seconds=1, silence_seconds=1, retry_seconds=0.01)
    handler = (
        (lambda e, o, p: seen.append((e, o["metadata"]["name"]))) if seen is not None else None
    )
    return Informer(server, "v1", "ConfigMap", None, handler, settings)


def test_list_then_watch_from_the_lists_version_and_follow_bookmarks() -> None:
    server = ScriptedServer(
        [[obj("a", "5")]],
        [[("ADDED", obj("b", "6")), ("BOOKMARK", {"metadata": {"resourceVersion": "9"}})]],
    )
    seen: list = []
    inf = informer(server, seen)
    inf.start()
    try:
        assert server.idle.wait(5)
        assert server.watch_from[:2] == ["5", "9"]
        assert {o["metadata"]["name"] for o in inf.items()} == {"a", "b"}
        assert seen == [("ADDED", "a"), ("ADDED", "b")]
        assert server.list_calls == 1
    finally:
        inf.stop()


def test_gone_lists_again_and_reports_the_difference() -> None:
    gone = ApiError("too old", 410, "Expired")
    server = ScriptedServer(
        [[obj("a", "5"), obj("b", "5")], [obj("a", "7", "new"), obj("c", "7")]],
        [gone],
    )
    seen: list = []
    inf = informer(server, seen)
    inf.start()
    try:
        assert server.idle.wait(5)
        assert server.list_calls == 2
        assert sorted(seen[2:]) == [("ADDED", "c"), ("DELETED", "b"), ("MODIFIED", "a")]
        assert inf.get("ns", "a")["data"] == {"v": "new"}
        assert inf.get("ns", "b") is None
    finally:
        inf.stop()


def test_a_handler_storing_its_own_write_while_a_list_is_told_does_not_break_the_watch() -> None:
    """Seen at 10,000 canaries: a tick triggered by the list's first ADDED wrote an object the
    list did not have, into the table being walked ("dictionary changed size")."""
    server = ScriptedServer([[obj("a", "5"), obj("b", "5")]], [])
    seen: list = []

    def handler(etype: str, o: dict, prev: dict | None) -> None:
        seen.append((etype, o["metadata"]["name"]))
        if o["metadata"]["name"] == "a":
            inf.observe_write(obj("a-primary", "6"))

    settings = WatchSettings(timeout_seconds=1, silence_seconds=1, retry_seconds=0.01)
    inf = Informer(server, "v1", "ConfigMap", None, handler, settings)
    inf.start()
    try:
        assert server.idle.wait(5)
        assert server.list_calls == 1, "the list was told once, without a crash and a re-list"
        assert sorted(seen) == [("ADDED", "a"), ("ADDED", "b")]
        assert inf.get("ns", "a-primary") is not None
    finally:
        inf.stop()


def test_silence_reconnects_from_the_last_version_without_listing() -> None:
    silence = ApiError("read timed out", 0, "Silence")
    server = ScriptedServer([[obj("a", "5")]], [[("MODIFIED", obj("a", "8"))], silence])
    inf = informer(server)
    inf.start()
    try:
        assert server.idle.wait(5)
        assert server.watch_from[:3] == ["5", "8", "8"]
        assert server.list_calls == 1
    finally:
        inf.stop()


def test_unserved_kind_is_an_empty_synced_cache() -> None:
    class NoKind(ScriptedServer):
        def list(self, *a, **k):
            self.list_calls += 1
            raise NotFoundError("no such kind", 404)

    server = NoKind([[]], [])
    inf = informer(server)
    inf.start()
    try:
        assert inf.synced.wait(5)
        assert not inf.served and inf.items() == []
    finally:
        inf.stop()


def test_our_own_write_is_never_replaced_by_an_older_version() -> None:
    server = ScriptedServer([[obj("a", "5")]], [])
    inf = informer(server)
    inf.start()
    try:
        assert server.idle.wait(5)
        inf.observe_write(obj("a", "10", "mine"))
        inf._apply("MODIFIED", obj("a", "8", "older"))
        assert inf.get("ns", "a")["data"] == {"v": "mine"}
        inf._apply("MODIFIED", obj("a", "11", "newer"))
        assert inf.get("ns", "a")["data"] == {"v": "newer"}
    finally:
        inf.stop()


def test_caches_answer_for_every_version_of_a_group_kind() -> None:
    server = ScriptedServer([[obj("a", "5")]], [])
    caches = Caches(server, ("ns",), WatchSettings(retry_seconds=0.01))
    caches.add("v1", "ConfigMap")
    caches.start()
    try:
        assert caches.wait_synced(5)
        wait_until(lambda: caches.get("v1", "ConfigMap", "ns", "a") is not None)
        assert caches.covers("v1", "ConfigMap", "ns")
        assert not caches.covers("v1", "ConfigMap", "other")  # not a watched namespace
        assert not caches.covers("v1", "Secret", "ns")
    finally:
        caches.stop()


def test_rv_newer() -> None:
    assert rv_newer("10", "9") and not rv_newer("9", "10") and not rv_newer("9", "9")
    assert rv_newer("abc", "9")  # opaque: the caller's copy wins


def applied(name: str, rv: str) -> dict:
    """An object as `kubectl apply` leaves it: managedFields and the last-applied copy."""
    o = obj(name, rv, "x" * 100)
    o["metadata"]["managedFields"] = [{"manager": "kubectl", "fieldsV1": {"f:data": {}}}]
    o["metadata"]["annotations"] = {LAST_APPLIED: '{"data": "..."}', "team": "a"}
    return o


def test_cached_copies_are_lean_on_every_way_in() -> None:
    server = ScriptedServer([[applied("listed", "5")]], [[("ADDED", applied("watched", "6"))]])
    inf = Informer(server, "v1", "ConfigMap", None, None, WatchSettings(retry_seconds=0.01), True)
    inf.start()
    try:
        assert server.idle.wait(5)
        written = applied("written", "7")
        inf.observe_write(written)
        for name in ("listed", "watched", "written"):
            meta = inf.get("ns", name)["metadata"]
            assert "managedFields" not in meta, name
            assert meta["annotations"] == {"team": "a"}, name
            assert inf.get("ns", name)["data"] == {"v": "x" * 100}
        # The caller's object (our write's answer) is left whole.
        assert "managedFields" in written["metadata"]
        assert LAST_APPLIED in written["metadata"]["annotations"]
    finally:
        inf.stop()


def test_last_applied_is_kept_for_kinds_written_back_from_the_cache() -> None:
    whole = applied("a", "5")
    slim = lean_copy(whole, drop_last_applied=False)
    assert "managedFields" not in slim["metadata"]
    assert set(slim["metadata"]["annotations"]) == {LAST_APPLIED, "team"}
    assert "managedFields" in whole["metadata"]  # the copy's input is left whole
