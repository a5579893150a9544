"""A scheduler address nobody answers at: one ``ConfigError``, and nothing of the failed client
is left behind (its IO-loop thread, its place as dask's default client)."""
from __future__ import annotations

import gc

import pytest

from conftest import free_port, io_loops
from jetdask.cluster import start_cluster
from jetdask.errors import ConfigError


def test_unreachable_scheduler_one_error_and_no_client_left():
    from distributed import LocalCluster, default_client
    before = io_loops()
    address = f"tcp://127.0.0.1:{free_port()}"
    for _ in range(2):
        with pytest.raises(ConfigError) as err:
            start_cluster(address, timeout=2)
        assert err.value.key == "--cluster" and f"cannot connect to {address}" in str(err.value)
    assert io_loops() == before
    with pytest.raises(ValueError):
        default_client()
    # a client's close left to the garbage collector could run in the next client's starting IO
    # loop and stall it: the next connection starts whatever the collector finds now
    del err
    gc.collect()
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster:
        client = start_cluster(cluster.scheduler_address, timeout=30)
        try:
            assert client.submit(sum, [1, 2]).result(timeout=30) == 3
        finally:
            client.close()
    assert io_loops() == before
