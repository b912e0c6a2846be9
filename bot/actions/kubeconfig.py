"""Where the Kubernetes actions get their API server and credentials.

From a kubeconfig file (the `kubeconfig` endpoint, i.e. $KUBECONFIG, else ~/.kube/config):
the chosen or current context's cluster `server`, `certificate-authority(-data)` or
`insecure-skip-tls-verify`, and the user's `token`/`tokenFile` or
`client-certificate(-data)` + `client-key(-data)`. Exec and auth-provider plugins are not
supported (guardrail does not run programs to get credentials); use a service-account token.
Or in-cluster: the pod's service-account token and CA, and KUBERNETES_SERVICE_HOST/PORT.
"""

from __future__ import annotations

import base64
import os
import ssl
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = ["KubeCredentials", "KubeconfigError", "load_credentials"]

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


class KubeconfigError(Exception):
    """The credentials could not be found or read; the message says which and what to do."""


@dataclass(frozen=True)
class KubeCredentials:
    server: str
    token: str | None
    verify: ssl.SSLContext | bool
    source: str                         # "kubeconfig /path (context x)" or "in-cluster", for messages

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}


def _named(items: Any, name: str, what: str, path: Path) -> Mapping[str, Any]:
    for item in items or []:
        if isinstance(item, Mapping) and item.get("name") == name:
            body = item.get(what)
            if isinstance(body, Mapping):
                return body
    raise KubeconfigError(f"{path}: no {what} named '{name}'")


def _file_bytes(value: str, base: Path) -> bytes:
    path = Path(value)
    return (path if path.is_absolute() else base / path).read_bytes()


def _ssl_context(cluster: Mapping[str, Any], user: Mapping[str, Any], base: Path) -> ssl.SSLContext | bool:
    if cluster.get("insecure-skip-tls-verify"):
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif cluster.get("certificate-authority-data"):
        context = ssl.create_default_context(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
    elif cluster.get("certificate-authority"):
        context = ssl.create_default_context(cadata=_file_bytes(cluster["certificate-authority"], base).decode())
    else:
        context = ssl.create_default_context()
    cert = (base64.b64decode(user["client-certificate-data"]) if user.get("client-certificate-data")
            else _file_bytes(user["client-certificate"], base) if user.get("client-certificate") else None)
    key = (base64.b64decode(user["client-key-data"]) if user.get("client-key-data")
           else _file_bytes(user["client-key"], base) if user.get("client-key") else None)
    if cert is not None and key is not None:
        # ssl only loads certificate chains from files: write them privately, load, remove.
        with tempfile.TemporaryDirectory() as tmp:
            cert_path, key_path = Path(tmp, "client.crt"), Path(tmp, "client.key")
            cert_path.write_bytes(cert)
            key_path.write_bytes(key)
            os.chmod(key_path, 0o600)
            context.load_cert_chain(cert_path, key_path)
    elif cert is not None or key is not None:
        raise KubeconfigError("the kubeconfig user has a client certificate without a key (or a key without one)")
    return context


def _from_kubeconfig(path: Path, context_name: str | None) -> KubeCredentials:
    try:
        config = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise KubeconfigError(f"cannot read kubeconfig {path}: {exc}") from None
    if not isinstance(config, Mapping):
        raise KubeconfigError(f"{path} is not a kubeconfig file")
    name = context_name or config.get("current-context")
    if not name:
        raise KubeconfigError(f"{path} has no current-context; set `context:` on the kubernetes action")
    context = _named(config.get("contexts"), name, "context", path)
    cluster = _named(config.get("clusters"), str(context.get("cluster")), "cluster", path)
    user = _named(config.get("users"), str(context.get("user")), "user", path) if context.get("user") else {}
    if user.get("exec") or user.get("auth-provider"):
        raise KubeconfigError(f"{path}: user '{context.get('user')}' gets credentials from a plugin (exec/"
                              "auth-provider), which guardrail does not run; use a service-account token")
    server = cluster.get("server")
    if not isinstance(server, str) or not server:
        raise KubeconfigError(f"{path}: cluster '{context.get('cluster')}' has no server")
    base = path.parent
    token = user.get("token") or (_file_bytes(user["tokenFile"], base).decode().strip()
                                  if user.get("tokenFile") else None)
    verify: ssl.SSLContext | bool = _ssl_context(cluster, user, base) if server.startswith("https") else True
    return KubeCredentials(server=server.rstrip("/"), token=token, verify=verify,
                           source=f"kubeconfig {path} (context {name})")


def _in_cluster(endpoints: Mapping[str, str]) -> KubeCredentials:
    host, port = endpoints["kubernetes_service_host"], endpoints.get("kubernetes_service_port", "443")
    sa_dir = Path(endpoints.get("kubernetes_service_account_dir", str(SERVICE_ACCOUNT_DIR)))
    try:
        token = (sa_dir / "token").read_text().strip()
        ca = (sa_dir / "ca.crt").read_text()
    except OSError as exc:
        raise KubeconfigError(f"in-cluster credentials unreadable: {exc}") from None
    host = f"[{host}]" if ":" in host else host
    return KubeCredentials(server=f"https://{host}:{port}", token=token,
                           verify=ssl.create_default_context(cadata=ca), source="in-cluster service account")


def load_credentials(endpoints: Mapping[str, str], context: str | None = None) -> KubeCredentials:
    """Kubeconfig (endpoints["kubeconfig"], else ~/.kube/config) first, like client-go; else in-cluster.

    Blocking file reads: call it through `asyncio.to_thread`.
    """
    explicit = endpoints.get("kubeconfig")
    if explicit:
        # KUBECONFIG may list several files; like kubectl without merging, we use the first one that exists.
        for candidate in explicit.split(os.pathsep):
            if candidate and Path(candidate).expanduser().is_file():
                return _from_kubeconfig(Path(candidate).expanduser(), context)
        raise KubeconfigError(f"kubeconfig {explicit} does not exist")
    default = Path(endpoints.get("default_kubeconfig", str(Path.home() / ".kube" / "config")))
    if default.is_file():
        return _from_kubeconfig(default, context)
    if endpoints.get("kubernetes_service_host"):
        return _in_cluster(endpoints)
    raise KubeconfigError("no Kubernetes credentials: set KUBECONFIG, create ~/.kube/config, or run in a cluster")
