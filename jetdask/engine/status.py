"""``jetdask status``: what a run directory holds, as a table or JSON."""
from __future__ import annotations

import json
import os

from ..errors import ConfigError
from .ledger import Ledger
from .lock import running_holder


def run_status(run_dir: str) -> dict:
    path = os.path.join(run_dir, "ledger.sqlite")
    if not os.path.exists(path):
        raise ConfigError(f"{run_dir} is not a jetdask run directory (no ledger.sqlite)", "run_dir")
    led = Ledger(path, readonly=True)
    try:
        counts = led.counts()
        failed = led.failed()
        files = led.failed_files()
        completeness = led.processed()
        return {"run_dir": os.path.abspath(run_dir), "chunks": counts, "failed_chunks": [
            {k: f[k] for k in ("dataset", "path", "entry_start", "entry_stop", "attempts", "kind", "error_type",
                               "message", "events", "bad_range", "worker")} for f in failed],
            "unreadable_files": files, "datasets": completeness, "chunk_plan": led.get_meta("chunk_plan"),
            "complete": led.get_meta("fileset") is not None and not failed and not files  # planned
            and counts.get("pending", 0) == 0 and counts.get("running", 0) == 0,
            "running_by": running_holder(run_dir) or None}
    finally:
        led.close()


def format_status(st: dict) -> str:
    lines = [f"run {st['run_dir']}"]
    if st.get("running_by"):
        h = st["running_by"]
        lines[0] += f" (in progress: process {h.get('pid')} on host {h.get('host')})"
    states = ["done", "pending", "running", "failed", "split"]
    lines.append("chunks: " + ", ".join(f"{s} {st['chunks'].get(s, 0)}" for s in states))
    if st.get("chunk_plan"):
        lines.append(f"planned: {st['chunk_plan']}")
    lines.append("")
    lines.append(f"{'dataset':<28}{'events done / planned':>26}{'files done / planned':>24}  complete")
    for ds, d in sorted(st["datasets"].items()):
        flag = "yes" if d["complete"] else "NO"
        lines.append(f"{ds:<28}{d['events_processed']:>12} / {d['events_planned']:<11}"
                     f"{d['files_processed']:>10} / {d['files_planned']:<11}  {flag}")
    if st["failed_chunks"] or st["unreadable_files"]:
        lines.append("")
        lines.append("failed:")
    for f in st["failed_chunks"]:
        ev = ""
        if f["events"]:
            ev = "; events (run:lumi:event) " + ", ".join(f"{r}:{l}:{e}" for r, l, e in f["events"][:5])
        if f["bad_range"]:
            ev = f"; smallest failing range [{f['bad_range'][0]}, {f['bad_range'][1]})" + ev
        lines.append(f"  {f['dataset']}: {f['path']} [{f['entry_start']}, {f['entry_stop']}) "
                     f"{f['kind']}: {f['error_type']}: {f['message']}{ev}")
    for f in st["unreadable_files"]:
        reason = str(f["reason"]).replace(repr(f["path"]), "the file").replace(str(f["path"]), "the file")
        lines.append(f"  {f['dataset']}: {f['path']} unreadable: {reason}")
    if not st["complete"]:
        lines.append("")
        lines.append(f"rerun what is missing with: jetdask resubmit {st['run_dir']}")
    return "\n".join(lines)


def status_json(run_dir: str) -> str:
    return json.dumps(run_status(run_dir), indent=2)
