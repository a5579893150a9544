"""``jetdask status``: what a run directory holds, as a table or JSON.

A run that is not complete always says why (:func:`incomplete_reasons`, a pure function of the
status): planning that did not finish, chunks not run yet, failed chunks, unreadable files,
files listed twice. Chunks the ledger still calls ``running`` while no process holds the run
(a client killed, interrupted, or stopped by a full disk before it could write) are shown as
pending: nothing runs them, and the next run or resubmit does.
"""
from __future__ import annotations

import json
import os

from ..errors import ConfigError
from .ledger import Ledger
from .lock import running_holder
from .protocol import ChunkState


def run_status(run_dir: str) -> dict:
    path = os.path.join(run_dir, "ledger.sqlite")
    if not os.path.exists(path):
        raise ConfigError(f"{run_dir} is not a jetdask run directory (no ledger.sqlite)", "run_dir")
    led = Ledger(path, readonly=True)
    try:
        counts = led.counts()
        holder = running_holder(run_dir) or None
        interrupted = 0
        if not holder and counts.get(ChunkState.RUNNING):
            interrupted = counts.pop(ChunkState.RUNNING)
            counts[ChunkState.PENDING] = counts.get(ChunkState.PENDING, 0) + interrupted
        failed = led.failed()
        files = led.failed_files()
        completeness = led.processed()
        planned = led.get_meta("fileset") is not None
        st = {"run_dir": os.path.abspath(run_dir), "chunks": counts, "failed_chunks": [
            {k: f[k] for k in ("dataset", "path", "entry_start", "entry_stop", "attempts", "kind", "error_type",
                               "message", "events", "bad_range", "worker")} for f in failed],
            "unreadable_files": files, "datasets": completeness, "chunk_plan": led.get_meta("chunk_plan"),
            "planned": planned, "interrupted": interrupted, "duplicate_files": led.duplicates(),
            "unresolved_duplicates": led.unresolved_duplicates(), "running_by": holder}
        st["complete"] = (planned and not failed and not files and counts.get(ChunkState.PENDING, 0) == 0
                          and counts.get(ChunkState.RUNNING, 0) == 0
                          and all(d["complete"] for d in completeness.values()))
        st["reasons"] = incomplete_reasons(st)
        return st
    finally:
        led.close()


def incomplete_reasons(st: dict) -> list[str]:
    """Why the run in ``st`` (:func:`run_status`) is not complete, one line each ([] if it is)."""
    if st.get("complete"):
        return []
    out = []
    if st.get("running_by"):
        h = st["running_by"]
        out.append(f"the run is in progress (process {h.get('pid')} on host {h.get('host')})")
    if not st.get("planned"):
        n = sum(d.get("files_planned", 0) + d.get("files_unreadable", 0) for d in st["datasets"].values())
        out.append(f"planning did not finish ({n} file(s) planned so far): `jetdask resubmit` plans the rest")
    pending = st["chunks"].get(ChunkState.PENDING, 0)
    if pending and not st.get("running_by"):
        why = (f", {st['interrupted']} of them in flight when the last run stopped" if st.get("interrupted") else "")
        out.append(f"{pending} chunk(s) not run yet{why}: `jetdask resubmit` runs them")
    if st["failed_chunks"]:
        out.append(f"{len(st['failed_chunks'])} chunk(s) failed (listed above): fix the cause, then `jetdask resubmit`")
    if st["unreadable_files"]:
        out.append(f"{len(st['unreadable_files'])} file(s) could not be read (listed above): `jetdask resubmit` "
                   "tries them again")
    for g in st.get("unresolved_duplicates") or ():
        out.append(f"{g['dataset']}: {' and '.join(g['paths'])} are the same file (UUID {g['uuid']}), planned twice by "
                   f"an older jetdask: `jetdask resubmit` reads it once")
    explained = bool(out)
    for ds, d in sorted(st["datasets"].items()):
        if not d["complete"] and not explained:
            out.append(f"{ds}: {d['events_processed']} of {d['events_planned']} events done with no chunk left to "
                       f"do: the ledger does not add up; rerun into a new run directory")
    return out


def format_status(st: dict) -> str:
    lines = [f"run {st['run_dir']}"]
    if st.get("running_by"):
        h = st["running_by"]
        lines[0] += f" (in progress: process {h.get('pid')} on host {h.get('host')})"
    states = [ChunkState.DONE, ChunkState.PENDING, ChunkState.RUNNING, ChunkState.FAILED, ChunkState.SPLIT]
    lines.append("chunks: " + ", ".join(f"{s} {st['chunks'].get(s, 0)}" for s in states))
    if st.get("chunk_plan"):
        lines.append(f"planned: {st['chunk_plan']}")
    lines.append("")
    lines.append(f"{'dataset':<28}{'events done / planned':>26}{'files done / planned':>24}  complete")
    for ds, d in sorted(st["datasets"].items()):
        flag = "yes" if d["complete"] else "NO"
        lines.append(f"{ds:<28}{d['events_processed']:>12} / {d['events_planned']:<11}"
                     f"{d['files_processed']:>10} / {d['files_planned']:<11}  {flag}")
    if st.get("duplicate_files"):
        lines.append("")
        lines.append("files listed twice (read once):")
        lines += [f"  {d['dataset']}: {d['path']}: {d['reason']}" for d in st["duplicate_files"]]
    if st["failed_chunks"] or st["unreadable_files"]:
        lines.append("")
        lines.append("failed:")
    for f in st["failed_chunks"]:
        ev = ""
        if f["events"]:
            ev = "; events (run:lumi:event) " + ", ".join(f"{r}:{lumi}:{e}" for r, lumi, e in f["events"][:5])
        if f["bad_range"]:
            ev = f"; smallest failing range [{f['bad_range'][0]}, {f['bad_range'][1]})" + ev
        lines.append(f"  {f['dataset']}: {f['path']} [{f['entry_start']}, {f['entry_stop']}) "
                     f"{f['kind']}: {f['error_type']}: {f['message']}{ev}")
    for f in st["unreadable_files"]:
        reason = str(f["reason"]).replace(repr(f["path"]), "the file").replace(str(f["path"]), "the file")
        lines.append(f"  {f['dataset']}: {f['path']} unreadable: {reason}")
    if not st["complete"]:
        lines.append("")
        lines.append("not complete:")
        lines += [f"  {r}" for r in st.get("reasons") or incomplete_reasons(st)]
        if not st.get("running_by"):
            lines.append(f"rerun what is missing with: jetdask resubmit {st['run_dir']}")
    return "\n".join(lines)


def status_json(run_dir: str) -> str:
    return json.dumps(run_status(run_dir), indent=2)
