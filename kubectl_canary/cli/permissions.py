"""doctor's `agent permissions` check: what the agent's ServiceAccount may really do.

The `rbac` check compares objects; this one asks the API server (SubjectAccessReview) about
the effective rights, which other bindings can widen: every grant the plan makes must be
allowed, and a fixed list of dangerous extras must be denied. The comparison is pure
(`judge`) so it is tested without a cluster.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from kubectl_canary.cli.agent_info import AGENT_NAME
from kubectl_canary.kube import Kube
from kubectl_canary.resources import KubeError

Obj = dict[str, Any]


@dataclass(frozen=True)
class Access:
    group: str
    resource: str
    verb: str
    namespace: str = ""  # "" = cluster-wide (all namespaces)
    subresource: str = ""
    name: str = ""

    def __str__(self) -> str:
        res = f"{self.resource}/{self.subresource}" if self.subresource else self.resource
        res = f"{res}.{self.group}" if self.group else res
        scope = f" in {self.namespace}" if self.namespace else " cluster-wide"
        named = f" {self.name}" if self.name else ""
        return f"{self.verb} {res}{named}{scope}"


# Rights the agent must never have: each would let a compromised agent read every Secret,
# destroy workloads, run code in pods, grant itself more, or act as another identity.
DANGEROUS = (
    Access("", "secrets", "list"),
    Access("", "secrets", "watch"),
    Access("apps", "deployments", "delete"),
    Access("", "pods", "create", subresource="exec"),
    Access("rbac.authorization.k8s.io", "roles", "bind"),
    Access("rbac.authorization.k8s.io", "roles", "escalate"),
    Access("rbac.authorization.k8s.io", "clusterroles", "bind"),
    Access("rbac.authorization.k8s.io", "clusterroles", "escalate"),
    Access("", "serviceaccounts", "create", subresource="token"),
    Access("*", "*", "*"),
    Access("", "nodes", "get"),
)


def granted(docs: Iterable[Obj], watched: list[str]) -> list[Access]:
    """Every (group, resource, verb) the plan grants, in the scopes it grants them."""
    scopes = watched or [""]
    out: list[Access] = []
    for doc in docs:
        if doc["kind"] not in ("ClusterRole", "Role"):
            continue
        here = [doc["metadata"]["namespace"]] if doc["kind"] == "Role" else scopes
        for rule in doc.get("rules", []):
            names = rule.get("resourceNames") or [""]
            for group in rule["apiGroups"]:
                for res in rule["resources"]:
                    resource, _, sub = res.partition("/")
                    for verb in rule["verbs"]:
                        out += [
                            Access(group, resource, verb, ns, sub, name)
                            for ns in here
                            for name in names
                        ]
    return out


def judge(
    wanted: list[Access], allowed: Callable[[Access], bool]
) -> tuple[list[Access], list[Access]]:
    """(grants missing, dangerous extras allowed)."""
    missing = [a for a in wanted if not allowed(a)]
    excess = [a for a in DANGEROUS if allowed(a)]
    return missing, excess


class ReviewUnavailable(Exception):
    """The server does not answer SubjectAccessReviews (not served, forbidden, the sandbox)."""


def subject(namespace: str) -> tuple[str, list[str]]:
    user = f"system:serviceaccount:{namespace}:{AGENT_NAME}"
    groups = ["system:serviceaccounts", f"system:serviceaccounts:{namespace}"]
    return user, [*groups, "system:authenticated"]


def reviewer(kube: Kube, namespace: str) -> Callable[[Access], bool]:
    user, groups = subject(namespace)

    def allowed(a: Access) -> bool:
        attrs = {"group": a.group, "resource": a.resource, "verb": a.verb}
        attrs |= {
            k: v
            for k, v in (
                ("namespace", a.namespace),
                ("subresource", a.subresource),
                ("name", a.name),
            )
            if v
        }
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {"user": user, "groups": groups, "resourceAttributes": attrs},
        }
        try:
            answer = kube.create(review)
        except KubeError as e:
            raise ReviewUnavailable(str(e)) from None
        status = answer.get("status")
        if not isinstance(status, dict):
            raise ReviewUnavailable("the server answered a SubjectAccessReview without a status")
        return bool(status.get("allowed"))

    return allowed


def foreign_bindings(kube: Kube, namespace: str, our_names: set[tuple[str, str]]) -> list[str]:
    """Bindings granting the agent's ServiceAccount a role that is not one of ours."""
    found = []
    for kind in ("ClusterRoleBinding", "RoleBinding"):
        try:
            items, _ = kube.list("rbac.authorization.k8s.io/v1", kind, None)
        except KubeError:
            continue
        for b in items:
            subjects = b.get("subjects") or []
            if not any(
                s.get("kind") == "ServiceAccount"
                and s.get("name") == AGENT_NAME
                and s.get("namespace") == namespace
                for s in subjects
            ):
                continue
            role = b.get("roleRef") or {}
            if (role.get("kind"), role.get("name")) in our_names:
                continue
            ns = b["metadata"].get("namespace")
            where = f"{ns}/" if ns else ""
            found.append(f"{kind.lower()}/{where}{b['metadata']['name']} -> {role.get('name')}")
    return found
