"""Preprocessing building blocks on plain arrays: config, labels, split hash, moments, defaults, weights."""
from __future__ import annotations

import awkward as ak
import numpy as np
import pytest

from jetdask.errors import ConfigError
from jetdask.preprocessing import clean, defaults, label, reweight, scale, split
from jetdask.preprocessing.config import canonical, default_yaml_config, load_config

# ------------------------------------------------------------------------------------ config

def test_default_yaml_is_the_builtin_default():
    assert canonical(default_yaml_config()) == canonical(load_config(None))
    cfg = load_config(None)
    assert list(cfg["labels"]["classes"]) == ["b", "bb", "lepb", "c", "uds", "g"]


def test_defaults_come_from_the_yaml_only(tmp_path):
    """The schema holds types; the defaults are default.yaml's: a copy with one default changed gives
    that default, and a copy missing a key, or holding an extra one, is refused naming the key."""
    import yaml

    from jetdask.config import merge_schema, schema_with_defaults
    from jetdask.preprocessing.config import DEFAULT_YAML, TYPES
    raw = yaml.safe_load(open(DEFAULT_YAML))
    raw["cleaning"]["leptons"]["muons"]["pt_min"] = 7.5
    (tmp_path / "changed.yaml").write_text(yaml.safe_dump(raw))
    cfg = merge_schema(schema_with_defaults(TYPES, str(tmp_path / "changed.yaml")), {})
    assert cfg["cleaning"]["leptons"]["muons"]["pt_min"] == 7.5
    electrons = load_config(None)["cleaning"]["leptons"]["electrons"]
    assert cfg["cleaning"]["leptons"]["electrons"]["pt_min"] == electrons["pt_min"]
    del raw["cleaning"]["leptons"]["muons"]["iso_max"]
    (tmp_path / "missing.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError) as e:
        schema_with_defaults(TYPES, str(tmp_path / "missing.yaml"))
    assert e.value.key == "cleaning.leptons.muons.iso_max"
    raw["cleaning"]["leptons"]["muons"]["iso_max"] = None
    raw["splits"]["holdout"] = 0.1
    (tmp_path / "extra.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError) as e:
        schema_with_defaults(TYPES, str(tmp_path / "extra.yaml"))
    assert e.value.key == "splits.holdout"


@pytest.mark.parametrize("given, key", [
    ({"reweighting": {"targt": "flat"}}, "reweighting.targt"),
    ({"reweighting": {"target": "bogus"}}, "reweighting.target"),
    ({"reweighting": {"correct": "everything"}}, "reweighting.correct"),
    ({"reweighting": {"pt_bins": {"n": 0, "lo": 1, "hi": 2}}}, "reweighting.pt_bins.n"),
    ({"reweighting": {"pt_bins": [30, 20, 50]}}, "reweighting.pt_bins"),
    ({"reweighting": {"eta_bins": {"n": 4, "lo": -2.5, "hi": 2.5}}}, "reweighting.eta_bins"),
    ({"splits": {"train": 0.5}}, "splits"),
    ({"splits": {"train": 1.5, "validation": -0.25, "test": -0.25}}, "splits.train"),
    ({"cleaning": {"pt_min": "twenty"}}, "cleaning.pt_min"),
    ({"cleaning": {"leptons": {"muons": {"iso_max": None}}}}, "cleaning.leptons.muons.iso_max"),
    ({"labels": {"scheme": "nope"}}, "labels.scheme"),
    ({"labels": {"classes": {"b": [500], "bb": [500]}}}, "labels.classes.bb[0]"),
    ({"defaults": {"placeholder": "low"}}, "defaults.placeholder"),
    ({"defaults": {"variables": {"Jet_pt": {"valid_minimum": 0}}}}, "defaults.variables['Jet_pt'].valid_minimum"),
    ({"features": []}, "features"),
    ({"feature": ["Jet_pt"]}, "feature"),
])
def test_config_errors_name_the_key(given, key):
    with pytest.raises(ConfigError) as e:
        load_config(given)
    assert e.value.key == key, str(e.value)


def test_config_custom_classes_and_schemes():
    cfg = load_config({"labels": {"classes": {"b": [500, 510, 511, 520, 521], "c": [400, 410, 411],
                                              "l": [0, 1, 2], "tau": [600]}}, "reweighting": {"target": "tau"}})
    assert cfg["labels"]["scheme"] == "custom" and cfg["reweighting"]["target"] == "tau"
    cfg = load_config({"labels": {"scheme": "deepcsv"}, "reweighting": {"pt_bins": [20, 30, 50, 100, 1000]}})
    assert list(cfg["labels"]["classes"]) == ["b", "bb", "c", "udsg"]
    assert cfg["reweighting"]["pt_bins"] == [20.0, 30.0, 50.0, 100.0, 1000.0]


# ------------------------------------------------------------------------------------ labels

def test_hadron_path_codes():
    #            hadron parton nB nC  -> code
    cases = [(5, 5, 1, 0, 500), (5, -5, 1, 1, 500), (5, 5, 2, 0, 510), (5, 21, 2, 0, 511), (5, 21, 1, 0, 500),
             (4, 4, 0, 1, 400), (4, -4, 0, 2, 410), (4, 21, 0, 2, 411), (4, 21, 0, 1, 400),
             (0, 1, 0, 0, 1), (0, -2, 0, 0, 1), (0, 3, 0, 0, 2), (0, 21, 0, 0, 0), (0, 0, 0, 0, 1000),
             (0, 4, 0, 0, 1000), (0, 5, 0, 0, 1000), (0, -15, 0, 0, 1000)]
    h, p, nb, nc, want = (np.array(c) for c in zip(*cases))
    np.testing.assert_array_equal(label.codes_from_hadron(h, p, nb, nc), want)
    # without nCHadrons every charm jet is a single c
    assert set(label.codes_from_hadron(h, p, nb)[h == 4]) == {400}


def test_schemes_are_partitions_and_drop_tau_undefined():
    for name, classes in label.SCHEMES.items():
        codes = [c for cs in classes.values() for c in cs]
        assert len(codes) == len(set(codes)), name
        idx = label.class_index(np.array([600, 1000]), classes)
        assert (idx == -1).all(), name
    idx = label.class_index(np.array([500, 510, 511, 520, 521, 400, 410, 411, 1, 2, 0, 600, 1000]),
                            label.SCHEMES["deepjet"])
    np.testing.assert_array_equal(idx, [0, 1, 1, 2, 2, 3, 3, 3, 4, 4, 5, -1, -1])


def test_flavour_codes_prefers_flavsplit():
    jets = ak.Array({"FlavSplit": [[520, 0], [411]], "hadronFlavour": [[5, 0], [4]], "partonFlavour": [[5, 21], [21]],
                     "nBHadrons": [[1, 0], [0]], "nCHadrons": [[0, 0], [2]]})
    codes, path = label.flavour_codes(jets)
    assert path == "flavsplit" and codes.tolist() == [520, 0, 411]
    codes, path = label.flavour_codes(jets, "hadron")
    assert path == "hadron" and codes.tolist() == [500, 0, 411]
    with pytest.raises(ValueError, match="data"):
        label.flavour_codes(ak.Array({"pt": [[1.0]]}))


# ------------------------------------------------------------------------------------ split

def _splitmix64_py(x: int) -> int:
    mask = (1 << 64) - 1
    z = (x + 0x9E3779B97F4A7C15) & mask
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
    return z ^ (z >> 31)


def test_split_hash_matches_scalar_reference_and_is_uniform():
    rng = np.random.default_rng(3)
    run = rng.integers(1, 400000, 2000)
    lumi = rng.integers(1, 3000, 2000)
    event = rng.integers(1, 2**40, 2000, dtype=np.int64)
    h = split.event_hash(run, lumi, event, seed=7)
    for i in range(0, 2000, 97):
        x = _splitmix64_py(7)
        for v in (run[i], lumi[i], event[i]):
            x = _splitmix64_py(x ^ int(v))
        assert int(h[i]) == x
    u = split.uniform(np.ones(200000, np.int64), np.ones(200000, np.int64), np.arange(200000), seed=0)
    assert 0 <= u.min() and u.max() < 1
    counts = np.histogram(u, bins=10, range=(0, 1))[0]
    assert np.all(np.abs(counts - 20000) < 5 * np.sqrt(20000))
    s = split.assign(u, {"train": 0.8, "validation": 0.1, "test": 0.1})
    frac = np.bincount(s, minlength=3) / len(s)
    np.testing.assert_allclose(frac, [0.8, 0.1, 0.1], atol=0.005)
    # the same event, computed alone or in any batch, gets the same split; another seed another split
    cfg = {"train": 0.8, "validation": 0.1, "test": 0.1, "seed": 0}
    full = split.event_splits(run, lumi, event, cfg)
    parts = np.concatenate([split.event_splits(run[a:a + 300], lumi[a:a + 300], event[a:a + 300], cfg)
                            for a in range(0, 2000, 300)])
    np.testing.assert_array_equal(full, parts)
    assert (split.event_splits(run, lumi, event, dict(cfg, seed=1)) != full).any()


# ------------------------------------------------------------------------------------ moments

def test_chan_merge_equals_numpy_to_1e9():
    rng = np.random.default_rng(1)
    x = (1e6 + rng.normal(0, 1, 100_000)).astype(np.float32)    # large offset: naive sum of squares would fail
    edges = np.sort(rng.choice(len(x), 40, replace=False))
    pieces = np.split(x, edges)
    tables = []
    for p in pieces:
        ok = np.ones(len(p), bool)
        tables.append(scale.chunk_moments(["x"], [p], [ok]))
    tables.append(scale.chunk_moments(["x"], [x[:0]], [np.ones(0, bool)]))
    t = scale.merge_tables(tables)
    ref = x.astype(np.float64)
    assert t["n"][0] == len(x)
    np.testing.assert_allclose(t["mean"][0], ref.mean(), rtol=1e-12)
    np.testing.assert_allclose(np.sqrt(t["m2"][0] / t["n"][0]), ref.std(), rtol=1e-9)
    assert t["min"][0] == ref.min() and t["max"][0] == ref.max()


def test_build_scaler_format():
    t = scale.chunk_moments(["a", "b", "c"], [np.array([1.0, 3.0], np.float32), np.array([2.0, 2.0], np.float32),
                                              np.array([5.0], np.float32)],
                            [np.array([True, True]), np.array([True, True]), np.array([False])])
    sc = scale.build_scaler(t, {"a": -1.0, "b": 0.0, "c": -5.0}, exclude=["c"])
    assert sc["a"] == {"mean": 2.0, "std": 1.0, "default": -3.0, "placeholder": -1.0, "n": 2, "n_defaulted": 0}
    assert sc["b"]["std"] == 1.0 and sc["b"]["mean"] == 2.0            # constant: std 0 -> 1
    assert sc["c"]["mean"] == 0.0 and sc["c"]["std"] == 1.0 and sc["c"]["n_defaulted"] == 1
    mean, std, default = scale.scaler_arrays(sc, ["a", "b"])
    y = scale.apply(np.array([[3.0, 4.0], [-1.0, 2.0]]), np.array([[False, False], [True, False]]), mean, std, default)
    np.testing.assert_allclose(y, [[1.0, 2.0], [-3.0, 0.0]])


# ------------------------------------------------------------------------------------ defaults

def test_defaulted_mask_rules_and_placeholders():
    cfg = load_config(None)["defaults"]
    feats = ["Jet_pt", "Jet_DeepCSV_trackSip2dValAboveCharm", "Jet_DeepJet_Cpfcan_puppiw_3",
             "Jet_DeepJet_sv_mass_1", "Jet_DeepJet_nCpfcand"]
    rules = {r.var: r for r in defaults.compile_rules(feats, cfg)}
    assert rules["Jet_DeepJet_Cpfcan_puppiw_3"].slot == ("Jet_DeepJet_nCpfcand", 3)
    assert rules["Jet_DeepJet_sv_mass_1"].slot == ("Jet_DeepJet_nsv", 1)
    assert rules["Jet_DeepJet_nCpfcand"].slot is None
    assert defaults.count_columns(list(rules.values())) == ["Jet_DeepJet_nCpfcand", "Jet_DeepJet_nsv"]
    counts = {"Jet_DeepJet_nCpfcand": np.array([5, 3, 10, 0, 4, 6]), "Jet_DeepJet_nsv": np.array([2, 1, 0, 3, 2, 2])}
    x = np.array([0.5, np.nan, np.inf, -999.0, 1.5, -1.0], np.float32)
    m = defaults.defaulted_mask(x, rules["Jet_DeepJet_Cpfcan_puppiw_3"], counts)
    #   ok, nan, inf, sentinel, >valid_max, <valid_min; slot 3 empty where nCpfcand <= 3 (rows 1, 3)
    np.testing.assert_array_equal(m, [False, True, True, True, True, True])
    m = defaults.defaulted_mask(np.array([0.2, 0.0, -1.0, -0.5], np.float32),
                                rules["Jet_DeepCSV_trackSip2dValAboveCharm"])
    np.testing.assert_array_equal(m, [False, False, True, False])
    m = defaults.defaulted_mask(np.zeros(6, np.float32), rules["Jet_DeepJet_sv_mass_1"], counts)
    np.testing.assert_array_equal(m, [False, True, True, False, False, False])
    ph = defaults.resolve_placeholder(rules["Jet_pt"], 20.0, 15.0, 100, cfg)
    assert ph == 5.0
    assert defaults.resolve_placeholder(rules["Jet_pt"], np.inf, 1.0, 0, cfg) == -1.0
    fixed = defaults.compile_rules(["v"], dict(cfg, placeholder=-7.5))[0]
    assert defaults.resolve_placeholder(fixed, 0.0, 1.0, 10, cfg) == -7.5
    np.testing.assert_array_equal(defaults.apply(x, m, -3.0), np.where(m, -3.0, x).astype(np.float32))


def test_pack_unpack_mask_roundtrip():
    rng = np.random.default_rng(0)
    masks = [rng.random(37) < 0.3 for _ in range(13)]
    bits = defaults.pack_mask(masks, 37)
    assert bits.shape == (37, 2) and bits.dtype == np.uint8
    np.testing.assert_array_equal(defaults.unpack_mask(bits, 13), np.stack(masks, axis=1))
    assert defaults.unpack_mask(bits[:0], 13).shape == (0, 13)


# ------------------------------------------------------------------------------------ cleaning

def test_min_delta_r_and_tight_leptons():
    je, jp = ak.Array([[0.1, 1.0, 2.0], [], [0.5]]), ak.Array([[0.0, 1.0, 3.0], [], [0.2]])
    le, lp = ak.Array([[0.1], [1.0], []]), ak.Array([[-0.05 + 2 * np.pi], [0.0], []])
    dr = clean.min_delta_r(je, jp, le, lp)
    np.testing.assert_allclose(dr[:3], [0.05, np.hypot(0.9, 1.05), np.hypot(1.9, 3.05)], rtol=1e-9)
    assert np.isinf(dr[3])
    mu = ak.zip({"pt": [[30.0, 30.0, 5.0]], "eta": [[0.0, 0.0, 0.0]], "tightId": [[True, False, True]],
                 "pfRelIso04_all": [[0.1, 0.1, 0.1]]})
    lcfg = load_config(None)["cleaning"]["leptons"]["muons"]
    assert ak.num(clean.tight_leptons(mu, lcfg)).tolist() == [1]


# ------------------------------------------------------------------------------------ reweighting

def _toy(rng, n, slope, eta_w):
    pt = 20 * (1 - rng.random(n)) ** (-1 / slope)
    eta = np.abs(rng.normal(0, eta_w, n))
    return pt, eta


def _toy_classes(rng, scale_n=1):
    # three classes with different pT slopes, eta widths and abundances
    specs = [(1.5, 0.8, 4000), (2.5, 1.2, 20000), (3.5, 1.6, 60000)]
    return [_toy(rng, n * scale_n, s, w) for s, w, n in specs]


def test_group_cells_populated():
    rng = np.random.default_rng(5)
    counts = rng.poisson(rng.exponential(3, (30, 10)))
    g = reweight.group_cells(counts, 25)
    sums = np.bincount(g.ravel(), weights=counts.ravel())
    assert (sums >= 25).all()
    # groups are rectangles of contiguous pT bins inside contiguous eta rows
    assert g.max() + 1 == len(sums)
    assert reweight.group_cells(np.ones((3, 2)), 100).max() == 0


@pytest.mark.parametrize("target, correct", [("average", "both"), ("flat", "kinematics"), ("c1", "both")])
def test_toy_reweighting_closure(target, correct):
    rng = np.random.default_rng(11)
    pt_e = reweight.edges_from_spec({"n": 20, "lo": 20.0, "hi": 500.0, "log": True})
    eta_e = reweight.edges_from_spec({"n": 8, "lo": 0.0, "hi": 2.5})
    train, test = _toy_classes(rng), _toy_classes(rng, 1)
    counts = np.stack([np.histogram2d(reweight.clip_into(pt, pt_e), reweight.clip_into(eta, eta_e), [pt_e, eta_e])[0]
                       for pt, eta in train])
    wm = reweight.compute_weights(counts, ["c0", "c1", "c2"], pt_e, eta_e, target=target, correct=correct, min_count=30)
    n = counts.sum(axis=(1, 2))
    for c, (pt, eta) in enumerate(train):
        w = wm.lookup(np.full(len(pt), c), pt, eta)
        want = n[c] if correct == "kinematics" else n.sum() / 3
        assert np.isclose(w.sum(), want, rtol=1e-9)
        chi2, ndf = reweight.closure_chi2(wm, c, pt, eta, w)
        assert chi2 < 1e-12 * max(ndf, 1) + 1e-9                # exact on the source sample
    for c, (pt, eta) in enumerate(test):
        w = wm.lookup(np.full(len(pt), c), pt, eta)
        chi2, ndf = reweight.closure_chi2(wm, c, pt, eta, w)
        assert ndf > 5
        assert chi2 < ndf + 5 * np.sqrt(2 * ndf), (c, chi2, ndf)
        raw, ndf0 = reweight.closure_chi2(wm, c, pt, eta, np.ones(len(pt)))
        if not (target == "c1" and c == 1):                      # the reference flavour needs no weight
            assert raw > ndf0 + 10 * np.sqrt(2 * ndf0), (c, raw, ndf0)


def test_classes_only_weights_and_json_roundtrip(tmp_path):
    counts = np.zeros((2, 2, 1))
    counts[0] = [[30], [10]]
    counts[1] = [[100], [300]]
    wm = reweight.compute_weights(counts, ["a", "b"], [0, 1, 2], [0, 1], correct="classes")
    np.testing.assert_allclose(wm.weights[0], 440 / (2 * 40))
    np.testing.assert_allclose(wm.weights[1], 440 / (2 * 400))
    wm.save(str(tmp_path / "w.json"))
    back = reweight.WeightMap.load(str(tmp_path / "w.json"))
    np.testing.assert_array_equal(back.weights, wm.weights)
    np.testing.assert_array_equal(back.lookup([0, 1, 1], [0.5, 1.5, 99.0], [0.5, -0.5, 3.0]),
                                  wm.weights[[0, 1, 1], [0, 1, 1], [0, 0, 0]])
