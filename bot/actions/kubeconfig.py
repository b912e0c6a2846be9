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
    source: str  # "kubeconfig /path (context x)" or "in-cluster", for messages

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}


def _named(items: Any, name: str, what: str, path: Path) -> Mapping[str, Any]:
    if not isinstance(items, list | None):
        raise KubeconfigError(f"{path}: `{what}s` is not a list")
    for item in items or []:
        if isinstance(item, Mapping) and item.get("name") == name:
            body = item.get(what)
            if isinstance(body, Mapping):
                return body
    raise KubeconfigError(f"{path}: no {what} named '{name}'")


def _file_bytes(value: Any, base: Path, field: str) -> bytes:
    path = Path(str(value))
    path = path if path.is_absolute() else base / path
    try:
        return path.read_bytes()
    except OSError as exc:
        raise KubeconfigError(f"{field} {path} cannot be read: {exc.strerror or type(exc).__name__}") from None


def _b64(value: Any, field: str) -> bytes:
    try:
        return base64.b64decode(str(value), validate=True)
    except ValueError:  # binascii.Error; the value itself (a key, a certificate) is never quoted
        raise KubeconfigError(f"{field} is not valid base64") from None


def _pem(data: bytes, field: str) -> str:
    try:
        return data.decode()
    except UnicodeDecodeError:
        raise KubeconfigError(f"{field} is not a PEM certificate (not text)") from None


def _verifying_context(cadata: str | None, field: str) -> ssl.SSLContext:
    try:
        return ssl.create_default_context(cadata=cadata)
    except ssl.SSLError as exc:
        raise KubeconfigError(f"{field} is not a usable CA certificate ({exc.reason or exc.strerror})") from None
    except ValueError:
        raise KubeconfigError(f"{field} is not a usable CA certificate") from None


def _ssl_context(cluster: Mapping[str, Any], user: Mapping[str, Any], base: Path) -> ssl.SSLContext | bool:
    if cluster.get("insecure-skip-tls-verify"):
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif cluster.get("certificate-authority-data"):
        field = "certificate-authority-data"
        context = _verifying_context(_pem(_b64(cluster[field], field), field), field)
    elif cluster.get("certificate-authority"):
        field = "certificate-authority"
        context = _verifying_context(_pem(_file_bytes(cluster[field], base, field), field), field)
    else:
        context = ssl.create_default_context()
    cert = (
        _b64(user["client-certificate-data"], "client-certificate-data")
        if user.get("client-certificate-data")
        else _file_bytes(user["client-certificate"], base, "client-certificate")
        if user.get("client-certificate")
        else None
    )
    key = (
        _b64(user["client-key-data"], "client-key-data")
        if user.get("client-key-data")
        else _file_bytes(user["client-key"], base, "client-key")
        if user.get("client-key")
        else None
    )
    if cert is not None and key is not None:
        # ssl only loads certificate chains from files: write them privately, load, remove.
        with tempfile.TemporaryDirectory() as tmp:
            cert_path, key_path = Path(tmp, "client.crt"), Path(tmp, "client.key")
            cert_path.write_bytes(cert)
            key_path.write_bytes(key)
            os.chmod(key_path, 0o600)
            try:
                context.load_cert_chain(cert_path, key_path)
            except ssl.SSLError as exc:
                raise KubeconfigError(
                    f"the kubeconfig user's client certificate and key cannot be loaded ({exc.reason or exc.strerror})"
                ) from None
    elif cert is not None or key is not None:
        raise KubeconfigError("the kubeconfig user has a client certificate without a key (or a key without one)")
    return context


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """Where and what, never the offending line itself: it is often `token: "…"`."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        return f"line {mark.line + 1}, column {mark.column + 1}: {exc.problem or 'invalid YAML'}"
    return "not valid YAML"


def _from_kubeconfig(path: Path, context_name: str | None) -> KubeCredentials:
    try:
        config = yaml.safe_load(path.read_text()) or {}
    except OSError as exc:
        raise KubeconfigError(f"cannot read kubeconfig {path}: {exc.strerror or type(exc).__name__}") from None
    except UnicodeDecodeError:
        raise KubeconfigError(f"cannot read kubeconfig {path}: not a text file") from None
    except yaml.YAMLError as exc:
        raise KubeconfigError(f"cannot read kubeconfig {path}: {_yaml_problem(exc)}") from None
    try:
        return _credentials(path, config, context_name)
    except KubeconfigError as exc:
        raise KubeconfigError(f"kubeconfig {path}: {exc}" if str(path) not in str(exc) else str(exc)) from None
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        # Anything else malformed (a list where a mapping belongs…): say so, but quote nothing from the file.
        raise KubeconfigError(f"kubeconfig {path} is malformed ({type(exc).__name__})") from None


def _credentials(path: Path, config: Any, context_name: str | None) -> KubeCredentials:
    if not isinstance(config, Mapping):
        raise KubeconfigError(f"{path} is not a kubeconfig file")
    name = context_name or config.get("current-context")
    if not name:
        raise KubeconfigError(f"{path} has no current-context; set `context:` on the kubernetes action")
    context = _named(config.get("contexts"), name, "context", path)
    cluster = _named(config.get("clusters"), str(context.get("cluster")), "cluster", path)
    user = _named(config.get("users"), str(context.get("user")), "user", path) if context.get("user") else {}
    if user.get("exec") or user.get("auth-provider"):
        raise KubeconfigError(
            f"{path}: user '{context.get('user')}' gets credentials from a plugin (exec/"
            "auth-provider), which guardrail does not run; use a service-account token"
        )
    server = cluster.get("server")
    if not isinstance(server, str) or not server:
        raise KubeconfigError(f"{path}: cluster '{context.get('cluster')}' has no server")
    base = path.parent
    token = user.get("token") or (
        _file_bytes(user["tokenFile"], base, "tokenFile").decode().strip() if user.get("tokenFile") else None
    )
    verify: ssl.SSLContext | bool = _ssl_context(cluster, user, base) if server.startswith("https") else True
    return KubeCredentials(
        server=server.rstrip("/"), token=token, verify=verify, source=f"kubeconfig {path} (context {name})"
    )


def _in_cluster(endpoints: Mapping[str, str]) -> KubeCredentials:
    host, port = endpoints["kubernetes_service_host"], endpoints.get("kubernetes_service_port", "443")
    sa_dir = Path(endpoints.get("kubernetes_service_account_dir", str(SERVICE_ACCOUNT_DIR)))
    try:
        token = (sa_dir / "token").read_text().strip()
        ca = (sa_dir / "ca.crt").read_text()
    except OSError as exc:
        raise KubeconfigError(f"in-cluster credentials unreadable: {exc}") from None
    host = f"[{host}]" if ":" in host else host
    return KubeCredentials(
        server=f"https://{host}:{port}",
        token=token,
        verify=_verifying_context(ca, f"in-cluster {sa_dir / 'ca.crt'}"),
        source="in-cluster service account",
    )


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
