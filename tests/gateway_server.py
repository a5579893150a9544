"""A real dask-gateway server for the tests: local backend, password authentication, localhost.

:func:`start` writes a ``dask_gateway_config.py`` and starts ``dask-gateway-server`` from this
environment (its Go proxy included); the clusters it hands out run ``dask scheduler`` and
``dask worker`` of the same environment (the server's default ``dask-scheduler`` command is
gone from current ``distributed``). Clusters run as this user (``UnsafeLocalBackend``: the
local backend without switching users, so the tests run as root or not), each in a fresh
working directory the server makes, with only ``PATH``/``VIRTUAL_ENV``/... inherited: the
workers share no current directory and no ``sys.path`` entry with the test process.

Cluster options offered (per user, as a facility does with a callable ``cluster_options``):

* every user: ``worker_cores`` (1-2), ``worker_memory`` (GiB, 0.25-4);
* every user but ``noenv``: ``environment`` (a mapping, the workers' environment variables).

A test that needs the server fails (not skips) under CI (``CI`` or
``JETDASK_REQUIRE_GATEWAY`` set) when it cannot start.
"""
from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time

import pytest

from conftest import free_port

PASSWORD = "jetdask-test"

CONFIG = '''
import sys
from dask_gateway_server.options import Options, Integer, Float, Mapping

c.DaskGateway.address = "127.0.0.1:{api_port}"
c.Proxy.address = "127.0.0.1:{proxy_port}"
c.Proxy.tcp_address = "127.0.0.1:{tcp_port}"
c.DaskGateway.backend_class = "dask_gateway_server.backends.local.UnsafeLocalBackend"
c.DaskGateway.authenticator_class = "dask_gateway_server.auth.SimpleAuthenticator"
c.SimpleAuthenticator.password = {password!r}
c.LocalBackend.clusters_directory = {clusters!r}
c.ClusterConfig.scheduler_cmd = [{bin!r} + "/dask", "scheduler"]
c.ClusterConfig.worker_cmd = [{bin!r} + "/dask", "worker"]
c.ClusterConfig.worker_cores = 1
c.ClusterConfig.worker_memory = "1 G"
c.ClusterConfig.cluster_max_workers = 4
c.ClusterConfig.idle_timeout = 600
c.DaskGateway.log_level = "INFO"


def _handler(options):
    out = {{"worker_cores": options.worker_cores, "worker_threads": options.worker_cores,
           "worker_memory": int(options.worker_memory * 2**30)}}
    if "environment" in options:
        out["environment"] = dict(options.environment)
    return out


def _options(user):
    fields = [Integer("worker_cores", 1, min=1, max=2, label="Worker cores"),
              Float("worker_memory", 1, min=0.25, max=4, label="Worker memory (GiB)")]
    if user.name != "noenv":
        fields.append(Mapping("environment", {{}}, label="Environment variables"))
    return Options(*fields, handler=_handler)


c.Backend.cluster_options = _options
'''


@dataclasses.dataclass
class GatewayServer:
    address: str          # the proxy's HTTP address: what a user passes to Gateway(...)
    proxy_address: str    # the proxy's TCP address (the schedulers' TLS connections)
    password: str
    directory: str
    process: subprocess.Popen

    def gateway(self, user: str = "alice"):
        from dask_gateway import BasicAuth, Gateway
        return Gateway(self.address, proxy_address=self.proxy_address, auth=BasicAuth(user, self.password))

    def stop(self) -> None:
        stop_gateway_clusters(self)
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


def required() -> bool:
    return bool(os.environ.get("CI") or os.environ.get("JETDASK_REQUIRE_GATEWAY"))


def _missing(msg: str):
    if required():
        pytest.fail(msg)
    pytest.skip(msg)


def _answers(url: str) -> bool:
    import urllib.request
    try:
        with urllib.request.urlopen(url + "/api/health", timeout=2) as r:
            return r.status == 200
    except OSError:   # refused, reset, timed out, or an HTTP error: not up (yet)
        return False


def start(directory: str, timeout: float = 60) -> GatewayServer:
    """Start a server whose files (config, log, cluster working directories) live in ``directory``."""
    bin_dir = os.path.dirname(sys.executable)
    server = os.path.join(bin_dir, "dask-gateway-server")
    if not os.path.exists(server):
        _missing(f"{server} not found: pip install 'jetdask[gateway]'")
    os.makedirs(directory, exist_ok=True)
    clusters = os.path.join(directory, "clusters")
    os.makedirs(clusters, exist_ok=True)
    api, proxy, tcp = free_port(), free_port(), free_port()
    config = os.path.join(directory, "dask_gateway_config.py")
    with open(config, "w") as f:
        f.write(CONFIG.format(api_port=api, proxy_port=proxy, tcp_port=tcp, password=PASSWORD,
                              clusters=clusters, bin=bin_dir))
    log = open(os.path.join(directory, "server.log"), "wb")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASK_GATEWAY")}
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    proc = subprocess.Popen([server, "-f", config], cwd=directory, stdout=log, stderr=subprocess.STDOUT, env=env,
                            start_new_session=True)
    log.close()
    address = f"http://127.0.0.1:{proxy}"
    t0 = time.monotonic()
    while not _answers(address):
        if proc.poll() is not None or time.monotonic() - t0 > timeout:
            proc.kill()
            with open(os.path.join(directory, "server.log"), errors="replace") as f:
                tail = f.read()[-2000:]
            _missing(f"dask-gateway-server did not start within {timeout:.0f} s:\n{tail}")
        time.sleep(0.3)
    return GatewayServer(address, f"gateway://127.0.0.1:{tcp}", PASSWORD, directory, proc)


def stop_gateway_clusters(server: GatewayServer) -> None:
    """Shut down every cluster the test users left running (a failed test's)."""
    from jetdask.cluster.gateway import close_gateway
    for user in ("alice", "bob", "noenv"):
        try:
            gw = server.gateway(user)
            try:
                for report in gw.list_clusters():
                    gw.stop_cluster(report.name)
            finally:
                close_gateway(gw)
        except Exception as err:  # noqa: BLE001 - a server going down: nothing left to stop
            print(f"gateway_server: stopping {user}'s clusters failed: {err!r}", file=sys.stderr)
