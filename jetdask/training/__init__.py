"""Training of flavour taggers on the preprocessing tensors (nominal and adversarial).

=====================  ====================================================
:mod:`.config`         training YAML (``default.yaml``), :class:`~jetdask.errors.ConfigError` per key
:mod:`.scaler`         the run's inference scaler (read, written beside the checkpoints)
:mod:`.data`           :class:`~.data.SplitData` (model inputs of one split), :class:`~.data.Loader` (batches)
:mod:`.losses`         weighted cross-entropy and focal loss
:mod:`.adversarial`    FGSM / PGD on the distortable inputs
:mod:`.loop`           :func:`train` (checkpoints, best.pt, resume, history), :func:`train_task`
:mod:`.cli`            ``jetdask train`` and ``jetdask evaluate``
:mod:`.demo`           :func:`~.demo.demo_taggers` for ``jetdask demo``
=====================  ====================================================

Importing this package does not import torch.
"""
from .config import load_config


def train(*args, **kwargs):
    """Train (or resume) a tagger: :func:`jetdask.training.loop.train` (torch is imported on the call)."""
    from .loop import train as _train
    return _train(*args, **kwargs)


def train_task(*args, **kwargs):
    """One training as a dask task, without progress output: :func:`jetdask.training.loop.train_task`."""
    from .loop import train_task as _task
    return _task(*args, **kwargs)


__all__ = ["load_config", "train", "train_task"]
