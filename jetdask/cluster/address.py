"""A scheduler jetdask did not start (a facility's, ``tls://localhost:8786``): connect to it.

TLS material, in increasing precedence: dask's own configuration
(``distributed.comm.tls.ca-file``, ``.client.cert``, ``.client.key``, i.e. the
``DASK_DISTRIBUTED__COMM__TLS__*`` variables a facility's image sets), the ``tls:`` section of
a profile YAML (``ca-file``, ``cert``, ``key``; ``$VARS`` expanded, e.g. the paths a facility
exports), or a ``security=`` object. jetdask changes no scheduler-wide setting there.
"""
from __future__ import annotations

import os
from contextlib import suppress

from ..errors import ConfigError

TLS_KEYS = ("ca_file", "cert", "key")


def security_from_profile(profile: str | None):
    """A ``distributed.Security`` from the profile's ``tls`` section; None without one (or with
    every file left null): dask's own TLS configuration applies then."""
    from .gateway import _expand, read_profile
    if profile is None:
        return None
    tls = _expand(read_profile(profile, "tls"))
    unknown = sorted(set(tls) - set(TLS_KEYS))
    if unknown:
        raise ConfigError(f"unknown key {unknown[0]!r}; expected ca-file, cert, key", f"tls.{unknown[0]}")
    missing = [k for k in TLS_KEYS if not tls.get(k)]
    if len(missing) == len(TLS_KEYS):
        return None              # dask's own TLS configuration applies
    if missing:
        raise ConfigError("ca-file, cert and key are all needed for a TLS connection",
                          f"tls.{missing[0].replace('_', '-')}")
    for k in TLS_KEYS:
        path = str(tls[k])
        if "$" in path:
            raise ConfigError(f"{path!r}: environment variable not set", f"tls.{k.replace('_', '-')}")
        if not os.path.isfile(path):
            raise ConfigError(f"{path} not found", f"tls.{k.replace('_', '-')}")
    from distributed.security import Security
    return Security(tls_ca_file=tls["ca_file"], tls_client_cert=tls["cert"], tls_client_key=tls["key"],
                    require_encryption=True)


def connect_address(address: str, profile: str | None = None, timeout: float = 30, security=None, **_):
    """A ``Client`` of the scheduler at ``address`` (other options, e.g. ``--workers``, do not apply)."""
    if security is None:
        security = security_from_profile(profile)
    try:
        return open_client(address, timeout, security)
    except (OSError, TimeoutError, ValueError, TypeError) as err:   # TypeError: tls:// without TLS settings
        hint = ("; name the certificate files in the profile's tls section (ca-file, cert, key)"
                if address.startswith("tls://") and security is None else "")
        raise ConfigError(f"cannot connect to {address}: {' '.join(str(err).split())}{hint}", "--cluster") from None


def open_client(address: str, timeout: float, security=None):
    """A ``Client`` of a running scheduler. One that cannot connect is closed before the error
    goes on: its IO-loop thread and its place as dask's default client do not outlive it (left to
    the garbage collector, its close could run in another client's starting IO loop, which then
    waits on the lock that client's start holds, and that start fails after 10 s)."""
    from distributed import Client
    client = Client.__new__(Client)
    try:
        client.__init__(address, timeout=timeout, security=security)
    except BaseException:
        with suppress(Exception):
            client.close(timeout=5)      # a client that timed out is already closed, ...
        with suppress(Exception):
            client._loop_runner.stop()   # ... but its IO loop still runs (stopping twice is a no-op)
        raise
    return client
