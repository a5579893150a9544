"""``jetdask train`` and ``jetdask evaluate``.

::

    jetdask train CONFIG [--preprocessed RUN] [--out DIR] [--resume CKPT] [--epochs N]
                  [--batch-size N] [--lr X] [--device D] [--seed N] [--threads N] [--no-progress]
    jetdask evaluate NAME=CKPT [NAME=CKPT ...] --preprocessed RUN --out DIR [--split test]
                  [--epsilons 0,0.05,0.1,0.2] [--attack fgsm|pgd] [--max-jets N] [--formats png,pdf]

``add_parser(subparsers)`` adds ``train``; ``add_evaluate_parser(subparsers)`` adds
``evaluate``; ``add_parsers(subparsers)`` adds both. :func:`main` runs either stand-alone
(``python -m jetdask.cli.train train ...``). Exit codes: 0 success, 2 bad configuration
(the message names the key).
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from .common import EXIT_OK, nonnegative_int, positive_float, positive_int, standalone, subparser

TRAIN_CODES = "exit codes: 0 trained; 2 bad usage or configuration (one line on stderr naming the key); 130 interrupted"
EVAL_CODES = "exit codes: 0 evaluated; 2 bad usage, configuration or checkpoint (one line on stderr)"


def _configure_train(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", nargs="?", default=None,
                   help="training YAML (see jetdask/training/default.yaml); omitted: the defaults "
                        "(with --resume: the checkpoint's config)")
    p.add_argument("--preprocessed", default=None, metavar="RUN",
                   help="preprocessing run directory (RUN/tensors, RUN/scaler.json) (default: data.preprocessed)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="output directory (checkpoints/, best.pt, last.pt, history.json) (default: output.dir)")
    p.add_argument("--resume", default=None, metavar="CKPT",
                   help="checkpoint to resume from (DIR/last.pt or DIR/checkpoints/epoch_NNN.pt)")
    p.add_argument("--epochs", type=positive_int, default=None, metavar="N",
                   help="total number of epochs (default: training.epochs)")
    p.add_argument("--batch-size", type=positive_int, default=None, metavar="JETS",
                   help="jets per batch (default: training.batch_size)")
    p.add_argument("--lr", type=positive_float, default=None, metavar="X",
                   help="learning rate (default: training.lr)")
    p.add_argument("--device", default=None, help="auto (CUDA when present), cpu, cuda or cuda:N (default: "
                                                  "training.device)")
    p.add_argument("--seed", type=nonnegative_int, default=None, metavar="N", help="random seed (default: "
                                                                                    "training.seed)")
    p.add_argument("--threads", type=positive_int, default=None, metavar="N",
                   help="torch CPU threads (default: training.threads)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_train)


def _configure_evaluate(p: argparse.ArgumentParser) -> None:
    p.add_argument("models", nargs="+", help="NAME=CHECKPOINT (or a checkpoint: named after its directory)")
    p.add_argument("--preprocessed", required=True, metavar="RUN", help="preprocessing run directory")
    p.add_argument("--out", required=True, metavar="DIR", help="directory of the figures and auc.json")
    p.add_argument("--split", default="test", choices=("train", "validation", "test"),
                   help="jets to evaluate (default: test)")
    p.add_argument("--epsilons", default="0,0.05,0.1,0.2,0.3", metavar="LIST",
                   help="comma-separated attack sizes, in units of the scaled inputs (default: 0,0.05,0.1,0.2,0.3)")
    p.add_argument("--attack", default="fgsm", choices=("fgsm", "pgd"), help="attack of the robustness curves "
                                                                            "(default: fgsm)")
    p.add_argument("--max-jets", type=positive_int, default=None, metavar="N", help="at most N jets (default: all)")
    p.add_argument("--bootstrap", type=nonnegative_int, default=200, metavar="N",
                   help="bootstrap replicas of the AUC uncertainties (0: none; default: 200)")
    p.add_argument("--formats", default="png", metavar="LIST", help="comma-separated: png, pdf, svg (default: png)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    p.set_defaults(func=cmd_evaluate)


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparser(subparsers, "train", "train a tagger on preprocessing tensors (nominal or adversarial)",
                  "jetdask train train.yaml --preprocessed runs/prep --out runs/nominal --epochs 5",
                  "jetdask train --resume runs/nominal/last.pt --epochs 10", codes=TRAIN_CODES)
    _configure_train(p)
    return p


def add_evaluate_parser(subparsers) -> argparse.ArgumentParser:
    p = subparser(subparsers, "evaluate", "ROC/AUC, discriminants and FGSM robustness of trained taggers",
                  "jetdask evaluate nominal=runs/nominal/best.pt --preprocessed runs/prep --out runs/evaluation",
                  codes=EVAL_CODES)
    _configure_evaluate(p)
    return p


def add_parsers(subparsers) -> None:
    add_parser(subparsers)
    add_evaluate_parser(subparsers)


def cmd_train(args) -> int:
    from ..training.config import load_config
    from ..training.loop import train
    if args.config is not None:
        load_config(args.config)           # a bad key is reported before anything is made
    for key, path in (("--preprocessed", args.preprocessed), ("--resume", args.resume)):
        if path is not None and not os.path.exists(path):
            from ..errors import ConfigError
            raise ConfigError(f"{path} not found", key)
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
    """``python -m jetdask.cli.train train|evaluate ...``: the same as ``jetdask train|evaluate ...``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("train", "evaluate"):
        which = argv.pop(0)
    else:
        which = "train"
    configure = _configure_train if which == "train" else _configure_evaluate
    return standalone(f"jetdask {which}", configure, argv)


if __name__ == "__main__":
    sys.exit(main())
