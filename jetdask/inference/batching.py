"""Batched prediction under ``torch.inference_mode``, with thread control and a memory budget.

**Threads.** torch gets ``max(1, c // k)`` intra-op threads, ``c`` = the cores this process
may use (``os.sched_getaffinity``), ``k`` = the task threads competing for them: 1 outside
dask; on a worker its ``nthreads``, or, when the process is not pinned to a CPU subset
(a LocalCluster: every worker sees every core), the total ``nthreads`` of the workers on
this host (asked once from the scheduler). So a 1-thread batch worker on a 4-core slot
lets torch use 4 threads, while 2 single-thread LocalCluster workers on 2 cores run torch
single-threaded each instead of 2 x 2 threads fighting: OpenMP threads spinning under
oversubscription made a DeepJet forward pass 10-50x slower here. ``JETDASK_TORCH_THREADS``
(or ``jetdask.inference.threads`` in the dask config) overrides. The setting is per process,
applied before the first prediction.

**Batch size.** Unless given, the batch size is the memory budget divided by an estimate of
the bytes per jet (the model's own ``activation_bytes(shapes)`` when it has one, else the
input tensor bytes times 16), clipped to [64, 4096]; FGSM, which keeps gradients, gets a
third of the budget. Budgets (``jetdask.inference.memory-budget-cpu`` / ``-cuda`` in the dask
config): 64 MiB on CPU, where larger batches only lose (every batch allocates fresh
activation buffers: page faults, cache misses; measured with ``benchmarks/inference.py``),
2 GiB on CUDA, where larger batches keep the GPU busy.

**Out of memory.** A batch that raises ``torch.cuda.OutOfMemoryError`` is retried at half the
size (CUDA cache emptied first), down to one jet; the smaller size is kept for the rest of the
chunk and as the ceiling for later chunks of the same model in this process
(:func:`halving_plan` is the policy). A single jet that does not fit raises
:class:`~jetdask.errors.MemoryBudgetError`.

**Backends.** torch modules (jetdask checkpoints, TorchScript) run under
``torch.inference_mode``; ONNX models (:class:`~jetdask.inference.onnx_backend.OnnxModel`)
take the numpy slices directly.
"""
from __future__ import annotations

import logging
import os
import threading

import numpy as np

log = logging.getLogger(__name__)

MIN_BATCH, MAX_BATCH = 64, 4096
ACTIVATION_FACTOR = 16

_threads_lock = threading.Lock()
_batch_caps: dict = {}    # id(model) -> largest batch size that did not run out of memory
_threads_set: int | None = None
_task_threads: int | None = None


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _host(address: str) -> str:
    return address.split("://", 1)[-1].rsplit(":", 1)[0]


def task_threads() -> int:
    """Task threads competing for this process' cores (1 outside a dask worker).

    On a worker: its ``nthreads``; when the process may use every core of the machine (no
    CPU affinity restriction, e.g. a LocalCluster), the sum of ``nthreads`` of all workers
    on this host (asked once from the scheduler), since they share those cores.
    """
    global _task_threads
    if _task_threads is not None:
        return _task_threads
    try:
        from distributed import get_worker
        worker = get_worker()
    except ValueError:   # not on a dask worker
        return 1
    n = max(1, int(worker.state.nthreads))
    if available_cores() >= (os.cpu_count() or 1):
        try:
            from distributed import get_client
            client = get_client(timeout=5)
            try:
                info = client.scheduler_info(n_workers=-1)["workers"]
            except TypeError:
                info = client.scheduler_info()["workers"]
            host = _host(worker.address)
            n = max(n, sum(int(w.get("nthreads", 1)) for a, w in info.items() if _host(a) == host))
        except Exception as err:  # noqa: BLE001 - the scheduler's view is a refinement: the worker's own count stays
            log.debug("jetdask: the threads of the other workers on this host are unknown: %r", err)
    _task_threads = n
    return n


def torch_threads() -> int:
    """``JETDASK_TORCH_THREADS`` / ``jetdask.inference.threads``, else ``max(1, cores // task_threads())``."""
    from .. import config
    env = os.environ.get("JETDASK_TORCH_THREADS") or config.get("inference.threads")
    if env:
        return max(1, int(env))
    return max(1, available_cores() // task_threads())


def configure_threads(n: int | None = None) -> int:
    """Set torch's intra-op threads (once per process unless ``n`` changes); returns the number."""
    global _threads_set
    import torch
    n = n or torch_threads()
    with _threads_lock:
        if _threads_set != n:
            torch.set_num_threads(n)
            _threads_set = n
    return n


def bytes_per_jet(module, arrays: list) -> int:
    shapes = [tuple(a.shape[1:]) for a in arrays]
    est = getattr(module, "activation_bytes", None)
    if callable(est):
        try:
            return int(est(shapes))
        except Exception as err:  # noqa: BLE001 - a model's own estimate is optional: the generic one applies
            log.debug("jetdask: %s.activation_bytes failed: %r", type(module).__name__, err)
    return ACTIVATION_FACTOR * sum(int(np.prod(s)) * 4 for s in shapes)


def choose_batch_size(module, arrays: list, memory_budget: int | None = None, fgsm: bool = False,
                      device: str = "cpu") -> int:
    kind = "cuda" if str(device).startswith("cuda") else "cpu"
    from .. import config
    budget = int(memory_budget or config.get(f"inference.memory-budget-{kind}"))
    if fgsm:
        budget //= 3
    per = max(1, bytes_per_jet(module, arrays))
    return int(min(MAX_BATCH, max(MIN_BATCH, budget // per)))


def halving_plan(batch_size: int, failed: bool) -> int | None:
    """The next batch size after a batch of ``batch_size`` (``failed``: ran out of memory).

    ``batch_size`` when it worked, half of it (at least 1) when it failed, None when a single
    jet failed (nothing left to halve).
    """
    if not failed:
        return batch_size
    return None if batch_size <= 1 else max(1, batch_size // 2)


def _oom_types() -> tuple:
    import torch
    kinds = [getattr(torch.cuda, "OutOfMemoryError", None), getattr(torch, "OutOfMemoryError", None)]
    return tuple({k for k in kinds if k is not None})


def _run_batch(loaded, arrays, start, stop, fgsm, fgsm_masks, labels):
    import torch

    from .distortions import fgsm as fgsm_step
    if getattr(loaded, "backend", "torch") == "onnx":
        y = loaded.module.run([a[start:stop] for a in arrays])
        if loaded.softmax:
            y = torch.softmax(torch.from_numpy(y), dim=1).numpy()
        return y
    dev = loaded.device
    # a copy per batch: some TorchScript models modify their inputs in place
    xs = [torch.from_numpy(a[start:stop]).to(dev, copy=True) for a in arrays]
    if fgsm is not None:
        ms = [None if m is None else torch.from_numpy(np.array(np.broadcast_to(m, a.shape)[start:stop]))
              .to(dev) for m, a in zip(fgsm_masks, arrays)]
        y = None if labels is None else torch.from_numpy(labels[start:stop]).to(dev)
        xs = fgsm_step(loaded.module, xs, ms, y, fgsm.epsilon, loaded.softmax)
    with torch.inference_mode():
        y = loaded.module(*xs)
        if loaded.softmax:
            y = torch.softmax(y, dim=1)
    return y.float().cpu().numpy()


def predict(loaded, arrays: list, *, batch_size: int | None = None, memory_budget: int | None = None,
            fgsm=None, fgsm_masks: list | None = None, labels: np.ndarray | None = None) -> np.ndarray:
    """Scores ``(N, n_classes)`` (float32) of ``loaded`` on ``arrays`` (model argument order).

    ``fgsm``: an :class:`~jetdask.inference.distortions.FGSM`; then ``fgsm_masks`` (per array, a
    boolean array broadcastable to it or None) and ``labels`` (class index per jet, -1 = own
    prediction; None = own prediction for all) drive the attack batch by batch.
    """
    import torch

    from ..errors import MemoryBudgetError
    configure_threads()
    n = len(arrays[0]) if arrays else 0
    n_classes = len(loaded.classes)
    if n == 0:
        return np.zeros((0, n_classes), dtype=np.float32)
    bs = int(batch_size or choose_batch_size(loaded.module, arrays, memory_budget, fgsm is not None,
                                             loaded.device.type))
    key = id(loaded.module)
    bs = min(bs, _batch_caps.get(key, bs))
    oom = _oom_types()
    out = np.empty((n, n_classes), dtype=np.float32)
    start = 0
    while start < n:
        stop = min(n, start + bs)
        try:
            y = _run_batch(loaded, arrays, start, stop, fgsm, fgsm_masks, labels)
        except oom as err:
            nxt = halving_plan(stop - start, failed=True)
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            if nxt is None:
                raise MemoryBudgetError(f"one jet does not fit in {loaded.device} memory "
                                        f"({str(err).splitlines()[0][:160]})") from None
            bs = _batch_caps[key] = nxt
            continue
        if y.ndim != 2 or y.shape[1] != n_classes:
            raise ValueError(f"model gives outputs of shape {tuple(y.shape)} for {n_classes} classes "
                             f"{loaded.classes}")
        out[start:stop] = y
        start = stop
    return out
