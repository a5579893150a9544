"""Training on synthetic PFNano: inputs equal the inference pass's, the model learns b tagging,
adversarial training is more robust to FGSM, resume continues the loss curve, checkpoints run
through tagger_pass (synthetic and real PFNano), config errors name the key, the CLI works."""
from __future__ import annotations

import json
import os

import awkward as ak
import numpy as np
import pytest
import torch

import training_helpers as H
from conftest import real_file
from jetdask.errors import ConfigError
from jetdask.inference import DEEPJET, Scaler, Tagger, tagger_columns, tagger_pass
from jetdask.inference.layouts import kept_jets
from jetdask.training.config import DEFAULT_YAML, load_config
from jetdask.training.data import Loader, SplitData
from jetdask.training.loop import train
from readfiles import read_json

base, models, synth = H.base, H.models, H.synth   # the shared session fixtures (training_helpers)


# ----------------------------------------------------------------------------- inputs

def test_loader_inputs_equal_the_inference_inputs(synth):
    """The tensors training sees are Scaler.apply(layout.convert(jets)) of the same jets in the file."""
    data = SplitData(synth["run"], "test", "deepjet", in_memory=False)
    ev = H.read_events(synth["mc"], DEEPJET.columns)
    recs, _, counts = kept_jets(ev.Jet, None)
    ids = np.asarray(data.ids)[data.rows]
    flat = (np.cumsum(counts) - counts)[ids[:, 5]] + ids[:, 4]      # event entry, jet index
    conv = DEEPJET.convert(recs.take(flat))
    expected = Scaler.from_dict(data.scaler).apply(conv)
    got, masks = data.arrays(np.arange(len(data)))
    assert len(data) > 500
    for spec in DEEPJET.specs:
        np.testing.assert_allclose(got[spec.name], expected[spec.name], rtol=1e-5, atol=2e-5, err_msg=spec.name)
        # distortable = valid and not an integer feature
        np.testing.assert_array_equal(masks[spec.name], conv.valid[spec.name] & ~spec.integer_mask())
    assert (~conv.valid["cpf"]).any() and conv.valid["cpf"].any()


def test_memory_mapped_and_in_memory_batches_agree(synth):
    a = Loader(SplitData(synth["run"], "validation", "deepjet", in_memory=True), 64, seed=5)
    b = Loader(SplitData(synth["run"], "validation", "deepjet", in_memory=False), 64, seed=5)
    for ba, bb in zip(a, b):
        for x, y in zip(ba.inputs, bb.inputs):
            torch.testing.assert_close(x, y)
        assert torch.equal(ba.label, bb.label) and torch.equal(ba.weight, bb.weight)
    assert sum(len(x) for x in a) == len(a.data)


def test_shuffle_depends_on_seed_and_epoch_only(synth):
    data = SplitData(synth["run"], "train", "deepjet", limit=500, seed=1)
    assert len(data) == 500
    l1, l2 = Loader(data, 100, seed=2), Loader(data, 100, seed=2)
    l1.set_epoch(3)
    l2.set_epoch(3)
    assert np.array_equal(l1.order(), l2.order())
    l2.set_epoch(4)
    assert not np.array_equal(l1.order(), l2.order())
    assert np.array_equal(np.sort(l1.order()), np.arange(500))


def test_resampling_follows_the_weights(synth):
    data = SplitData(synth["run"], "train", "deepjet")
    loader = Loader(data, 512, seed=0, resample=True)
    drawn = np.concatenate([loader.order() for loader.epoch in range(5)])
    cls = data.label[drawn]
    # class reweighting equalises the classes: the drawn b fraction is ~1/6, far above the raw one
    raw_b = np.mean(data.label == 0)
    assert raw_b < 0.05
    assert abs(np.mean(cls == 0) - 1 / 6) < 0.03
    assert all(float(b.weight.sum()) == len(b) for b in loader)


# ----------------------------------------------------------------------------- losses, config

def test_losses_weighted_mean_and_focal_limit():
    from jetdask.training.losses import FocalLoss, WeightedCrossEntropy
    torch.manual_seed(0)
    logits, y = torch.randn(50, 6), torch.randint(0, 6, (50,))
    w = torch.rand(50)
    ce = WeightedCrossEntropy()(logits, y, w)
    per = torch.nn.functional.cross_entropy(logits, y, reduction="none")
    torch.testing.assert_close(ce, (per * w).sum() / w.sum())
    torch.testing.assert_close(FocalLoss(0.0)(logits, y, w), ce)
    assert FocalLoss(2.0)(logits, y, w) < ce
    assert float(WeightedCrossEntropy()(logits, y, torch.zeros(50))) == 0.0


def test_default_yaml_equals_builtin_defaults():
    assert load_config(DEFAULT_YAML) == load_config(None)


@pytest.mark.parametrize("given,key", [
    ({"training": {"lrr": 0.1}}, "training.lrr"),
    ({"adversarial": {"method": "fgsn"}}, "adversarial.method"),
    ({"training": {"batch_size": 0}}, "training.batch_size"),
    ({"model": {"name": "NoSuchNet"}}, "model.name"),
    ({"loss": {"name": "mse"}}, "loss.name"),
    ({"data": {"in_memory": "yes"}}, "data.in_memory"),
])
def test_bad_config_names_the_key(given, key):
    with pytest.raises(ConfigError) as err:
        load_config(given)
    assert err.value.key == key and key in str(err.value)


# ----------------------------------------------------------------------------- learning

def test_nominal_model_learns_b_tagging(models, synth):
    from jetdask.evaluation.metrics import discriminant_rocs
    from jetdask.evaluation.predict import load, predict, split_data
    hist = read_json(models["nominal"]["history"])
    assert len(hist) == 6 and hist[-1]["train_loss"] < hist[0]["train_loss"]
    model, ck = load(models["nominal"]["best"])
    data = split_data(ck, synth["run"], "test")
    r = discriminant_rocs(predict(model, data), data.label, data.classes, data.weight)
    # measured ~0.97 (random: 0.5; a shuffled-label or misordered-input pipeline stays < 0.8)
    assert r["BvsL"]["auc"] > 0.9, r["BvsL"]["auc"]
    assert r["BvsL"]["n_signal"] >= 40
    assert r["CvsL"]["auc"] > 0.65


def test_adversarial_model_is_more_robust_to_fgsm(models, synth):
    from jetdask.evaluation.metrics import discriminant_rocs
    from jetdask.evaluation.predict import load, predict, split_data
    from jetdask.training.adversarial import Attack
    drop = {}
    for kind in ("nominal", "adversarial"):
        model, ck = load(models[kind]["best"])
        data = split_data(ck, synth["run"], "test")
        aucs = [discriminant_rocs(predict(model, data, attack=Attack("fgsm", e)), data.label, data.classes,
                                  data.weight)["BvsL"]["auc"] for e in (0.0, H.EPSILON)]
        drop[kind] = aucs[0] - aucs[1]
    # measured: nominal ~0.03, adversarial ~0.01
    assert drop["nominal"] > 0.01
    assert drop["adversarial"] < drop["nominal"] - 0.005, drop


def test_attacks_leave_integer_and_defaulted_inputs_alone(synth, models):
    from jetdask.evaluation.predict import load
    from jetdask.training.adversarial import Attack, perturb
    model, ck = load(models["nominal"]["best"])
    data = SplitData(synth["run"], "validation", "deepjet", ck["scaler"])
    batch = next(iter(Loader(data, 200, shuffle=False)))
    for attack in (Attack("fgsm", 0.3), Attack("pgd", 0.3, steps=3, random_start=True)):
        adv = perturb(model, attack, batch.inputs, batch.masks, batch.label)
        for x, a, m in zip(batch.inputs, adv, batch.masks):
            d = (a - x).abs()
            assert float(d[~m].max()) == 0.0                       # integer / defaulted untouched
            assert float(d.max()) <= 0.3 + 1e-5 and float(d[m].max()) > 0.1
    assert model.training is False


# ----------------------------------------------------------------------------- checkpoints

def test_resume_continues_the_same_loss_curve(synth, tmp_path):
    cfg = H.config(epochs=2, method="fgsm", training={"schedule": "step", "step_size": 1},
                   data={"max_jets": 1500, "max_val_jets": 300})
    straight = train(cfg, preprocessed=synth["run"], out=str(tmp_path / "a"))
    cfg1 = json.loads(json.dumps(cfg))
    train(cfg1, preprocessed=synth["run"], out=str(tmp_path / "b"), overrides={"training.epochs": 1})
    first = read_json(tmp_path / "b" / "history.json")
    assert len(first) == 1
    resumed = train(None, resume=str(tmp_path / "b" / "last.pt"), overrides={"training.epochs": 2})
    a = read_json(straight["history"])
    b = read_json(resumed["history"])
    assert [h["epoch"] for h in b] == [1, 2]
    for ha, hb in zip(a, b):
        for k in ("train_loss", "val_loss", "train_accuracy", "lr"):
            assert ha[k] == pytest.approx(hb[k], rel=1e-6, abs=1e-7), k
    assert a[1]["lr"] < a[0]["lr"]                                  # the schedule state was resumed
    sa = torch.load(tmp_path / "a" / "last.pt", weights_only=True)["state_dict"]
    sb = torch.load(tmp_path / "b" / "last.pt", weights_only=True)["state_dict"]
    for k in sa:
        torch.testing.assert_close(sa[k], sb[k], rtol=1e-5, atol=1e-6)


def test_checkpoint_metadata_and_best(models):
    from jetdask.inference.registry import load_checkpoint
    out = models["nominal"]["out_dir"]
    hist = read_json(models["nominal"]["history"])
    best = load_checkpoint(os.path.join(out, "best.pt"))
    assert best["layout"] == "deepjet" and best["classes"] == ["b", "bb", "lepb", "c", "uds", "g"]
    assert set(best["scaler"]["inputs"]) == {"glob", "cpf", "npf", "sv"}
    m = best["metadata"]
    assert m["val_loss"] == min(h["val_loss"] for h in hist)
    assert {"epoch", "train_loss", "val_loss", "train_accuracy", "val_accuracy", "config", "layout"} <= set(m)
    assert len(os.listdir(os.path.join(out, "checkpoints"))) == 2 * len(hist)


def test_missing_training_state_is_a_config_error(models, tmp_path):
    import shutil
    src = os.path.join(models["nominal"]["out_dir"], "last.pt")
    shutil.copy(src, tmp_path / "last.pt")
    with pytest.raises(ConfigError, match="training state") as err:
        train(None, resume=str(tmp_path / "last.pt"))
    assert err.value.key == "resume"


def _check_scores(events, name):
    s = events.Jet[name]
    for field in ("b", "bb", "lepb", "c", "uds", "g", "BvsL", "CvsL", "CvsB"):
        v = ak.to_numpy(ak.flatten(s[field]))
        assert len(v) and np.all(np.isfinite(v)) and np.all((v >= 0) & (v <= 1)), field
    total = sum(ak.to_numpy(ak.flatten(s[c])) for c in ("b", "bb", "lepb", "c", "uds", "g"))
    np.testing.assert_allclose(total, 1.0, atol=1e-4)


def test_checkpoint_runs_through_tagger_pass_on_synthetic_files(models, synth):
    taggers = [Tagger("nominal", models["nominal"]["best"]), Tagger("adversarial", models["adversarial"]["best"])]
    taggers.append(taggers[0].variant("fgsm0.1"))
    ev = H.read_events(synth["mc"], tagger_columns(taggers), entry_stop=600)
    out = tagger_pass(ev, taggers, None, is_data=False)
    for t in taggers:
        _check_scores(out, t.name)
    # the pass reproduces the training-side prediction on the same jets
    from jetdask.evaluation.predict import load, predict, split_data
    model, ck = load(models["nominal"]["best"])
    data = split_data(ck, synth["run"], "test")
    ids = np.asarray(data.ids)[data.rows]
    first = ids[:, 5] < 600
    assert first.sum() > 20
    mine = predict(model, data)[first]
    nom = out.Jet["nominal"]
    pass_b = np.array([ak.to_numpy(nom.b[e])[j] for e, j in zip(ids[first, 5], ids[first, 4])])
    np.testing.assert_allclose(pass_b, mine[:, 0], atol=1e-5)


def test_checkpoints_run_through_tagger_pass_on_real_pfnano(models, base):
    """The real PFNano file has the DeepCSV inputs but no DeepJet table: a DeepCSV trained on the same
    sample (through the deepcsv layout) runs on it; the DeepJet checkpoints ask for the missing branches by name."""
    from jetdask.errors import MissingColumnError
    path = real_file("pfnano.root")
    csv = H.layout_model(base, "deepcsv")
    taggers = [Tagger("csv", csv["best"]), Tagger("csv_fgsm", csv["best"]).variant("fgsm0.05")]
    ev = H.read_events(path, tagger_columns(taggers) + ["Jet_pt", "Jet_eta"])
    mask = (ev.Jet.pt > 20) & (abs(ev.Jet.eta) < 2.5)
    out = tagger_pass(ev, taggers, mask, is_data=False)
    for t in taggers:
        s = out.Jet[t.name]
        kept = ak.to_numpy(ak.flatten(s.BvsL[mask]))
        assert len(kept) > 0 and np.all(np.isfinite(kept)) and np.all((kept >= 0) & (kept <= 1))
        assert np.all(ak.to_numpy(ak.flatten(s.b[~mask])) == -1)
    with pytest.raises(MissingColumnError, match="Jet_DeepJet_"):
        H.read_events(path, tagger_columns([Tagger("nominal", models["nominal"]["best"])]))


# ----------------------------------------------------------------------------- CLI

def test_cli_train_and_exit_codes(synth, tmp_path, capsys):
    import yaml

    from jetdask.cli.train import main
    cfg = H.config(epochs=1, data={"max_jets": 800, "max_val_jets": 200})
    p = tmp_path / "train.yaml"
    p.write_text(yaml.safe_dump(cfg))
    rc = main(["train", str(p), "--preprocessed", synth["run"], "--out", str(tmp_path / "cli"), "--no-progress",
               "--epochs", "1"])
    assert rc == 0
    assert os.path.exists(tmp_path / "cli" / "best.pt")
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["epochs"] == 1
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"training": {"epoch": 3}}))
    rc = main(["train", str(bad), "--preprocessed", synth["run"], "--out", str(tmp_path / "x")])
    assert rc == 2 and "training.epoch" in capsys.readouterr().err


def test_parsers_attach_to_a_subparsers_object():
    import argparse

    from jetdask.cli.train import add_evaluate_parser, add_parser
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd")
    add_parser(sub)
    add_evaluate_parser(sub)
    a = ap.parse_args(["train", "c.yaml", "--preprocessed", "R", "--out", "O", "--resume", "O/last.pt"])
    assert (a.config, a.preprocessed, a.out, a.resume) == ("c.yaml", "R", "O", "O/last.pt")
    e = ap.parse_args(["evaluate", "n=a.pt", "--preprocessed", "R", "--out", "E"])
    assert e.models == ["n=a.pt"] and callable(e.func)


@pytest.mark.cluster
def test_training_as_one_task_on_a_resource_labelled_worker(synth, tmp_path):
    """``submit_train`` runs the training as one dask task on the worker holding the resource
    (a GPU label on a real site; here a LocalCluster worker process), with the same losses as in-process."""
    from distributed import Client, LocalCluster

    from jetdask.training.loop import submit_train
    cfg = H.config(epochs=1, data={"max_jets": 1500, "max_val_jets": 300})
    local = train(json.loads(json.dumps(cfg)), preprocessed=synth["run"], out=str(tmp_path / "local"))
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, resources={"GPU": 1},
                      dashboard_address=None) as cluster, Client(cluster) as client:
        fut = submit_train(client, cfg, resources={"GPU": 1}, preprocessed=synth["run"], out=str(tmp_path / "task"))
        remote = fut.result(timeout=300)
        assert client.run(lambda: __import__("os").getpid()) and fut.status == "finished"
    a = read_json(local["history"])
    b = read_json(remote["history"])
    assert len(a) == len(b) == 1
    for k in ("train_loss", "val_loss", "val_accuracy"):
        assert a[0][k] == pytest.approx(b[0][k], rel=1e-5), k
    assert (tmp_path / "task" / "best.pt").exists()
