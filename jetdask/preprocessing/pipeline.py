"""The preprocessing passes (jetdask analyses) and the driver that chains them.

Layout of a preprocessing directory ``RUN``::

    RUN/prep.json            validated config, resolved feature list, datasets (written once)
    RUN/fileset.json         the fileset restricted to the simulated datasets used
    RUN/pass1-hists/         jetdask run: (pT, eta) histograms per class, moments per chunk
    RUN/weights.json         reweighting map (reweight.WeightMap) from pass 1
    RUN/scaler.json          mean/std/default per feature (scale.py) from pass 1
    RUN/pass2-shards/        jetdask run: parquet shards per split, arrays/{train,validation,test}/DATASET/CHUNK.parquet
    RUN/tensors/SPLIT/       features.npy (float32, N x F), columns.json, label.npy, weight.npy,
                             defaulted.npy, ids.npy (client-side concatenation of the shards);
                             with ``layout:``, NAME.npy + NAME.valid.npy per layout input (layout_tensors.py)
    RUN/summary.json, RUN/plots/*.png

Both passes are ordinary jetdask runs: resumable, and ``jetdask resubmit RUN/pass1-hists``
or ``RUN/pass2-shards`` reruns what failed. The pass analyses are built from the directory
alone (``HistogramPass(prep_dir=RUN)``, ``ShardPass(prep_dir=RUN)``; the ledger records the
spec ``jetdask.preprocessing.pipeline:ShardPass`` and ``{"prep_dir": RUN}``), so the CLI can
rebuild them. They read the small JSON files above at construction (on the client) and travel
to the workers by pickle: only the parquet outputs need a shared file system.

A pass with failed chunks stops the chain (``PreprocessOutput.complete`` False, exit code 3
from the CLI). After fixing the cause: ``jetdask resubmit RUN/pass2-shards`` (or
``jetdask preprocess ... --resubmit``), then ``jetdask preprocess --run-dir RUN`` again: the
finished passes are not rerun, and the tensors equal those of a run that never failed (the
shard files are named by chunk id and concatenated in canonical order).

Modules: :mod:`.passes` (the two pass analyses), :mod:`.driver` (``preprocess``, setup, fits,
end); this module re-exports both (the ledger names ``jetdask.preprocessing.pipeline:ShardPass``).
"""
from .driver import PreprocessOutput, finish, fit_pass1, preprocess, resolve_features, select_datasets, setup  # noqa: F401
from .passes import *  # noqa: F403 - the pass analyses and the directory's file names (passes.__all__)
