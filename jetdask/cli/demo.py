"""``jetdask demo``: the synthetic DY+jets study with taggers (:mod:`jetdask.demo`)."""
from __future__ import annotations

from .common import nonnegative_float, nonnegative_int, positive_int, subparser


def add_parser(sub) -> None:
    p = subparser(sub, "demo", "synthetic DY+jets data/MC study with taggers on a LocalCluster",
                  "jetdask demo --events 20000 --epochs 1 --out demo-small     # a tenth of the events",
                  "jetdask demo         # the defaults: 5-11 minutes on 2 cores, about 3.2 GB in demo-output/ "
                  "(measured)")
    p.add_argument("--out", default="demo-output", metavar="DIR",
                   help="where the sample, taggers, run and plots go (default: demo-output; about 3.2 GB with the "
                        "defaults)")
    p.add_argument("--events", type=positive_int, default=200_000, metavar="N",
                   help="synthetic events per kind, data and MC (default: 200000)")
    p.add_argument("--files", type=positive_int, default=2, metavar="N", help="files per kind (default: 2)")
    p.add_argument("--seed", type=nonnegative_int, default=1, metavar="N", help="random seed (default: 1)")
    p.add_argument("--mismodel", type=nonnegative_float, default=1.0, metavar="X",
                   help="data/MC mismodelling strength (default: 1.0; 0: statistically identical)")
    p.add_argument("--workers", type=positive_int, default=2, metavar="N",
                   help="LocalCluster worker processes (default: 2)")
    p.add_argument("--epochs", type=positive_int, default=3, metavar="N", help="training epochs (default: 3)")
    p.add_argument("--train-events", type=positive_int, default=40_000, metavar="N",
                   help="MC events to preprocess for training: the first MC files holding at least N events "
                        "(a file is the smallest unit) (default: 40000)")
    p.add_argument("--distortions", default="fgsm0.05", metavar="LIST",
                   help="comma-separated input distortions run for every tagger, e.g. noise0.1,fgsm0.05; '' for "
                        "none (default: fgsm0.05)")
    p.add_argument("--no-train", action="store_true", help="official DeepJet scores only, no training")

    def cmd(args):
        from ..inference.distortions import parse_distortion
        dist = [d.strip() for d in args.distortions.split(",") if d.strip()]
        for d in dist:
            try:
                parse_distortion(d)
            except ValueError as err:
                from ..errors import ConfigError
                raise ConfigError(str(err), "--distortions") from None
        from ..demo import run_demo
        res = run_demo(args.out, args.events, args.files, args.seed, args.mismodel, args.workers,
                       not args.no_train, args.epochs, dist, args.train_events)
        return 0 if res["complete"] else 3

    p.set_defaults(func=cmd)
