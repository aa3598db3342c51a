"""The protobuf decoder on hand-built messages: known fields, Go's always-encoded empty
fields, and refusal of anything it would otherwise drop."""

from __future__ import annotations

import base64

import pytest

from kubectl_canary.sandbox.protobuf import MAGIC, ProtobufError, decode


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(number: int, payload: bytes | int) -> bytes:
    if isinstance(payload, int):
        return varint(number << 3) + varint(payload)
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    type_meta = field(1, api_version.encode()) + field(2, kind.encode())
    return MAGIC + field(1, type_meta) + field(2, raw)


def meta(name: str) -> bytes:
    # name, an empty generateName and an empty creationTimestamp, as Go encodes them.
    return field(1, name.encode()) + field(2, b"") + field(8, b"")


def test_decodes_configmap_and_secret_maps() -> None:
    raw = field(1, meta("cfg")) + field(2, field(1, b"a") + field(2, b"1"))
    assert decode(envelope("v1", "ConfigMap", raw)) == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cfg"},
        "data": {"a": "1"},
    }
    secret = (
        field(1, meta("s"))
        + field(2, field(1, b"pw") + field(2, b"\x00\xff"))
        + field(3, b"Opaque")
    )
    decoded = decode(envelope("v1", "Secret", secret))
    assert decoded["data"] == {"pw": base64.b64encode(b"\x00\xff").decode()}
    assert decoded["type"] == "Opaque"


def test_pointer_zero_is_kept_and_plain_zero_dropped() -> None:
    spec = field(1, 0) + field(5, 0)  # replicas: 0 (pointer), minReadySeconds: 0 (plain)
    decoded = decode(envelope("apps/v1", "Deployment", field(1, meta("d")) + field(2, spec)))
    assert decoded["spec"] == {"replicas": 0}


def test_unknown_fields_are_tolerated_only_when_empty() -> None:
    empty_status = field(3, field(1, b""))  # a status message holding only empty fields
    decode(envelope("v1", "Namespace", field(1, meta("ns")) + empty_status))
    with pytest.raises(ProtobufError, match="field 9 of ConfigMap"):
        decode(envelope("v1", "ConfigMap", field(1, meta("c")) + field(9, b"surprise")))
    with pytest.raises(ProtobufError, match="not supported"):
        decode(envelope("batch/v1", "Job", field(1, meta("j"))))
