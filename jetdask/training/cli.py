"""``jetdask train`` and ``jetdask evaluate``.

::

    jetdask train CONFIG [--preprocessed RUN] [--out DIR] [--resume CKPT] [--epochs N]
                  [--batch-size N] [--lr X] [--device D] [--seed N] [--threads N] [--no-progress]
    jetdask evaluate NAME=CKPT [NAME=CKPT ...] --preprocessed RUN --out DIR [--split test]
                  [--epsilons 0,0.05,0.1,0.2] [--attack fgsm|pgd] [--max-jets N] [--formats png,pdf]

``add_parser(subparsers)`` adds ``train``; ``add_evaluate_parser(subparsers)`` adds
``evaluate``; ``add_parsers(subparsers)`` adds both. :func:`main` runs either stand-alone
(``python -m jetdask.training.cli train ...``). Exit codes: 0 success, 2 bad configuration
(the message names the key).
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from ..cli import EXIT_OK


def _configure_train(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", nargs="?", default=None,
                   help="training YAML (see jetdask/training/default.yaml); omitted: the defaults "
                        "(with --resume: the checkpoint's config)")
    p.add_argument("--preprocessed", default=None, help="preprocessing run directory (RUN/tensors, RUN/scaler.json)")
    p.add_argument("--out", default=None, help="output directory (checkpoints, best.pt, history.json)")
    p.add_argument("--resume", default=None, help="checkpoint to resume from (DIR/last.pt or checkpoints/epoch_NNN.pt)")
    p.add_argument("--epochs", type=int, default=None, help="total number of epochs (overrides training.epochs)")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--device", default=None, help="auto, cpu, cuda or cuda:N")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_train)


def _configure_evaluate(p: argparse.ArgumentParser) -> None:
    p.add_argument("models", nargs="+", help="NAME=CHECKPOINT (or a checkpoint: named after its directory)")
    p.add_argument("--preprocessed", required=True, help="preprocessing run directory")
    p.add_argument("--out", required=True, help="directory of the figures and auc.json")
    p.add_argument("--split", default="test", choices=("train", "validation", "test"))
    p.add_argument("--epsilons", default="0,0.05,0.1,0.2,0.3", help="comma-separated attack sizes")
    p.add_argument("--attack", default="fgsm", choices=("fgsm", "pgd"))
    p.add_argument("--max-jets", type=int, default=None)
    p.add_argument("--bootstrap", type=int, default=200, help="bootstrap replicas of the AUC uncertainties (0: none)")
    p.add_argument("--formats", default="png", help="comma-separated: png, pdf")
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=cmd_evaluate)


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("train", help="train a tagger on preprocessing tensors (nominal or adversarial)")
    _configure_train(p)
    return p


def add_evaluate_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("evaluate", help="ROC/AUC, discriminants and FGSM robustness of trained taggers")
    _configure_evaluate(p)
    return p


def add_parsers(subparsers) -> None:
    add_parser(subparsers)
    add_evaluate_parser(subparsers)


def cmd_train(args) -> int:
    from .loop import train
    overrides = {"training.epochs": args.epochs, "training.batch_size": args.batch_size, "training.lr": args.lr,
                 "training.seed": args.seed, "training.threads": args.threads}
    summary = train(args.config, preprocessed=args.preprocessed, out=args.out, resume=args.resume,
                    device=args.device, progress=False if args.no_progress else None, overrides=overrides)
    print(json.dumps({k: summary[k] for k in ("out_dir", "best", "best_epoch", "epochs", "device")}))
    return EXIT_OK


def _models(specs) -> dict:
    from ..errors import ConfigError
    out = {}
    for s in specs:
        name, _, path = s.rpartition("=")
        if not name:
            d = os.path.dirname(os.path.abspath(path))
            name = os.path.basename(d if os.path.basename(d) != "checkpoints" else os.path.dirname(d))
        if not os.path.exists(path):
            raise ConfigError(f"checkpoint {path} not found", f"models[{name}]")
        if name in out:
            raise ConfigError("duplicate model name (use NAME=CHECKPOINT)", f"models[{name}]")
        out[name] = path
    return out


def cmd_evaluate(args) -> int:
    from ..errors import ConfigError
    from ..evaluation import evaluate
    try:
        eps = [float(e) for e in args.epsilons.split(",") if e.strip()]
    except ValueError:
        raise ConfigError(f"expected comma-separated numbers, got {args.epsilons!r}", "--epsilons") from None
    formats = tuple(f.strip() for f in args.formats.split(",") if f.strip())
    bad = [f for f in formats if f not in ("png", "pdf", "svg")]
    if bad:
        raise ConfigError(f"unsupported format {bad[0]!r} (png, pdf, svg)", "--formats")
    res = evaluate(_models(args.models), args.preprocessed, args.out, split=args.split, epsilons=eps,
                   attack=args.attack, max_jets=args.max_jets, formats=formats, device=args.device,
                   bootstrap=max(args.bootstrap, 0))
    print(json.dumps({n: m["auc"] for n, m in res["models"].items()}))
    return EXIT_OK


def main(argv=None) -> int:
    """``python -m jetdask.training.cli train|evaluate ...``: the same as ``jetdask train|evaluate ...``."""
    from ..cli import main as jetdask_main
    return jetdask_main(argv)


if __name__ == "__main__":
    sys.exit(main())
