"""dask-gateway clusters (analysis facilities): ``start_cluster("gateway", ...)``.

Where the gateway is and how to log in, in increasing precedence:

1. dask-gateway's own configuration: ``gateway.address``, ``gateway.proxy-address``,
   ``gateway.public-address``, ``gateway.auth.type`` / ``gateway.auth.kwargs`` and
   ``gateway.cluster.options`` (so the ``DASK_GATEWAY__*`` variables and the
   ``gateway.yaml`` a facility's JupyterHub sets work as they are);
2. the ``gateway:`` section of a profile YAML (``cluster/gateway.yaml``, or the shipped
   ``gateway`` profile);
3. the call's keyword arguments.

jetdask's own keys (profile or call): ``workers`` (a fixed size) or ``minimum``/``maximum``
(adaptive, the default: 1 to 10 workers), ``cluster_options`` (a mapping of the server's
options, checked against what ``Gateway.cluster_options()`` offers: an unknown name is an
error naming it and listing the offered ones), ``name`` (reattach to a running cluster, e.g.
after a kernel restart), ``keep`` (leave the cluster running when the client is closed with
:func:`jetdask.cluster.close_cluster`; by default it is shut down) and ``auth`` (``basic``,
``kerberos``, ``jupyterhub``, a class path or an auth object) with ``auth_kwargs``;
``gateway_class``: a facility's own subclass of ``dask_gateway.Gateway`` (``module.Class``,
e.g. Fermilab EAF's ``htcdaskgateway.HTCGateway``), used in its place.

``jetdask.worker-environ`` reaches the workers through the ``environment`` cluster option
when the server offers one; otherwise a warning names the variables that do not reach them.
"""
from __future__ import annotations

import os
import warnings

from ..errors import ConfigError

CONNECTION_KEYS = ("address", "proxy_address", "public_address")
JETDASK_KEYS = {"auth", "auth_kwargs", "workers", "minimum", "maximum", "cluster_options", "name", "keep",
                "gateway_class"}
DEFAULT_BOUNDS = (1, 10)
KEY = "cluster.gateway"


def _norm(d: dict | None) -> dict:
    return {str(k).replace("-", "_"): v for k, v in (d or {}).items()}


def _expand(value):
    """``$VARS`` and ``~`` in the strings of a profile value (passwords, tokens, paths)."""
    if isinstance(value, str):
        return os.path.expandvars(os.path.expanduser(value)) if ("$" in value or value.startswith("~")) else value
    if isinstance(value, dict):
        return {k: _expand(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v) for v in value]
    return value


def read_profile(profile: str | None, section: str) -> dict:
    """The ``section`` mapping (``gateway`` or ``tls``) of a profile YAML (a path, or the shipped
    name ``gateway``), keys with ``_`` for ``-``; ``{}`` without a profile."""
    if profile is None:
        return {}
    from .batch import read_profile_file
    path, raw = read_profile_file(profile, "the shipped name: gateway")
    if not isinstance(raw.get(section, {}), dict):
        raise ConfigError(f"{path}: the {section} section must be a mapping", "profile")
    if section not in raw:
        raise ConfigError(f"{path} has no {section} section", "profile")
    out = _norm(raw[section])
    auth = out.pop("auth", None)
    if isinstance(auth, dict):          # dask-gateway's layout: auth: {type: ..., kwargs: {...}}
        out["auth"] = auth.get("type")
        out["auth_kwargs"] = auth.get("kwargs") or {}
    elif auth is not None:
        out["auth"] = auth
    return {k: v for k, v in out.items() if v is not None}


def settings(profile: str | None = None, **options) -> dict:
    """Profile and call options merged (call wins); unknown keys are an error naming them."""
    merged = {**read_profile(profile, "gateway"), **{k: v for k, v in options.items() if v is not None}}
    unknown = set(merged) - set(CONNECTION_KEYS) - JETDASK_KEYS
    if unknown:
        raise ConfigError(f"unknown option(s) {sorted(unknown)} for a gateway cluster; expected "
                          f"{', '.join(sorted(set(CONNECTION_KEYS) | JETDASK_KEYS))} (the server's own options "
                          f"go in cluster_options)", f"cluster.{sorted(unknown)[0]}")
    return _expand(merged)


def make_auth(kind=None, kwargs: dict | None = None):
    """A dask-gateway auth object; ``None`` leaves it to dask-gateway's configuration."""
    import dask
    from dask_gateway.auth import GatewayAuth, get_auth
    if isinstance(kind, GatewayAuth):
        return kind
    if kind is None and not kwargs:
        return None
    kind = kind or dask.config.get("gateway.auth.type", None)
    try:
        with dask.config.set({"gateway.auth.kwargs": dict(kwargs or {})}):
            return get_auth(kind)
    except (ImportError, AttributeError, ValueError, TypeError) as err:
        raise ConfigError(f"auth {kind!r}: {err} (kinds: basic, kerberos, jupyterhub, or a class path)",
                          "cluster.auth") from None


def choose_options(offered, requested: dict, environ: dict) -> tuple[dict, list[str]]:
    """What to set on the server's ``Options`` (``offered``: name -> current value).

    ``requested``: the user's cluster options, ``environ``: ``jetdask.worker-environ``. Returns
    (name -> value, names of the worker-environ variables that cannot reach the workers).
    An option the server does not offer is an error naming it and listing those it offers."""
    unknown = sorted(set(requested) - set(offered))
    if unknown:
        raise ConfigError(f"the gateway offers no cluster option {unknown[0]!r}; it offers: "
                          f"{', '.join(sorted(offered)) or 'none'}", f"cluster_options.{unknown[0]}")
    chosen = dict(requested)
    if not environ:
        return chosen, []
    if "environment" not in offered:
        return chosen, sorted(environ)
    env = {**environ, **dict(offered.get("environment") or {}), **dict(requested.get("environment") or {})}
    chosen["environment"] = env
    return chosen, []


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def _gateway_error(err: BaseException, address: str) -> ConfigError:
    """A failed call to the gateway as one line naming it."""
    status = getattr(err, "status", None)
    if status in (401, 403):
        return ConfigError(f"the gateway {address} refused the credentials ({status} {getattr(err, 'message', '')}); "
                           f"check gateway.auth (type and kwargs)", KEY)
    if type(err).__name__.startswith("ClientConnector") or isinstance(err, (OSError, TimeoutError)):
        return ConfigError(f"cannot reach the gateway {address}: {_one_line(err)}", KEY)
    return ConfigError(f"the gateway {address}: {type(err).__name__}: {_one_line(err)}", KEY)


def gateway_class(path: str | None):
    """``dask_gateway.Gateway``, or the facility's subclass named ``module.Class``."""
    try:
        from dask_gateway import Gateway
    except ImportError:
        raise ConfigError("gateway clusters need dask-gateway: pip install 'jetdask[gateway]'", "cluster") from None
    if not path:
        return Gateway
    import importlib
    module, _, name = str(path).replace(":", ".").rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as err:
        raise ConfigError(f"cannot import {path!r}: {_one_line(err)}", "cluster.gateway_class") from None
    if not (isinstance(cls, type) and issubclass(cls, Gateway)):
        raise ConfigError(f"{path!r} is not a dask_gateway.Gateway class", "cluster.gateway_class")
    return cls


def open_gateway(opts: dict):
    """A ``dask_gateway.Gateway`` from merged settings (missing pieces from dask-gateway's config)."""
    Gateway = gateway_class(opts.get("gateway_class"))
    import dask
    address = opts.get("address") or dask.config.get("gateway.address", None)
    if not address:
        raise ConfigError("no gateway address: pass address=, set it in the profile's gateway section, or set "
                          "gateway.address in dask's configuration (DASK_GATEWAY__ADDRESS)", "cluster.address")
    return Gateway(address, proxy_address=opts.get("proxy_address"), public_address=opts.get("public_address"),
                   auth=make_auth(opts.get("auth"), opts.get("auth_kwargs")))


def _cluster(gateway, opts: dict):
    """A new cluster with the chosen options, or the running one named ``name``."""
    from .local import worker_environ
    address = gateway.address
    keep = bool(opts.get("keep", False))
    if opts.get("name"):
        try:
            return gateway.connect(opts["name"], shutdown_on_close=not keep)
        except ValueError:
            names = [c.name for c in gateway.list_clusters()]
            raise ConfigError(f"the gateway {address} has no running cluster {opts['name']!r} of yours "
                              f"(running: {', '.join(names) or 'none'})", "cluster.name") from None
    options = gateway.cluster_options()
    chosen, missed = choose_options({k: options[k] for k in options}, _norm_options(opts), worker_environ())
    for k, v in chosen.items():
        try:
            options[k] = v
        except (ValueError, TypeError) as err:
            raise ConfigError(f"{_one_line(err)}", f"cluster_options.{k}") from None
    if missed:
        warnings.warn(f"jetdask: the gateway {address} offers no 'environment' cluster option, so "
                      f"jetdask.worker-environ ({', '.join(missed)}) does not reach its workers; ask the "
                      f"facility to offer it, or set them in the worker image", stacklevel=4)
    return gateway.new_cluster(options, shutdown_on_close=not keep)


def _norm_options(opts: dict) -> dict:
    co = opts.get("cluster_options") or {}
    if not isinstance(co, dict):
        raise ConfigError(f"must be a mapping of the gateway's option names to values, got {co!r}",
                          "cluster.cluster_options")
    return dict(co)


def size(cluster, opts: dict, reattached: bool) -> None:
    """Fixed size (``workers``) or adaptive bounds; a reattached cluster keeps its size unless told."""
    workers, lo, hi = opts.get("workers"), opts.get("minimum"), opts.get("maximum")
    if workers is not None:
        cluster.scale(int(workers))
    elif not reattached or lo is not None or hi is not None:
        lo = DEFAULT_BOUNDS[0] if lo is None else int(lo)
        hi = max(lo, DEFAULT_BOUNDS[1] if hi is None else int(hi))
        cluster.adapt(minimum=lo, maximum=hi)


def _quiet(gateway) -> None:
    """Mark a closed ``Gateway`` closed for good: its ``__del__`` closes it again, which (dask-gateway
    2026.3 with current distributed) logs a RuntimeError about a stopped loop at garbage collection."""
    gateway.__dict__.pop("_loop_runner", None)


def close_gateway(gateway) -> None:
    try:
        gateway.close()
    finally:
        _quiet(gateway)


def start_gateway(profile: str | None = None, **options):
    """A dask-gateway cluster (new, or the running one named ``name``) and a connected ``Client``."""
    opts = settings(profile, **options)
    gateway = open_gateway(opts)
    cluster = None
    try:
        cluster = _cluster(gateway, opts)
        size(cluster, opts, reattached=bool(opts.get("name")))
        client = cluster.get_client()
        cluster._jetdask_wait_gone = lambda: _quiet(cluster.gateway)   # close_cluster's last step
        return client
    except BaseException as err:
        if cluster is not None:
            cluster.close()
            _quiet(cluster.gateway)
        if isinstance(err, Exception) and not isinstance(err, ConfigError):
            # aiohttp, dask-gateway and server errors: one line naming the gateway
            raise _gateway_error(err, gateway.address) from None
        raise
    finally:
        close_gateway(gateway)      # the cluster holds a gateway connection of its own


def options_from_args(args) -> dict:
    """``jetdask run --cluster gateway``: ``--profile`` and ``--workers N`` (a fixed size; without
    it, adaptive). ``--jobs`` and ``--memory-per-worker`` do not apply to a gateway."""
    if getattr(args, "jobs", None):
        raise ConfigError("is for slurm/htcondor; a gateway cluster's size is --workers N", "--jobs")
    if getattr(args, "memory_per_worker", None):
        raise ConfigError("a gateway sets its workers' memory through its cluster options (cluster-options "
                          "in the profile's gateway section, e.g. worker_memory)", "--memory-per-worker")
    opts = {"profile": getattr(args, "profile", None)}
    if getattr(args, "workers", None):
        opts["workers"] = args.workers
    return opts


def running_clusters(profile: str | None = None, **options) -> list[str]:
    """Names of your clusters running on the gateway (to reattach with ``name=`` after a kernel restart)."""
    gateway = open_gateway(settings(profile, **options))
    try:
        return [c.name for c in gateway.list_clusters()]
    except Exception as err:  # noqa: BLE001 - aiohttp and server errors: one line
        raise _gateway_error(err, gateway.address) from None
    finally:
        close_gateway(gateway)
