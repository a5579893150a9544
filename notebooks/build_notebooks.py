"""Writes the notebooks of this folder from the cells below (run after editing: python build_notebooks.py).

The notebooks run top to bottom in CI (tests/test_notebooks.py). JETDASK_NB_EVENTS sets the
sample size (default 20000 events per kind) so CI stays quick.
"""
import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

SETUP = """import os, sys, pathlib
N_EVENTS = int(os.environ.get("JETDASK_NB_EVENTS", "20000"))
WORK = pathlib.Path(os.environ.get("JETDASK_NB_WORK", "notebook-work")).resolve()
WORK.mkdir(exist_ok=True)
REPO = pathlib.Path.cwd().parent if pathlib.Path.cwd().name == "notebooks" else pathlib.Path.cwd()
sys.path.insert(0, str(REPO / "analyses"))"""

SAMPLE = """from jetdask.synthetic import generate_sample
fileset = WORK / "sample" / "fileset.json"
if not fileset.exists():
    generate_sample(str(WORK / "sample"), events=N_EVENTS, files=2, seed=11, mismodel=1.0, progress=True)
print(fileset)"""

nb1 = [
    new_markdown_cell("# 1. Launch a dask cluster from the notebook\n\n"
                      "`start_cluster` returns a `distributed.Client`. Here a LocalCluster; on a SLURM or "
                      "HTCondor site the same call starts batch workers (adaptive, TLS by default)."),
    new_code_cell(SETUP),
    new_code_cell(SAMPLE),
    new_code_cell("from jetdask.cluster import start_cluster, close_cluster\n"
                  "client = start_cluster(\"local\", n_workers=2)\nclient"),
    new_markdown_cell("An analysis written in a cell: the columns it reads and what it does with a chunk."),
    new_code_cell("import awkward as ak, hist\nfrom jetdask import Result, Runner, analysis\n\n"
                  "@analysis(columns=[\"Muon_pt\", \"Muon_eta\", \"Muon_phi\", \"Muon_mass\", \"Muon_charge\"])\n"
                  "def dimuon(events, chunk):\n"
                  "    mu = events.Muon[events.Muon.pt > 20]\n"
                  "    two = mu[ak.num(mu) == 2]\n"
                  "    h = hist.Hist.new.Reg(60, 60, 120, name=\"mass\", label=\"m(mumu) [GeV]\").Weight()\n"
                  "    h.fill(mass=(two[:, 0] + two[:, 1]).mass)\n"
                  "    return Result(hists={\"mass\": h})\n\n"
                  "out = Runner(dimuon, str(fileset), str(WORK / \"run-local\"), client).run()\n"
                  "out.hists[\"DYJetsToLL_M-50\"][\"mass\"]"),
    new_code_cell("print({a: w['memory_limit'] for a, w in client.scheduler_info()['workers'].items()})\n"
                  "close_cluster(client)"),
    new_markdown_cell("On a machine with SLURM the same analysis runs on batch workers, three lines "
                      "(`cluster/slurm.yaml` holds the site options; run where `sbatch` exists and "
                      "`JETDASK_NB_SLURM` is set, as CI does):"),
    new_code_cell("import shutil\n"
                  "if shutil.which(\"sbatch\") and os.environ.get(\"JETDASK_NB_SLURM\"):\n"
                  "    slurm = start_cluster(\"slurm\", jobs=2, cores=1, processes=1, memory=\"2GiB\",\n"
                  "                          queue=os.environ.get(\"LOCAL_SLURM_PARTITION\"),\n"
                  "                          log_directory=str(WORK / \"slurm-logs\"))   # job stdout/stderr\n"
                  "    out = Runner(dimuon, str(fileset), str(WORK / \"run-slurm\"), slurm).run()\n"
                  "    close_cluster(slurm)\n"
                  "    print(\"SLURM run complete:\", out.complete)\n"
                  "else:\n"
                  "    print(\"no SLURM here: start_cluster('slurm', jobs=2) would submit 2 worker jobs\")"),
]

nb2 = [
    new_markdown_cell("# 2. The DY+jets data/MC study, interactively\n\n"
                      "The run goes on in the background; the partially merged histograms can be looked at "
                      "while it runs."),
    new_code_cell(SETUP),
    new_code_cell(SAMPLE),
    new_code_cell("import time\nfrom jetdask import Runner\nfrom jetdask.cluster import start_cluster, close_cluster\n"
                  "from dy_jets import DYJets\n"
                  "client = start_cluster(\"local\", n_workers=2)\nclient"),
    new_markdown_cell("Two small DeepJet taggers, nominal and FGSM-adversarial, trained on part of the MC "
                      "(reused when they exist; `jetdask train` does the same from a YAML config)."),
    new_code_cell("from jetdask.training.demo import demo_taggers\n"
                  "taggers = demo_taggers(str(fileset), str(WORK / 'taggers'), epochs=1, client=client,\n"
                  "                       max_events=4000, max_jets=4000, progress=False)\n"
                  "taggers"),
    new_markdown_cell("The study runs in the background: official DeepJet scores, both taggers, and both "
                      "taggers on FGSM-distorted inputs, all in one pass over each chunk."),
    new_code_cell("analysis = DYJets(taggers=taggers, distortions=['fgsm0.05'])\n"
                  "runner = Runner(analysis, str(fileset), str(WORK / \"run-dy\"), client, chunk_size=2000)\n"
                  "handle = runner.submit()"),
    new_code_cell("# while it runs: the histograms merged so far\n"
                  "time.sleep(2)\n"
                  "partial = handle.partial()\n"
                  "for ds, res in partial.items():\n"
                  "    print(ds, 'events so far:', res.counters.get('events'))"),
    new_code_cell("out = handle.result()\nprint('complete:', out.complete)\n"
                  "out.hists['DYJetsToLL_M-50']['cutflow']"),
    new_code_cell("from jetdask.plotting import plot_run\n"
                  "paths = plot_run(str(WORK / 'run-dy'), str(WORK / 'plots-dy'), verbose=False,\n"
                  "                 pairs=[('DeepJet_nominal', 'DeepJet_adversarial')])  # shown side by side\n"
                  "print(len(paths), 'plots')\n"
                  "from IPython.display import Image\n"
                  "Image(filename=str(WORK / 'plots-dy' / 'DeepJet_nominal_vs_DeepJet_adversarial_BvsL_all.png'))"),
    new_code_cell("Image(filename=str(WORK / 'plots-dy' / 'DeepJet_BvsL_all.png'), width=500)"),
    new_code_cell("close_cluster(client)"),
]

nb3 = [
    new_markdown_cell("# 3. A failing chunk: report, fix, resubmit only what failed\n\n"
                      "We damage one file of the sample, run, read the failure report, repair the file and "
                      "resubmit: only the failed chunks run again and the result equals a clean run."),
    new_code_cell(SETUP),
    new_code_cell(SAMPLE),
    new_code_cell("import json, shutil\nbroken_dir = WORK / 'broken'\nshutil.rmtree(broken_dir, ignore_errors=True)\n"
                  "broken_dir.mkdir()\nfs = json.load(open(fileset))\n"
                  "for ds in fs.values():\n"
                  "    ds['files'] = {str(broken_dir / pathlib.Path(p).name): t for p, t in ds['files'].items()}\n"
                  "    for p in ds['files']: shutil.copy(pathlib.Path(fileset).parent / pathlib.Path(p).name, p)\n"
                  "json.dump(fs, open(broken_dir / 'fileset.json', 'w'))\n"
                  "victim = sorted(broken_dir.glob('mc_*.root'))[0]\n"
                  "good = victim.read_bytes()\n"
                  "raw = bytearray(good); a, b = len(raw) // 10, len(raw) * 6 // 10; raw[a:b] = bytes(b - a)\n"
                  "victim.write_bytes(bytes(raw)); print('damaged', victim)"),
    new_code_cell("from jetdask import Runner\nfrom jetdask.cluster import start_cluster, close_cluster\n"
                  "from jetdask.engine.status import run_status, format_status\nfrom dy_jets import DYJets\n"
                  "client = start_cluster('local', n_workers=2)\n"
                  "run = str(WORK / 'run-broken'); shutil.rmtree(run, ignore_errors=True)\n"
                  "out = Runner(DYJets(), str(broken_dir / 'fileset.json'), run, client, chunk_size=2000).run()\n"
                  "print(format_status(run_status(run)))"),
    new_code_cell("victim.write_bytes(good)  # the fix\n"
                  "runner = Runner(DYJets(), None, run, client)\n"
                  "fixed = runner.resubmit()\n"
                  "print(format_status(run_status(run)))\nprint('resubmitted chunks:', runner.stats['done'])"),
    new_code_cell("clean_run = str(WORK / 'run-clean'); shutil.rmtree(clean_run, ignore_errors=True)\n"
                  "clean = Runner(DYJets(), str(broken_dir / 'fileset.json'), clean_run, client, chunk_size=2000).run()\n"
                  "import numpy as np\n"
                  "for ds in clean.hists:\n"
                  "    for name, h in clean.hists[ds].items():\n"
                  "        assert np.array_equal(h.values(flow=True), fixed.hists[ds][name].values(flow=True)), name\n"
                  "print('resubmitted run == clean run, bin for bin')\nclose_cluster(client)"),
    new_code_cell("from jetdask.plotting import plot_run\n"
                  "paths = plot_run(run, str(WORK / 'plots-resubmitted'))\nprint(len(paths), 'plots')"),
]

nb4 = [
    new_markdown_cell("# 4. At an analysis facility: a dask-gateway cluster\n\n"
                      "coffea-casa, the Purdue and Fermilab facilities hand out dask clusters through a "
                      "**dask-gateway** server. Their JupyterHub sets where it is and how to log in "
                      "(`DASK_GATEWAY__*` variables), so `start_cluster(\"gateway\")` needs no address here. "
                      "In CI the same variables point at a real local dask-gateway-server "
                      "(see `docs/howto/facilities.md`)."),
    new_code_cell(SETUP),
    new_code_cell(SAMPLE),
    new_markdown_cell("What this gateway lets you choose (the names differ between facilities; an unknown "
                      "name is refused with the list of those offered):"),
    new_code_cell("from jetdask.cluster import start_cluster, close_cluster\n"
                  "from jetdask.cluster.gateway import running_clusters\n"
                  "from dask_gateway import Gateway\n"
                  "gateway = Gateway()\n"
                  "print(dict(gateway.cluster_options()))\n"
                  "gateway.close()"),
    new_markdown_cell("Two workers; `keep=True` leaves the cluster running when this client closes (a kernel "
                      "restart), so the notebook can reattach to it by name."),
    new_code_cell("client = start_cluster(\"gateway\", workers=2, cluster_options={\"worker_memory\": 1}, keep=True)\n"
                  "name = client.cluster.name\n"
                  "client.wait_for_workers(2, timeout=300)\n"
                  "print(name, {a: f\"{w['memory_limit'] / 2**30:.2f} GiB\" "
                  "for a, w in client.scheduler_info()['workers'].items()})"),
    new_markdown_cell("The DY study runs on the gateway's workers. They do not share this notebook's "
                      "files: the analysis (imported from `analyses/`) travels by value."),
    new_code_cell("import shutil\nfrom jetdask import Runner\nfrom dy_jets import DYJets\n"
                  "run = str(WORK / 'run-gateway'); shutil.rmtree(run, ignore_errors=True)\n"
                  "out = Runner(DYJets(), str(fileset), run, client, chunk_size=2000).run()\n"
                  "print('complete:', out.complete)"),
    new_markdown_cell("A kernel restart, simulated: the client goes, the cluster stays; reattach by name "
                      "and let it adapt between 1 and 3 workers."),
    new_code_cell("close_cluster(client)\n"
                  "print('running:', running_clusters())\n"
                  "client = start_cluster(\"gateway\", name=name, minimum=1, maximum=3)\n"
                  "print('reattached to', client.cluster.name)"),
    new_code_cell("import numpy as np\n"
                  "local_run = str(WORK / 'run-gateway-local'); shutil.rmtree(local_run, ignore_errors=True)\n"
                  "local = Runner(DYJets(), str(fileset), local_run, serial=True, chunk_size=2000).run()\n"
                  "for ds in local.hists:\n"
                  "    for hname, h in local.hists[ds].items():\n"
                  "        assert np.allclose(h.values(flow=True), out.hists[ds][hname].values(flow=True), rtol=1e-12), hname\n"
                  "print('gateway run == local run, bin for bin')"),
    new_markdown_cell("Closing the client of a cluster you reattached to (without `keep`) shuts it down:"),
    new_code_cell("close_cluster(client)\nprint('clusters left:', running_clusters())"),
]

for name, cells in [("01_launch_cluster.ipynb", nb1), ("02_dy_study.ipynb", nb2),
                    ("03_failures_and_resubmit.ipynb", nb3), ("04_gateway.ipynb", nb4)]:
    nb = new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                            "language": "python"}})
    nbformat.write(nb, name)
    print("wrote", name)
