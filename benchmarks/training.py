"""Training throughput: jets/s of a training epoch (nominal, FGSM, PGD) per batch size, and the
dataloader alone (in memory vs memory-mapped).

    python benchmarks/training.py [--preprocessed RUN] [--events 4000] [--threads 1] [--epochs 1]

Without ``--preprocessed`` a synthetic MC file of ``--events`` events is generated and
preprocessed in a temporary directory first.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time


def _prepare(events: int, tmp: str) -> str:
    from jetdask.preprocessing.pipeline import preprocess
    from jetdask.synthetic import generate_file
    mc = os.path.join(tmp, "mc.root")
    generate_file(mc, events, 5, "mc", 0.0, 1, "zstd", 2000)
    fs = os.path.join(tmp, "fileset.json")
    with open(fs, "w") as f:
        json.dump({"DYJetsToLL_M-50": {"files": {mc: "Events"}, "metadata": {"is_data": False}}}, f)
    run = os.path.join(tmp, "prep")
    preprocess({"layout": "deepjet", "outputs": {"plots": False}}, fs, run, serial=True, progress=False,
               verbose=False)
    return run


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preprocessed", default=None)
    ap.add_argument("--events", type=int, default=4000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch-sizes", default="128,512,2048")
    ap.add_argument("--summary", default="lstm", choices=("lstm", "pool"))
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)
    import torch
    torch.set_num_threads(args.threads)
    from jetdask.models import DeepJet
    from jetdask.training.adversarial import Attack
    from jetdask.training.data import Loader, SplitData
    from jetdask.training.loop import run_epoch
    from jetdask.training.losses import WeightedCrossEntropy
    with tempfile.TemporaryDirectory() as tmp:
        run = args.preprocessed or _prepare(args.events, tmp)
        rows = []
        for in_memory in (True, False):
            t0 = time.perf_counter()
            data = SplitData(run, "train", "deepjet", in_memory=in_memory)
            setup = time.perf_counter() - t0
            loader = Loader(data, 512, seed=0)
            t0 = time.perf_counter()
            n = sum(len(b) for b in loader)
            dt = time.perf_counter() - t0
            rows.append(("dataloader", "in memory" if in_memory else "memory-mapped", 512, n / dt,
                         f"setup {setup:.2f} s"))
        data = SplitData(run, "train", "deepjet", in_memory=True)
        for bs in [int(x) for x in args.batch_sizes.split(",")]:
            for name, attack in (("nominal", None), ("FGSM", Attack("fgsm", 0.1)),
                                 ("PGD (3 steps)", Attack("pgd", 0.1, steps=3))):
                torch.manual_seed(0)
                model = DeepJet(summary=args.summary, cpf_channels=(32, 16), npf_channels=(16, 8),
                                sv_channels=(32, 16), summary_sizes=(32, 16, 16), dense=(64, 64)).to(args.device)
                opt = torch.optim.Adam(model.parameters(), lr=1e-3)
                r = run_epoch(model, Loader(data, bs, seed=0), WeightedCrossEntropy(), args.device, optimizer=opt,
                              attack=attack)
                rows.append(("train epoch", name, bs, r["jets_per_s"], f"{r['jets']} jets, {r['seconds']:.2f} s"))
        print(f"\njetdask training benchmark: {len(data)} training jets, DeepJet ({args.summary}, small), "
              f"{args.threads} thread(s), device {args.device}\n")
        print(f"{'what':<12} {'variant':<16} {'batch':>6} {'jets/s':>10}  note")
        print("-" * 64)
        for what, var, bs, rate, note in rows:
            print(f"{what:<12} {var:<16} {bs:>6} {rate:>10.0f}  {note}")


if __name__ == "__main__":
    main()
