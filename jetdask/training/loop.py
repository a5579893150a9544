"""The training loop: epochs of shuffled batches, validation, checkpoints, resume.

``train(config, preprocessed=RUN, out=DIR)`` trains the model of the config on
``RUN/tensors/<train_split>`` and validates on ``<validation_split>`` after every epoch. It
writes into ``DIR``::

    config.json                   the validated config of the run
    checkpoints/epoch_NNN.pt      model after epoch NNN (jetdask checkpoint, output.keep_epochs)
    checkpoints/epoch_NNN.state.pt  optimizer, scheduler and RNG states of that epoch
    last.pt, last.state.pt        the latest epoch
    best.pt                       the epoch with the lowest validation loss
    scaler.json                   the inference scaler stored in every checkpoint
    history.json                  per epoch: losses, accuracies, learning rate, jets/s, seconds

Every checkpoint is a complete tagger (``Tagger(name, "DIR/best.pt")``): the layout of the
preprocessing run, the classes and its inference scaler (``RUN/scaler.json``) are in it; its
``metadata`` holds the epoch, train/validation loss and accuracy, the history so far, the config, the preprocessing
directory and the name of its ``.state.pt`` file. ``train(..., resume="DIR/last.pt")`` reloads
the weights and that state (optimizer, scheduler, torch RNG), and continues with epoch
``epoch + 1``: batch orders are drawn from ``(seed, epoch)``, so the resumed run reproduces
the loss curve of an uninterrupted one. State files hold only tensors and plain values and are
read with ``torch.load(weights_only=True)``.

The function takes and returns plain data, so it can run as one dask task on a GPU worker::

    fut = client.submit(train_task, cfg, preprocessed=RUN, out=DIR, resources={"GPU": 1})
"""
from __future__ import annotations

import os
import time

from ..atomicwrite import atomic_path, write_json
from ..errors import ConfigError
from . import scaler as scaler_mod
from .config import load_config

CONFIG_FILE, HISTORY_FILE, SCALER_FILE = "config.json", "history.json", "scaler.json"


def resolve_device(name: str | None) -> str:
    import torch
    if name in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} requested but CUDA is not available", "training.device")
    return name


def _write_json(path: str, obj) -> None:
    write_json(path, obj, indent=1)


def build_model(cfg: dict, classes):
    from ..models import model_class
    cls = model_class(cfg["model"]["name"])
    kwargs = dict(cfg["model"]["kwargs"])
    if tuple(getattr(cls, "classes", ())) != tuple(classes):
        kwargs.setdefault("n_classes", len(classes))
    try:
        return cls(**kwargs)
    except TypeError as err:
        raise ConfigError(f"{cls.__name__}: {err}", "model.kwargs") from None


def make_optimizer(cfg: dict, params):
    import torch
    t = cfg["training"]
    if t["optimizer"] == "adam":
        return torch.optim.Adam(params, lr=t["lr"], weight_decay=t["weight_decay"])
    if t["optimizer"] == "adamw":
        return torch.optim.AdamW(params, lr=t["lr"], weight_decay=t["weight_decay"])
    return torch.optim.SGD(params, lr=t["lr"], momentum=0.9, weight_decay=t["weight_decay"])


def make_scheduler(cfg: dict, optimizer):
    import torch
    t = cfg["training"]
    s = t["schedule"]
    if s == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, t["step_size"], t["gamma"])
    if s == "exponential":
        return torch.optim.lr_scheduler.ExponentialLR(optimizer, t["gamma"])
    if s == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, t["epochs"], eta_min=t["min_lr"])
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: 1.0)


class _Sums:
    def __init__(self):
        self.loss = self.correct = self.weight = 0.0
        self.jets = 0

    def add(self, loss, logits, batch):
        import torch
        with torch.no_grad():
            w = batch.weight.to(logits.dtype)
            ws = float(w.sum())
            self.loss += float(loss) * ws
            self.correct += float(((logits.argmax(1) == batch.label).to(w.dtype) * w).sum())
            self.weight += ws
            self.jets += len(batch)

    def result(self) -> dict:
        w = self.weight if self.weight > 0 else float("nan")
        return {"loss": self.loss / w, "accuracy": self.correct / w, "jets": self.jets}


def run_epoch(model, loader, loss_fn, device, *, optimizer=None, attack=None, mix=1.0, grad_clip=None,
              progress=False, desc="") -> dict:
    """One pass over ``loader``: training when ``optimizer`` is given, else evaluation (no grad)."""
    import torch
    from tqdm.auto import tqdm

    from .adversarial import perturb
    train = optimizer is not None
    model.train(train)
    sums = _Sums()
    t0 = time.perf_counter()
    bar = tqdm(loader, desc=desc, leave=False, disable=not progress, unit="batch")
    for batch in bar:
        b = batch.to(device)
        if train:
            xs = b.inputs
            adv = attack is not None and attack.active
            if adv:
                xa = perturb(model, attack, xs, b.masks, b.label, device)
            optimizer.zero_grad(set_to_none=True)
            if adv and mix >= 1.0:
                logits = model(*xa)
                loss = loss_fn(logits, b.label, b.weight)
            else:
                logits = model(*xs)
                loss = loss_fn(logits, b.label, b.weight)
                if adv and mix > 0:
                    loss = (1.0 - mix) * loss + mix * loss_fn(model(*xa), b.label, b.weight)
            loss.backward()
            if grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            optimizer.step()
        else:
            with torch.no_grad():
                logits = model(*b.inputs)
                loss = loss_fn(logits, b.label, b.weight)
        sums.add(loss.detach(), logits.detach(), b)
        if progress:
            bar.set_postfix(loss=f"{float(loss.detach()):.4f}", refresh=False)
    out = sums.result()
    out["seconds"] = time.perf_counter() - t0
    out["jets_per_s"] = out["jets"] / out["seconds"] if out["seconds"] > 0 else float("nan")
    return out


def _rng_state(device: str) -> dict:
    import torch
    st = {"torch": torch.get_rng_state()}
    if device.startswith("cuda"):
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def _set_rng_state(st: dict, device: str) -> None:
    import torch
    torch.set_rng_state(st["torch"])
    if device.startswith("cuda") and st.get("cuda") is not None:
        torch.cuda.set_rng_state_all(st["cuda"])


def _resume_state(path: str, device: str) -> tuple[dict, dict, str]:
    """(checkpoint, training state, output directory) of a checkpoint to resume from."""
    import torch

    from ..inference.registry import load_checkpoint
    if not os.path.exists(path):
        raise ConfigError(f"checkpoint {path} not found", "resume")
    ckpt = load_checkpoint(path)
    meta = ckpt["metadata"]
    rel = meta.get("training_state")
    if not rel:
        raise ConfigError(f"{path} has no training state (best.pt without output.keep_epochs?); resume from "
                          "last.pt or checkpoints/epoch_NNN.pt", "resume")
    here = os.path.dirname(os.path.abspath(path))
    state_path = os.path.join(here, rel)
    if not os.path.exists(state_path):
        raise ConfigError(f"training state {state_path} of {path} not found", "resume")
    state = torch.load(state_path, map_location="cpu", weights_only=True)
    out_dir = os.path.normpath(os.path.join(here, meta.get("out_dir_relative", ".")))
    return ckpt, state, out_dir


def train(config=None, *, preprocessed: str | None = None, out: str | None = None, resume: str | None = None,
          device: str | None = None, progress: bool | None = None, overrides: dict | None = None) -> dict:
    """Train (or resume) a tagger; returns a JSON-able summary (see the module docstring).

    ``config``: YAML path, dict or None (defaults; on resume: the checkpoint's config).
    ``preprocessed``/``out``/``device``/``progress`` override the config's ``data.preprocessed``,
    ``output.dir``, ``training.device``, ``output.progress``; ``overrides``: dotted keys.
    """
    import torch

    from .adversarial import Attack
    from .data import Loader, SplitData
    from .losses import make_loss

    ckpt = state = None
    if resume is not None:
        ckpt, state, resume_dir = _resume_state(resume, "cpu")
        if config is None:
            config = ckpt["metadata"].get("config")
        out = out or resume_dir
    ov = dict(overrides or {})
    ov.update({"data.preprocessed": preprocessed, "output.dir": out, "training.device": device,
               "output.progress": progress})
    cfg = load_config(config, ov)
    run_dir, out_dir = cfg["data"]["preprocessed"], cfg["output"]["dir"]
    if not run_dir:
        raise ConfigError("no preprocessing run directory (give --preprocessed RUN)", "data.preprocessed")
    if not out_dir:
        raise ConfigError("no output directory (give --out DIR)", "output.dir")
    run_dir, out_dir = os.path.abspath(run_dir), os.path.abspath(out_dir)
    t, a = cfg["training"], cfg["adversarial"]
    dev = resolve_device(t["device"])
    if t["threads"]:
        torch.set_num_threads(t["threads"])
    os.makedirs(os.path.join(out_dir, "checkpoints"), exist_ok=True)

    from ..models import model_class
    model_layout = getattr(model_class(cfg["model"]["name"]), "layout", None)
    d = cfg["data"]
    seed = t["seed"]
    train_data = SplitData(run_dir, d["train_split"], model_layout, in_memory=d["in_memory"], limit=d["max_jets"],
                           seed=seed)
    layout_name = train_data.layout_name
    inf_scaler = train_data.scaler
    val_data = SplitData(run_dir, d["validation_split"], model_layout, inf_scaler, in_memory=d["in_memory"],
                         limit=d["max_val_jets"], seed=seed)
    classes = train_data.classes
    if len(train_data) == 0:
        raise ConfigError(f"split {d['train_split']!r} of {run_dir} is empty", "data.train_split")
    scaler_mod.write_inference_scaler(os.path.join(out_dir, SCALER_FILE), inf_scaler)

    torch.manual_seed(seed)
    model = build_model(cfg, classes).to(dev)
    optimizer = make_optimizer(cfg, model.parameters())
    scheduler = make_scheduler(cfg, optimizer)
    history, start = [], 1
    if ckpt is not None:
        model.load_state_dict(ckpt["state_dict"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        _set_rng_state(state["rng"], dev)
        start = int(ckpt["epoch"]) + 1
        history = [h for h in ckpt["metadata"].get("history", []) if h["epoch"] < start]
    _write_json(os.path.join(out_dir, CONFIG_FILE), cfg)

    loss_fn = make_loss(cfg["loss"])
    attack = Attack.from_config(a)
    train_loader = Loader(train_data, t["batch_size"], shuffle=True, seed=seed, resample=d["resample"])
    val_loader = Loader(val_data, max(t["batch_size"], 1024), shuffle=False, seed=seed)
    best = min((h for h in history), key=lambda h: h["val_loss"], default=None)
    show = cfg["output"]["progress"]
    for epoch in range(start, t["epochs"] + 1):
        train_loader.set_epoch(epoch)
        lr = optimizer.param_groups[0]["lr"]
        tr = run_epoch(model, train_loader, loss_fn, dev, optimizer=optimizer, attack=attack, mix=a["mix"],
                       grad_clip=t["grad_clip"], progress=show, desc=f"epoch {epoch}/{t['epochs']} train")
        va = run_epoch(model, val_loader, loss_fn, dev, progress=show, desc=f"epoch {epoch} validation")
        scheduler.step()
        row = {"epoch": epoch, "train_loss": tr["loss"], "train_accuracy": tr["accuracy"], "val_loss": va["loss"],
               "val_accuracy": va["accuracy"], "lr": lr, "train_jets": tr["jets"], "train_seconds": tr["seconds"],
               "train_jets_per_s": tr["jets_per_s"], "val_seconds": va["seconds"],
               "adversarial": attack.method if attack.active else "none"}
        history.append(row)
        is_best = best is None or not (va["loss"] >= best["val_loss"])
        if is_best:
            best = row
        _save_epoch(out_dir, model, cfg, classes, layout_name, inf_scaler, row, history, optimizer, scheduler,
                    dev, run_dir, is_best, best)
        _write_json(os.path.join(out_dir, HISTORY_FILE), history)
        if show:
            print(f"epoch {epoch}: train loss {tr['loss']:.4f} acc {tr['accuracy']:.3f} | val loss "
                  f"{va['loss']:.4f} acc {va['accuracy']:.3f} | {tr['jets_per_s']:.0f} jets/s")
    return {"out_dir": out_dir, "best": os.path.join(out_dir, "best.pt"), "last": os.path.join(out_dir, "last.pt"),
            "history": os.path.join(out_dir, HISTORY_FILE), "best_epoch": best["epoch"] if best else None,
            "epochs": len(history), "device": dev, "classes": list(classes), "layout": layout_name,
            "final": history[-1] if history else None}


def _save_epoch(out_dir, model, cfg, classes, layout, scaler, row, history, optimizer, scheduler, dev, run_dir,
                is_best, best):
    import torch

    from ..inference.registry import save_checkpoint
    epoch = row["epoch"]
    state = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng": _rng_state(dev),
             "epoch": epoch}
    meta = {"epoch": epoch, "train_loss": row["train_loss"], "train_accuracy": row["train_accuracy"],
            "val_loss": row["val_loss"], "val_accuracy": row["val_accuracy"], "config": cfg, "layout": layout,
            "preprocessed": run_dir, "history": history, "torch": str(torch.__version__)}

    def write(path, state_rel, out_rel):
        save_checkpoint(path, model, layout=layout, classes=classes, scaler=scaler, epoch=epoch,
                        metadata=dict(meta, training_state=state_rel, out_dir_relative=out_rel))

    def write_state(path):
        with atomic_path(path) as tmp:
            torch.save(state, tmp)

    name = f"epoch_{epoch:03d}"
    if cfg["output"]["keep_epochs"]:
        write_state(os.path.join(out_dir, "checkpoints", f"{name}.state.pt"))
        write(os.path.join(out_dir, "checkpoints", f"{name}.pt"), f"{name}.state.pt", "..")
    write_state(os.path.join(out_dir, "last.state.pt"))
    write(os.path.join(out_dir, "last.pt"), "last.state.pt", ".")
    if is_best:
        rel = f"checkpoints/{name}.state.pt" if cfg["output"]["keep_epochs"] else None
        write(os.path.join(out_dir, "best.pt"), rel, ".")


def train_task(config, preprocessed=None, out=None, resume=None, device=None, overrides=None) -> dict:
    """:func:`train` without progress output, for ``client.submit(train_task, ..., resources={"GPU": 1})``."""
    return train(config, preprocessed=preprocessed, out=out, resume=resume, device=device, progress=False,
                 overrides=overrides)


def submit_train(client, config, *, resources: dict | None = None, **kwargs):
    """Submit :func:`train_task` as one dask task (``resources={"GPU": 1}`` to land on a GPU worker)."""
    return client.submit(train_task, config, resources=resources, pure=False, **kwargs)
