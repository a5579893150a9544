"""Everything ``jetdask sf`` writes for a run, as one function (also used by ``jetdask demo``).

``OUT`` (``.json`` or ``.json.gz``): the correctionlib file; beside it ``OUT_summary.json``
(every number of every table, the notes) and ``OUT_comparison.json`` (the tagger table's
rows); optionally the ROOT templates and the comparison figure.
"""
from __future__ import annotations

import json
import os


def stem(path: str) -> str:
    """``sf.json.gz`` -> ``sf``: the base the side files are named after."""
    for suffix in (".json.gz", ".json", ".gz"):
        if path.endswith(suffix):
            return path[: -len(suffix)]
    return path


def write_outputs(run_dir: str, out: str, *, wp_file: str | None = None, wps: dict | None = None,
                  channel: str = "all", norm: str = "pretag", taggers=None, templates: str | None = None,
                  figure: str | None = None):
    """Derive the SFs of ``run_dir`` and write the files; return ``(SFResult, {kind: path})``."""
    from .compare import records, save_figure
    from .derive import derive, summary, wp_file_of_run

    wp_file = wp_file or wp_file_of_run(run_dir)
    res = derive(run_dir, wp_file=wp_file, wps=wps, channel=channel, norm=norm, taggers=taggers)
    paths = {"corrections": res.write(out)}
    base = stem(out)
    paths["summary"] = base + "_summary.json"
    with open(paths["summary"], "w") as f:
        json.dump(summary(res), f, indent=1)
        f.write("\n")
    paths["comparison"] = base + "_comparison.json"
    with open(paths["comparison"], "w") as f:
        json.dump(records(res.wp_inclusive), f, indent=1)
        f.write("\n")
    if templates:
        from .templates import write_templates
        write_templates(run_dir, templates, channel=channel)
        paths["templates"] = templates
    if figure:
        os.makedirs(os.path.dirname(os.path.abspath(figure)), exist_ok=True)
        paths["figure"] = save_figure(res, figure)
    return res, paths


def demo_summary(run_dir: str, out_dir: str) -> str:
    """What ``jetdask demo`` prints last: the light-jet SF comparison of the run's taggers (their
    undistorted variants, side by side), after writing ``sf.json`` and the comparison figure."""
    from ..plotting.run import load_run
    from .compare import format_table
    from .inputs import region_names

    out, _, _ = load_run(run_dir)
    if not region_names(out.hists):
        return "light-jet scale factors: the run has no sf_* histograms (it ran without a corrections config)"
    os.makedirs(out_dir, exist_ok=True)
    res, paths = write_outputs(run_dir, os.path.join(out_dir, "sf.json"),
                               figure=os.path.join(out_dir, "sf_comparison.png"))
    taggers = list(dict.fromkeys(t.tagger for t in res.wp_inclusive if "@" not in t.tagger))
    lines = [format_table(res.wp_inclusive, taggers)]
    lines += [f"NOTE: {n}" for n in res.notes if "b-tag shape SF" in n]
    lines.append(f"light-jet scale factors: {paths['corrections']} (correctionlib), comparison figure "
                 f"{paths['figure']}; jetdask sf {run_dir} --out sf.json for every option")
    return "\n".join(lines)
