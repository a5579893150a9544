"""Throughput of the inference pass: conversion, prediction, pass, and the pure-torch limit.

    python benchmarks/inference.py [--events 2000] [--sample DIR] [--repeat 3] [--threads N]
                                   [--batch-sizes 64,256,1024,4096] [--taggers deepjet,deepcsv,part]

Prints one table per device (CPU, and CUDA when available), jets/s:

* ``convert``  locating the kept jets + layout conversion (+ scaling), per layout;
* ``torch``    the model's forward pass alone on tensors built beforehand, already on the
               device, per batch size: the limit;
* ``predict``  :func:`jetdask.inference.batching.predict` on the converted numpy arrays
               (per-batch copy to the device, softmax, copy back);
* ``pass``     :func:`jetdask.inference.tagger_pass` for that tagger alone: conversion +
               prediction + writing the scores back as jet fields (what an analysis pays);
* ``pass aN``  the pass with the adaptive batch size (N, from the memory budget);
* ``pass/torch`` the pass at that batch size over the torch limit at its best batch size.

With ``--onnx`` (default when onnxruntime is installed), the nominal DeepJet exported to ONNX in
the ``deepjet-cmssw`` order (``deepjet-onnx``) gets, per batch size:

* ``ort``      a bare ``onnxruntime`` loop over the converted arrays (same thread count): the limit;
* ``predict``  jetdask's :func:`~jetdask.inference.batching.predict` on the same arrays;
* ``pass``     the tagger pass (conversion included); ``vs ort`` = rate over the ``ort`` rate at
               that batch size.

Each number is the best of ``--repeat`` runs, the steps interleaved so that load from other
processes on a shared machine affects them alike.

Models are the nominal DeepJet (~260k parameters), DeepCSV and a compact ParT, with random
weights. The jets are those of a synthetic PFNano MC file with pt > 20 GeV, |eta| < 2.5.
Numbers on a shared machine are noisy: compare ratios measured in one run.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import awkward as ak

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

MODELS = {
    "deepjet": ("DeepJet", {}),
    "deepcsv": ("DeepCSV", {}),
    "part": ("ParticleTransformer", {"embed_dims": [64, 64], "n_heads": 4, "n_layers": 2, "n_cls_layers": 1,
                                     "pair_dims": [32], "ffn_ratio": 2}),
}


def read_events(path: str, layouts):
    import uproot

    from jetdask.nanoaod.columns import resolve_columns
    from jetdask.nanoaod.events import events_from_arrays
    t = uproot.open(path)["Events"]
    cols = sorted({c for lay in layouts for c in lay.columns} | {"run", "event"})
    return events_from_arrays(t.arrays(resolve_columns(t.keys(), cols), how=dict))


def best_time(fn, repeat: int) -> float:
    """Shortest of ``repeat`` runs (the least disturbed by other processes on a shared machine)."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=2000)
    ap.add_argument("--sample", help="directory with a synthetic sample (fileset.json); made if absent")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: jetdask's choice)")
    ap.add_argument("--batch-sizes", default="64,256,1024,4096")
    ap.add_argument("--taggers", default="deepjet,deepcsv,part")
    ap.add_argument("--devices", default=None, help="cpu,cuda (default: cpu and cuda when available)")
    ap.add_argument("--onnx", default="auto", choices=("auto", "yes", "no"),
                    help="also benchmark the ONNX DeepJet (auto: when onnxruntime is installed)")
    args = ap.parse_args(argv)

    import torch

    from jetdask.inference import Tagger, get_layout, save_checkpoint, tagger_pass
    from jetdask.inference.batching import choose_batch_size, configure_threads, predict
    from jetdask.inference.layouts import kept_jets
    from jetdask.inference.registry import build_model, load_model

    threads = configure_threads(args.threads)
    sizes = [int(x) for x in args.batch_sizes.split(",")]
    names = args.taggers.split(",")
    devices = args.devices.split(",") if args.devices else ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])

    work = tempfile.mkdtemp(prefix="jetdask-bench-")
    sample = args.sample or os.path.join(work, "sample")
    if not os.path.exists(os.path.join(sample, "mc_0.root")):
        from jetdask.synthetic import generate_sample
        print(f"generating {args.events} synthetic events in {sample} ...", flush=True)
        generate_sample(sample, events=args.events, files=1, seed=1)
    with_onnx = onnx_wanted(args.onnx) and "deepjet" in names
    events = read_events(os.path.join(sample, "mc_0.root"),
                         [get_layout(n) for n in names] + ([get_layout("deepjet-cmssw")] if with_onnx else []))
    mask = (events.Jet.pt > 20) & (abs(events.Jet.eta) < 2.5)
    n_jets = int(ak.sum(mask))
    print(f"{len(events)} events, {n_jets} jets kept; torch {torch.__version__}, {threads} thread(s), "
          f"{os.cpu_count()} cores visible")

    torch.manual_seed(0)
    ckpts = {}
    for n in names:
        cls, kw = MODELS[n]
        ckpts[n] = save_checkpoint(os.path.join(work, f"{n}.pt"), build_model(cls, kw))

    for device in devices:
        rows = []
        sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
        for n in names:
            tagger = Tagger(n, ckpts[n], device=device)
            lm = load_model(tagger)
            layout = lm.layout

            def convert():
                recs, _, _ = kept_jets(events.Jet, mask)
                return layout.convert(recs)
            conv = convert()
            arrays = conv.ordered()
            tensors = [torch.from_numpy(a).to(device) for a in arrays]

            def forward(bs):
                with torch.inference_mode():
                    for s in range(0, n_jets, bs):
                        lm.module(*[t[s:s + bs] for t in tensors])
                sync()

            def one_pass(bs):
                tagger_pass(events, [Tagger(n, ckpts[n], device=device, batch_size=bs)], mask,
                            with_discriminants=False)
                sync()
            forward(sizes[0])
            one_pass(sizes[0])
            auto = choose_batch_size(lm.module, arrays)
            best = {}

            def keep(key, fn):
                best[key] = min(best.get(key, float("inf")), best_time(fn, 1))
            for _ in range(args.repeat):                  # interleaved, so that load changes hit all alike
                keep(("convert", None), convert)
                for bs in sizes:
                    keep(("torch", bs), lambda: forward(bs))
                    keep(("predict", bs), lambda: predict(lm, arrays, batch_size=bs))
                    keep(("pass", bs), lambda: one_pass(bs))
                keep(("pass", "auto"), lambda: one_pass(None))
            limit = max(n_jets / best["torch", bs] for bs in sizes)
            rows.append((n, "convert", "-", n_jets / best["convert", None], ""))
            for bs in sizes:
                rows.append((n, "torch", bs, n_jets / best["torch", bs], ""))
                rows.append((n, "predict", bs, n_jets / best["predict", bs], ""))
                rate = n_jets / best["pass", bs]
                rows.append((n, "pass", bs, rate, f"{rate / limit:.0%}"))
            rate = n_jets / best["pass", "auto"]
            rows.append((n, "pass", f"a{auto}", rate, f"{rate / limit:.0%}"))
        print(f"\n== {device} ==")
        print(f"{'tagger':<8} {'step':<8} {'batch':>6} {'jets/s':>10} {'pass/torch':>10}")
        for n, step, bs, rate, ratio in rows:
            print(f"{n:<8} {step:<8} {bs!s:>6} {rate:>10.0f} {ratio:>10}")
        if with_onnx:
            onnx_rows(events, mask, n_jets, ckpts["deepjet"], work, device, sizes, args.repeat, threads)
        for n in names:
            best_torch = max(r[3] for r in rows if r[0] == n and r[1] == "torch")
            best_pass = max(r[3] for r in rows if r[0] == n and r[1] == "pass")
            print(f"{n}: best pass {best_pass:.0f} jets/s = {best_pass / best_torch:.0%} of the best pure torch "
                  f"forward ({best_torch:.0f} jets/s)")


def onnx_wanted(flag: str) -> bool:
    if flag == "no":
        return False
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        if flag == "yes":
            raise
        return False
    return True


def onnx_rows(events, mask, n_jets, ckpt, work, device, sizes, repeat, threads):
    """The ONNX DeepJet: bare onnxruntime loop vs jetdask predict vs the tagger pass (printed table)."""
    import onnxruntime as ort

    from jetdask.inference import Tagger, load_model, tagger_pass
    from jetdask.inference.batching import predict
    from jetdask.inference.layouts import kept_jets
    from jetdask.inference.onnx_backend import export_deepjet_cmssw
    path = export_deepjet_cmssw(load_model(Tagger("dj", ckpt, device="cpu")).module, os.path.join(work, "dj.onnx"))
    lm = load_model(Tagger("deepjet-onnx", path, layout="deepjet-cmssw", device=device))
    recs, _, _ = kept_jets(events.Jet, mask)
    arrays = lm.layout.convert(recs).ordered()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    providers = (["CUDAExecutionProvider"] if device == "cuda" else []) + ["CPUExecutionProvider"]
    bare = ort.InferenceSession(path, sess_options=opts, providers=providers)
    in_names = [i.name for i in bare.get_inputs()]

    def bare_loop(bs):
        for s in range(0, n_jets, bs):
            bare.run(None, {k: a[s:s + bs] for k, a in zip(in_names, arrays)})

    def one_pass(bs):
        tagger_pass(events, [Tagger("deepjet-onnx", path, layout="deepjet-cmssw", device=device, batch_size=bs)],
                    mask, with_discriminants=False)
    bare_loop(sizes[0])
    one_pass(sizes[0])
    best = {}
    for _ in range(repeat):                           # interleaved, as above
        for bs in sizes:
            for key, fn in (("ort", lambda: bare_loop(bs)), ("predict", lambda: predict(lm, arrays, batch_size=bs)),
                            ("pass", lambda: one_pass(bs))):
                best[key, bs] = min(best.get((key, bs), float("inf")), best_time(fn, 1))
    print(f"\n== {device}: deepjet-onnx ({', '.join(lm.module.providers)}) ==")
    print(f"{'step':<8} {'batch':>6} {'jets/s':>10} {'vs ort':>8}")
    for bs in sizes:
        ref = n_jets / best["ort", bs]
        for key in ("ort", "predict", "pass"):
            rate = n_jets / best[key, bs]
            print(f"{key:<8} {bs:>6} {rate:>10.0f} {rate / ref:>8.0%}")


if __name__ == "__main__":
    main()
