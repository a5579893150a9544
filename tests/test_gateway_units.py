"""The gateway and facility policies as pure functions (no server): options, profiles, auth,
TLS files, what ships by value, version checks; and the CLI's one-line refusals."""
from __future__ import annotations

import argparse
import os
import subprocess
import sys

import pytest

from conftest import REPO
from jetdask.cluster.address import security_from_profile
from jetdask.cluster.gateway import choose_options, make_auth, options_from_args, read_profile, settings
from jetdask.engine.versions import VersionMismatchError, check_ready, mismatches
from jetdask.errors import ConfigError
from jetdask.plugin import ships_by_value

OFFERED = {"worker_cores": 1, "worker_memory": 2.0, "environment": {"FACILITY": "1"}}
NO_ENV = {"worker_cores": 1, "image": "coffea:latest"}


@pytest.mark.parametrize("offered, requested, environ, chosen, missed", [
    (OFFERED, {}, {}, {}, []),
    (OFFERED, {"worker_cores": 2}, {}, {"worker_cores": 2}, []),
    # worker-environ goes into 'environment', under what the server and the user put there
    (OFFERED, {}, {"A": "1"}, {"environment": {"A": "1", "FACILITY": "1"}}, []),
    (OFFERED, {"environment": {"A": "user"}}, {"A": "jetdask", "B": "2"},
     {"environment": {"A": "user", "B": "2", "FACILITY": "1"}}, []),
    (NO_ENV, {"image": "mine"}, {"B": "2", "A": "1"}, {"image": "mine"}, ["A", "B"]),
    (NO_ENV, {}, {}, {}, []),
])
def test_choose_options(offered, requested, environ, chosen, missed):
    assert choose_options(offered, requested, environ) == (chosen, missed)


@pytest.mark.parametrize("offered, requested, key, text", [
    (OFFERED, {"worker_memroy": 4}, "cluster_options.worker_memroy",
     "offers no cluster option 'worker_memroy'; it offers: environment, worker_cores, worker_memory"),
    ({}, {"image": "x"}, "cluster_options.image", "it offers: none"),
])
def test_unknown_option_is_named(offered, requested, key, text):
    with pytest.raises(ConfigError) as err:
        choose_options(offered, requested, {})
    assert err.value.key == key and text in str(err.value)


def test_shipped_profile_is_the_repository_one_and_reads_as_defaults():
    shipped = REPO / "jetdask" / "cluster" / "profiles" / "gateway.yaml"
    assert shipped.read_text() == (REPO / "cluster" / "gateway.yaml").read_text()
    # every null falls back to dask-gateway's configuration; jetdask's defaults stay
    assert settings("gateway") == {"auth_kwargs": {}, "cluster_options": {}, "minimum": 1, "maximum": 10,
                                   "keep": False}
    assert read_profile("cluster/gateway.yaml", "tls") == {}


def test_profile_merge_auth_layout_and_variables(tmp_path, monkeypatch):
    monkeypatch.setenv("GW_PASSWORD", "s3cret")
    p = tmp_path / "facility.yaml"
    p.write_text("gateway:\n  address: https://gw.example.org\n  proxy-address: gateway://gw.example.org:80\n"
                 "  auth:\n    type: basic\n    kwargs: {username: me, password: $GW_PASSWORD}\n"
                 "  cluster-options: {worker_cores: 2}\n  workers: 3\n")
    s = settings(str(p), workers=5, address=None)
    assert s == {"address": "https://gw.example.org", "proxy_address": "gateway://gw.example.org:80", "auth": "basic",
                 "auth_kwargs": {"username": "me", "password": "s3cret"}, "cluster_options": {"worker_cores": 2},
                 "workers": 5}                                  # the call wins; None leaves the profile's
    with pytest.raises(ConfigError) as err:
        settings(str(p), worker_cores=2)
    assert err.value.key == "cluster.worker_cores" and "cluster_options" in str(err.value)
    with pytest.raises(ConfigError) as err:
        read_profile(str(p), "tls")
    assert "has no tls section" in str(err.value)
    with pytest.raises(ConfigError):
        read_profile(str(tmp_path / "missing.yaml"), "gateway")


def test_auth_kinds(monkeypatch):
    from dask_gateway.auth import BasicAuth, JupyterHubAuth, KerberosAuth
    assert make_auth(None, None) is None                     # dask-gateway's own configuration decides
    basic = make_auth("basic", {"username": "alice", "password": "pw"})
    assert isinstance(basic, BasicAuth) and basic.username == "alice"
    assert isinstance(make_auth("kerberos"), KerberosAuth)
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "tok")
    hub = make_auth("jupyterhub")
    assert isinstance(hub, JupyterHubAuth) and hub.api_token == "tok"
    monkeypatch.delenv("JUPYTERHUB_API_TOKEN")
    for kind in ("jupyterhub", "no.such.Auth"):
        with pytest.raises(ConfigError) as err:
            make_auth(kind)
        assert err.value.key == "cluster.auth"


def test_a_facility_gateway_class():
    from dask_gateway import Gateway

    from jetdask.cluster.gateway import gateway_class
    assert gateway_class(None) is Gateway and gateway_class("dask_gateway.Gateway") is Gateway
    assert gateway_class("dask_gateway:Gateway") is Gateway
    for path in ("no_such_module.Gateway", "dask_gateway.GatewayCluster", "json.dumps"):
        with pytest.raises(ConfigError) as err:
            gateway_class(path)
        assert err.value.key == "cluster.gateway_class"


def args(**kw):
    base = dict(profile=None, workers=None, jobs=None, memory_per_worker=None)
    return argparse.Namespace(**{**base, **kw})


def test_cli_options_for_a_gateway():
    assert options_from_args(args(workers=3, profile="gateway")) == {"profile": "gateway", "workers": 3}
    assert options_from_args(args()) == {"profile": None}
    for kw, key in (({"jobs": 2}, "--jobs"), ({"memory_per_worker": 2**30}, "--memory-per-worker")):
        with pytest.raises(ConfigError) as err:
            options_from_args(args(**kw))
        assert err.value.key == key


def test_tls_files_from_a_profile(tmp_path, monkeypatch):
    for name in ("ca.pem", "cert.pem", "key.pem"):
        (tmp_path / name).write_text("x")
    monkeypatch.setenv("FACILITY_CERTS", str(tmp_path))
    p = tmp_path / "p.yaml"
    p.write_text("tls:\n  ca-file: $FACILITY_CERTS/ca.pem\n  cert: $FACILITY_CERTS/cert.pem\n"
                 "  key: $FACILITY_CERTS/key.pem\n")
    sec = security_from_profile(str(p))
    assert sec.tls_ca_file == str(tmp_path / "ca.pem") and sec.tls_client_key == str(tmp_path / "key.pem")
    assert sec.require_encryption
    assert security_from_profile("gateway") is None          # all null: dask's TLS configuration applies
    assert security_from_profile(None) is None
    for text, key in (("tls:\n  ca-file: $FACILITY_CERTS/ca.pem\n", "tls.cert"),
                      ("tls:\n  ca-file: /no/ca.pem\n  cert: /no/c\n  key: /no/k\n", "tls.ca-file"),
                      ("tls:\n  cafile: /x\n", "tls.cafile")):
        p.write_text(text)
        with pytest.raises(ConfigError) as err:
            security_from_profile(str(p))
        assert err.value.key == key


@pytest.mark.parametrize("name, path, by_value", [
    ("dy_jets", "/home/me/analyses/dy_jets.py", True),              # a notebook's sys.path entry
    ("jetdask_user_dy_jets", "/work/analyses/dy_jets.py", True),    # loaded from a path by load_analysis
    ("mylib.selection", "/home/me/mylib/selection.py", True),
    ("jetdask.plugin", "/work/main/jetdask/plugin.py", False),       # jetdask itself: on the workers
    ("coffea_like", "/opt/env/lib/python3.11/site-packages/coffea_like/__init__.py", False),
    ("numpy", "/usr/lib/python3/dist-packages/numpy/__init__.py", False),
    ("__main__", None, False),                                       # cloudpickle ships it anyway
    ("builtin_thing", None, False),
])
def test_what_ships_by_value(name, path, by_value):
    assert ships_by_value(name, path) is by_value


def test_stdlib_is_not_shipped():
    import json
    assert not ships_by_value("json", json.__file__)


@pytest.mark.parametrize("mine, theirs, bad", [
    ("0.1.0", {}, {}),
    ("0.1.0", {"tls://a": "0.1.0", "tls://b": "0.1.0"}, {}),
    ("0.1.0", {"tls://b": "0.0.9", "tls://a": "0.1.0"}, {"tls://b": "0.0.9"}),
    ("0.1.0", {"tls://a": None}, {"tls://a": None}),                 # no jetdask there at all
])
def test_version_mismatches(mine, theirs, bad):
    assert mismatches(mine, theirs) == bad


def test_ready_report_versions():
    from jetdask import __version__
    assert check_ready({"worker": "tls://a", "version": __version__}) is True
    for msg in ({"worker": "tls://a", "version": "0.0.1"}, {"worker": "tls://a"}):
        with pytest.raises(VersionMismatchError) as err:
            check_ready(msg)
        assert "tls://a" in str(err.value) and __version__ in str(err.value) and "\n" not in str(err.value)


def test_cli_unreachable_gateway_is_one_line_and_makes_no_directory(small_sample, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASK_GATEWAY")}
    env.update(DASK_GATEWAY__ADDRESS="http://127.0.0.1:9", DASK_GATEWAY__AUTH__TYPE="basic",
               DASK_GATEWAY__AUTH__KWARGS__USERNAME="me")
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "jetdask.cli", "run", str(REPO / "analyses" / "dy_jets.py") + ":DYJets",
           "--fileset", small_sample, "--run-dir", str(run), "--cluster", "gateway", "--no-progress"]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 2
    errors = [line for line in p.stderr.splitlines() if "error" in line.lower() or "Traceback" in line]
    assert len(errors) == 1 and errors[0].startswith("jetdask: error: cluster.gateway: cannot reach the gateway "
                                                     "http://127.0.0.1:9"), p.stderr
    assert not run.exists()
    p = subprocess.run(cmd + ["--jobs", "2"], env=env, capture_output=True, text=True, timeout=120)
    errors = [line for line in p.stderr.splitlines() if "error" in line.lower() or "Traceback" in line]
    assert p.returncode == 2 and len(errors) == 1 and "--jobs" in errors[0], p.stderr
