"""Which cluster, user and namespace a command talks to, chosen by kubectl's kubeconfig rules.

kr8s (the plugin's HTTP layer, behind kubectl_canary/kube.py) loads a kubeconfig too, but not
the way kubectl does, so this module decides and hands kr8s one resolved context:
- several files in KUBECONFIG merge with the *first* file to name a cluster, user or context
  winning (kr8s lets the last one win);
- relative paths resolve against the file that wrote them (kr8s: against the current context's
  file or the working directory);
- `tokenFile`, impersonation (`as`, `as-uid`, `as-groups`, `as-user-extra`) and an
  auth-provider's id-token are understood (kr8s ignores the first two);
- an exec credential plugin is kept out of kr8s's hands: the adapter runs it itself so that it
  can honour `expirationTimestamp` (kubectl_canary/exec_credential.py).

Nothing here talks to the network; only PyYAML is imported.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from kubectl_canary.resources import ConfigError, Obj

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"

# Fields holding a file path that kubectl resolves against the kubeconfig file's directory.
_CLUSTER_PATHS = ("certificate-authority",)
_USER_PATHS = ("client-certificate", "client-key", "tokenFile")


@dataclass
class Impersonation:
    """Who the API server should act as (kubectl's --as, --as-group, --as-uid)."""

    user: str = ""
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def headers(self) -> list[tuple[str, str]]:
        """The Impersonate-* request headers; a list because groups repeat their header."""
        if not self.user:
            if self.groups or self.extra or self.uid:
                raise ConfigError(
                    "impersonating groups, a uid or extra fields needs a user too: add --as USER"
                )
            return []
        found = [("Impersonate-User", self.user)]
        if self.uid:
            found.append(("Impersonate-Uid", self.uid))
        found += [("Impersonate-Group", g) for g in self.groups]
        for key, values in self.extra.items():
            found += [(f"Impersonate-Extra-{key}", v) for v in values]
        return found


@dataclass
class Target:
    """One resolved context: everything needed to reach the cluster as its user."""

    context_name: str
    namespace: str
    server: str
    cluster: Obj  # the kubeconfig `cluster` entry, paths absolute
    user: Obj  # the `user` entry as kr8s reads it: no exec, no tokenFile, paths absolute
    exec_config: Obj | None = None
    token_file: str | None = None
    impersonation: Impersonation = field(default_factory=Impersonation)

    def kr8s_kubeconfig(self) -> Obj:
        """A one-context kubeconfig for kr8s; its `user` dict is this target's own (the adapter
        writes refreshed exec credentials into it)."""
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "target", "cluster": self.cluster}],
            "users": [{"name": "target", "user": self.user}],
            "contexts": [
                {
                    "name": self.context_name,
                    "context": {"cluster": "target", "user": "target", "namespace": self.namespace},
                }
            ],
            "current-context": self.context_name,
        }


def kubeconfig_paths(kubeconfig: str | None) -> list[str]:
    """--kubeconfig, else every existing file in $KUBECONFIG, else ~/.kube/config."""
    if kubeconfig:
        if not os.path.exists(kubeconfig):
            raise ConfigError(f"kubeconfig {kubeconfig} does not exist")
        return [kubeconfig]
    env = os.environ.get("KUBECONFIG")
    if env:
        return [p for p in env.split(os.pathsep) if p and os.path.exists(p)]
    default = os.path.join(os.path.expanduser("~"), ".kube", "config")
    return [default] if os.path.exists(default) else []


def _load(path: str) -> Obj:
    import yaml  # deferred: not every command needs a kubeconfig

    try:
        with open(path, encoding="utf-8") as f:
            doc = yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"cannot read kubeconfig {path}: {e}") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"kubeconfig {path} is not a mapping")
    return doc


def _absolute(entry: Obj, keys: tuple[str, ...], base: str) -> Obj:
    out = dict(entry)
    for key in keys:
        value = out.get(key)
        if isinstance(value, str) and value and not os.path.isabs(value):
            out[key] = os.path.join(base, value)
    return out


def merged(paths: list[str]) -> Obj:
    """kubectl's merge: per section, the first file to define a name wins; so does the first
    current-context. Entries come back with their paths made absolute."""
    out: Obj = {"clusters": {}, "users": {}, "contexts": {}, "current-context": ""}
    for path in paths:
        doc = _load(path)
        base = os.path.dirname(os.path.abspath(path))
        for section, inner, keys in (
            ("clusters", "cluster", _CLUSTER_PATHS),
            ("users", "user", _USER_PATHS),
            ("contexts", "context", ()),
        ):
            for entry in doc.get(section) or []:
                name = entry.get("name")
                if name is None or name in out[section]:
                    continue
                value = _absolute(entry.get(inner) or {}, keys, base)
                if section == "users" and isinstance(value.get("exec"), dict):
                    value["exec"] = _exec_command_absolute(value["exec"], base)
                out[section][name] = value
        if not out["current-context"] and doc.get("current-context"):
            out["current-context"] = doc["current-context"]
    return out


def _exec_command_absolute(config: Obj, base: str) -> Obj:
    """client-go resolves a relative exec command with a slash against the file's directory
    (a bare name is looked up on PATH)."""
    command = config.get("command")
    if isinstance(command, str) and "/" in command and not os.path.isabs(command):
        return {**config, "command": os.path.join(base, command)}
    return config


def _in_cluster() -> Target | None:
    """The pod's service account, when the plugin itself runs inside a cluster."""
    host = os.environ.get("KUBERNETES_SERVICE_HOST")
    token = os.path.join(SERVICE_ACCOUNT_DIR, "token")
    if not host or not os.path.exists(token):
        return None
    port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    server = f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"
    cluster: Obj = {"server": server}
    ca = os.path.join(SERVICE_ACCOUNT_DIR, "ca.crt")
    if os.path.exists(ca):
        cluster["certificate-authority"] = ca
    namespace = "default"
    ns_file = os.path.join(SERVICE_ACCOUNT_DIR, "namespace")
    if os.path.exists(ns_file):
        with open(ns_file, encoding="utf-8") as f:
            namespace = f.read().strip() or "default"
    return Target("in-cluster", namespace, server, cluster, {}, token_file=token)


def resolve(
    kubeconfig: str | None = None,
    context: str | None = None,
    namespace: str | None = None,
    as_user: str | None = None,
    as_groups: tuple[str, ...] = (),
) -> Target:
    """The context kubectl would use with these flags (-n and --as/--as-group override the
    kubeconfig's namespace and impersonation)."""
    paths = kubeconfig_paths(kubeconfig)
    if not paths:
        found = _in_cluster()
        if found is None:
            raise ConfigError(
                "no kubeconfig found: set KUBECONFIG, pass --kubeconfig or create ~/.kube/config"
            )
        target = found
    else:
        target = _from_kubeconfig(merged(paths), context)
    if namespace:
        target.namespace = namespace
    if as_user:
        target.impersonation = Impersonation(user=as_user, groups=tuple(as_groups))
    elif as_groups:
        target.impersonation = Impersonation(
            user=target.impersonation.user,
            uid=target.impersonation.uid,
            groups=tuple(as_groups),
            extra=target.impersonation.extra,
        )
    target.impersonation.headers()  # refuse a group without a user now, not at the first call
    return target


def _from_kubeconfig(cfg: Obj, context: str | None) -> Target:
    ctx_name = context or cfg["current-context"]
    if not ctx_name:
        raise ConfigError("the kubeconfig has no current context: pass --context")
    ctx = cfg["contexts"].get(ctx_name)
    if ctx is None:
        raise ConfigError(f'context "{ctx_name}" does not exist in the kubeconfig')
    cluster_name = ctx.get("cluster", "")
    cluster = cfg["clusters"].get(cluster_name)
    if cluster is None:
        raise ConfigError(f'context "{ctx_name}" names cluster "{cluster_name}", not found')
    if not cluster.get("server"):
        raise ConfigError(f'cluster "{cluster_name}" has no server')
    user_name = ctx.get("user", "")
    user = dict(cfg["users"].get(user_name, {})) if user_name else {}
    if user.get("username") or user.get("password"):
        raise ConfigError(
            f'user "{user_name}" uses username/password, which Kubernetes removed in 1.19: '
            "use a token, a client certificate or an exec plugin"
        )
    provider = user.pop("auth-provider", None)
    if provider:
        id_token = (provider.get("config") or {}).get("id-token")
        if not id_token:
            raise ConfigError(
                f'auth-provider "{provider.get("name")}" is not supported; use an exec plugin'
            )
        user["token"] = id_token
    impersonation = Impersonation(
        user=str(user.pop("as", "") or ""),
        uid=str(user.pop("as-uid", "") or ""),
        groups=tuple(str(g) for g in user.pop("as-groups", None) or ()),
        extra={
            str(k): tuple(str(v) for v in vs or ())
            for k, vs in (user.pop("as-user-extra", None) or {}).items()
        },
    )
    exec_config = user.pop("exec", None)
    token_file = user.pop("tokenFile", None)
    if user.get("token"):
        token_file = None  # kubectl: an inline token wins over tokenFile
    return Target(
        context_name=ctx_name,
        namespace=ctx.get("namespace") or "default",
        server=str(cluster["server"]).rstrip("/"),
        cluster=dict(cluster),
        user=user,
        exec_config=dict(exec_config) if exec_config else None,
        token_file=token_file,
        impersonation=impersonation,
    )
