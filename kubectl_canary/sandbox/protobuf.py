"""Decoding the Kubernetes protobuf request bodies that kubectl's typed generators send
(`kubectl create namespace|configmap|secret|serviceaccount|deployment|service ...`).

Only the messages those commands produce are described here, by field number as in the
upstream `generated.proto` files. Go's protobuf encoding writes every non-pointer field even
when it is empty, so zero values of known fields are dropped (as JSON `omitempty` would) unless
the field is a pointer whose zero is meaningful (`replicas: 0`). A field this table does not
know is tolerated only when it is empty; otherwise decoding fails, so data is never dropped
silently.
"""

from __future__ import annotations

import base64
import struct
import time
from dataclasses import dataclass
from typing import Any

MAGIC = b"k8s\x00"


class ProtobufError(ValueError):
    """A body this decoder cannot represent faithfully as JSON."""


@dataclass(frozen=True)
class F:
    """A field: JSON name, type (scalar name or message name), repeated, keep zero values."""

    name: str
    type: str
    repeated: bool = False
    keep_zero: bool = False


# Scalar types: str, bytes (base64 in JSON), int, bool, time, intorstr; "map" is
# map<string,string>, "mapbytes" map<string,bytes>, "mapquantity" map<string,Quantity>.
MESSAGES: dict[str, dict[int, F]] = {
    "ObjectMeta": {
        1: F("name", "str"),
        2: F("generateName", "str"),
        3: F("namespace", "str"),
        4: F("selfLink", "str"),
        5: F("uid", "str"),
        6: F("resourceVersion", "str"),
        7: F("generation", "int"),
        8: F("creationTimestamp", "time"),
        9: F("deletionTimestamp", "time"),
        10: F("deletionGracePeriodSeconds", "int", keep_zero=True),
        11: F("labels", "map"),
        12: F("annotations", "map"),
        13: F("ownerReferences", "OwnerReference", repeated=True),
        14: F("finalizers", "str", repeated=True),
    },
    "OwnerReference": {
        1: F("kind", "str"),
        3: F("name", "str"),
        4: F("uid", "str"),
        5: F("apiVersion", "str"),
        6: F("controller", "bool", keep_zero=True),
        7: F("blockOwnerDeletion", "bool", keep_zero=True),
    },
    "LabelSelector": {
        1: F("matchLabels", "map"),
        2: F("matchExpressions", "LabelSelectorRequirement", repeated=True),
    },
    "LabelSelectorRequirement": {
        1: F("key", "str"),
        2: F("operator", "str"),
        3: F("values", "str", repeated=True),
    },
    "Namespace": {1: F("metadata", "ObjectMeta"), 2: F("spec", "NamespaceSpec")},
    "NamespaceSpec": {1: F("finalizers", "str", repeated=True)},
    "ConfigMap": {
        1: F("metadata", "ObjectMeta"),
        2: F("data", "map"),
        3: F("binaryData", "mapbytes"),
        4: F("immutable", "bool", keep_zero=True),
    },
    "Secret": {
        1: F("metadata", "ObjectMeta"),
        2: F("data", "mapbytes"),
        3: F("type", "str"),
        4: F("stringData", "map"),
        5: F("immutable", "bool", keep_zero=True),
    },
    "ServiceAccount": {
        1: F("metadata", "ObjectMeta"),
        3: F("imagePullSecrets", "LocalObjectReference", repeated=True),
        4: F("automountServiceAccountToken", "bool", keep_zero=True),
    },
    "LocalObjectReference": {1: F("name", "str")},
    "Service": {1: F("metadata", "ObjectMeta"), 2: F("spec", "ServiceSpec")},
    "ServiceSpec": {
        1: F("ports", "ServicePort", repeated=True),
        2: F("selector", "map"),
        3: F("clusterIP", "str"),
        4: F("type", "str"),
        5: F("externalIPs", "str", repeated=True),
        7: F("sessionAffinity", "str"),
        10: F("externalName", "str"),
    },
    "ServicePort": {
        1: F("name", "str"),
        2: F("protocol", "str"),
        3: F("port", "int"),
        4: F("targetPort", "intorstr"),
        5: F("nodePort", "int"),
    },
    "Deployment": {1: F("metadata", "ObjectMeta"), 2: F("spec", "DeploymentSpec")},
    "Pod": {1: F("metadata", "ObjectMeta"), 2: F("spec", "PodSpec")},
    "DeploymentSpec": {
        1: F("replicas", "int", keep_zero=True),
        2: F("selector", "LabelSelector"),
        3: F("template", "PodTemplateSpec"),
        4: F("strategy", "DeploymentStrategy"),
        5: F("minReadySeconds", "int"),
        6: F("revisionHistoryLimit", "int", keep_zero=True),
        7: F("paused", "bool"),
        9: F("progressDeadlineSeconds", "int", keep_zero=True),
    },
    "DeploymentStrategy": {1: F("type", "str")},
    "PodTemplateSpec": {1: F("metadata", "ObjectMeta"), 2: F("spec", "PodSpec")},
    "PodSpec": {
        2: F("containers", "Container", repeated=True),
        3: F("restartPolicy", "str"),
        6: F("dnsPolicy", "str"),
        8: F("serviceAccountName", "str"),
    },
    "Container": {
        1: F("name", "str"),
        2: F("image", "str"),
        3: F("command", "str", repeated=True),
        4: F("args", "str", repeated=True),
        5: F("workingDir", "str"),
        6: F("ports", "ContainerPort", repeated=True),
        7: F("env", "EnvVar", repeated=True),
        8: F("resources", "ResourceRequirements"),
        13: F("terminationMessagePath", "str"),
        14: F("imagePullPolicy", "str"),
        16: F("stdin", "bool"),
        17: F("stdinOnce", "bool"),
        18: F("tty", "bool"),
        20: F("terminationMessagePolicy", "str"),
    },
    "ContainerPort": {
        1: F("name", "str"),
        2: F("hostPort", "int"),
        3: F("containerPort", "int"),
        4: F("protocol", "str"),
        5: F("hostIP", "str"),
    },
    "EnvVar": {1: F("name", "str"), 2: F("value", "str")},
    "Role": {1: F("metadata", "ObjectMeta"), 2: F("rules", "PolicyRule", repeated=True)},
    "ClusterRole": {1: F("metadata", "ObjectMeta"), 2: F("rules", "PolicyRule", repeated=True)},
    "PolicyRule": {
        1: F("verbs", "str", repeated=True),
        2: F("apiGroups", "str", repeated=True),
        3: F("resources", "str", repeated=True),
        4: F("resourceNames", "str", repeated=True),
        5: F("nonResourceURLs", "str", repeated=True),
    },
    "RoleBinding": {
        1: F("metadata", "ObjectMeta"),
        2: F("subjects", "Subject", repeated=True),
        3: F("roleRef", "RoleRef"),
    },
    "Subject": {
        1: F("kind", "str"),
        2: F("apiGroup", "str"),
        3: F("name", "str"),
        4: F("namespace", "str"),
    },
    "RoleRef": {1: F("apiGroup", "str"), 2: F("kind", "str"), 3: F("name", "str")},
    "ResourceRequirements": {1: F("limits", "mapquantity"), 2: F("requests", "mapquantity")},
}

# Top-level messages by (apiVersion, kind).
TOP_LEVEL = {
    ("v1", "Namespace"): "Namespace",
    ("v1", "ConfigMap"): "ConfigMap",
    ("v1", "Secret"): "Secret",
    ("v1", "ServiceAccount"): "ServiceAccount",
    ("v1", "Service"): "Service",
    ("v1", "Pod"): "Pod",
    ("apps/v1", "Deployment"): "Deployment",
    ("rbac.authorization.k8s.io/v1", "Role"): "Role",
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): "ClusterRole",
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): "RoleBinding",
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): "RoleBinding",
}


# ---- wire format --------------------------------------------------------------------------


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ProtobufError("truncated varint")
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _fields(data: bytes) -> list[tuple[int, int, Any]]:
    """(field number, wire type, raw value) for every field of a message."""
    out = []
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        value: Any
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 2:
            length, pos = _varint(data, pos)
            value = data[pos : pos + length]
            if len(value) != length:
                raise ProtobufError("truncated field")
            pos += length
        elif wire == 1:
            value = struct.unpack_from("<q", data, pos)[0]
            pos += 8
        elif wire == 5:
            value = struct.unpack_from("<i", data, pos)[0]
            pos += 4
        else:
            raise ProtobufError(f"unsupported wire type {wire}")
        out.append((number, wire, value))
    return out


def _signed(value: int) -> int:
    # int32/int64 negatives are sent as 64-bit two's complement varints.
    return value - (1 << 64) if value >= 1 << 63 else value


def _is_zero(wire: int, value: Any) -> bool:
    """Empty scalar, or a message whose fields are all empty (a status struct with nothing
    set still encodes its empty string fields)."""
    if wire in (0, 1, 5):
        return bool(value == 0)
    if not value:
        return True
    try:
        return all(_is_zero(w, v) for _, w, v in _fields(value))
    except (ProtobufError, struct.error):
        return False


def _scalar(kind: str, wire: int, value: Any) -> Any:
    if kind == "str":
        return bytes(value).decode("utf-8")
    if kind == "bytes":
        return base64.b64encode(bytes(value)).decode()
    if kind == "int":
        return _signed(value) if wire == 0 else value
    if kind == "bool":
        return bool(value)
    if kind == "time":
        fields = {n: v for n, _, v in _fields(value)}
        seconds = _signed(fields.get(1, 0))
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds)) if seconds else None
    if kind == "intorstr":
        fields = {n: v for n, _, v in _fields(value)}
        if fields.get(1, 0) == 1:
            return bytes(fields.get(3, b"")).decode()
        return _signed(fields.get(2, 0))
    raise ProtobufError(f"unknown scalar type {kind}")


def _map(kind: str, value: bytes) -> tuple[str, Any]:
    entry = {n: v for n, _, v in _fields(value)}
    key = bytes(entry.get(1, b"")).decode()
    raw = entry.get(2, b"")
    if kind == "map":
        return key, bytes(raw).decode()
    if kind == "mapbytes":
        return key, base64.b64encode(bytes(raw)).decode()
    quantity = {n: v for n, _, v in _fields(raw)}  # resource.Quantity {1: string}
    return key, bytes(quantity.get(1, b"")).decode()


def _message(name: str, data: bytes, path: str) -> dict[str, Any]:
    schema = MESSAGES[name]
    out: dict[str, Any] = {}
    for number, wire, value in _fields(data):
        spec = schema.get(number)
        if spec is None:
            if _is_zero(wire, value):
                continue  # an empty field Go always encodes
            raise ProtobufError(f"field {number} of {name} at {path or '<root>'} is not supported")
        where = f"{path}.{spec.name}" if path else spec.name
        if spec.type in ("map", "mapbytes", "mapquantity"):
            key, item = _map(spec.type, value)
            out.setdefault(spec.name, {})[key] = item
            continue
        if spec.type in MESSAGES:
            item = _message(spec.type, value, where)
        else:
            item = _scalar(spec.type, wire, value)
        if spec.repeated:
            out.setdefault(spec.name, []).append(item)
        elif item is None or (not spec.keep_zero and item in ("", 0, False, {})):
            continue
        else:
            out[spec.name] = item
    return out


def decode(body: bytes) -> dict[str, Any]:
    """A protobuf-encoded object (with the `k8s\\0` envelope) as its JSON dict."""
    if not body.startswith(MAGIC):
        raise ProtobufError("missing the k8s protobuf envelope")
    envelope = {n: v for n, _, v in _fields(body[len(MAGIC) :])}
    type_meta = {n: v for n, _, v in _fields(envelope.get(1, b""))}
    api_version = bytes(type_meta.get(1, b"")).decode()
    kind = bytes(type_meta.get(2, b"")).decode()
    message = TOP_LEVEL.get((api_version, kind))
    if message is None:
        raise ProtobufError(f"protobuf bodies of {api_version} {kind} are not supported")
    obj = _message(message, envelope.get(2, b""), "")
    return {"apiVersion": api_version, "kind": kind, **obj}
