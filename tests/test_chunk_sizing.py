"""Chunk sizes a healthy run keeps (planned from memory per event) and progress that stays right."""
from __future__ import annotations

import os

from jetdask.engine import planning
from jetdask.engine.progress import Progress
from jetdask.fileset import parse_fileset
from jetdask.plugin import load_analysis

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIMUON = os.path.join(REPO, "analyses", "dimuon.py") + ":Dimuon"


def test_planned_chunks_fit_the_budget_and_the_guard_never_splits(tmp_path, nano_dy_path):
    from jetdask.engine.memory import chunk_budget
    from jetdask.engine.runner import Runner
    from jetdask.engine.status import run_status

    analysis = load_analysis(DIMUON)
    fs = parse_fileset({"DY": [nano_dy_path]})
    sizing = planning._sizing(nano_dy_path, "Events", planning.analysis_columns(analysis), None)
    n = int(__import__("uproot").open(nano_dy_path)["Events"].num_entries)
    # a worker memory limit under which the whole file in one chunk is over the guard's budget
    limit = int(sizing["bytes_per_event"] * n / 4 / 0.5)
    assert sizing["bytes_per_event"] * n > chunk_budget(limit)      # unplanned, the guard would split
    with Runner(analysis, fs, str(tmp_path / "run"), serial=True, progress=False, memory_limit=limit,
                chunk_size=10 * n) as runner:
        out = runner.run()
        planned = runner.ledger.get_meta("chunk_plan")
    st = run_status(str(tmp_path / "run"))
    assert out.complete
    assert st["chunks"].get("split", 0) == 0, st["chunks"]
    assert st["chunks"]["done"] >= 4
    assert "lowered to fit" in planned and "kB/event" in planned and f"requested {10 * n}" in planned
    assert st["chunk_plan"] == planned


def test_plan_without_an_analysis_keeps_the_requested_size(nano_dy_path):
    fs = parse_fileset({"DY": [nano_dy_path]})
    p = planning.plan(fs, 10**9)
    assert len(p.chunks) == 1 and "at most 1000000000 events" in p.describe()


def test_max_events_for():
    assert planning.max_events_for(100.0, 10_000, margin=1.0) == 100
    assert planning.max_events_for(100.0, 10_000) == 90
    assert planning.max_events_for(1e12, 10) == 1


def test_progress_counts_split_chunks_and_reuse(capsys):
    p = Progress(1000, 4, enabled=True, dashboard="http://127.0.0.1:1/status", step="run X")
    p.split(2)
    p.split(2)
    for _ in range(6):
        p.update(100, done=True)
    p.close()
    assert p.n_chunks == 6 and p.done == 6
    again = Progress(200, 2, enabled=True, dashboard="http://127.0.0.1:1/status", step="preprocessing pass 1/2",
                     done_before=14)
    again.close()
    err = capsys.readouterr().err
    assert err.count("dashboard") == 1
    assert "run X: 6 chunks done" in err and "2 split by the memory guard" in err
    assert "preprocessing pass 1/2: 14/16 chunks done earlier, 2 to run" in err


def test_progress_grows_as_files_are_planned(capsys):
    p = Progress(0, 0, enabled=True, step="run Y", planning=2)
    assert p.bar is not None                   # a bar even before the first file is planned
    p.add(3000, 3)
    p.update(1000, done=True)
    p.add(2000, 2)
    assert (p.n_chunks, p.planning, p.bar.total) == (5, 0, 5000)
    p.close()
    err = capsys.readouterr().err
    assert "run Y: 2 files to plan; each file's chunks start once it is planned" in err
    assert "run Y: 1 chunks done" in err
