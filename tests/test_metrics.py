"""cdist_tap, tap_distance and tap_alignment: the numpy-level API."""

import copy

import numpy as np
import pytest
import torch
from tslearn.utils import to_time_series_dataset

from sktap import TAPNet
from sktap.metrics import cdist_tap, tap_alignment, tap_distance

from .conftest import random_sequences


def test_y_none_and_nan_padded_input(rng):
    X = random_sequences(rng, 5, 2, 1, 20)
    net = TAPNet()
    D = cdist_tap(X, net=net)
    assert D.shape == (5, 5) and D.dtype == np.float32
    np.testing.assert_allclose(cdist_tap(X, X, net=net), D, rtol=1e-6)
    np.testing.assert_allclose(
        cdist_tap(to_time_series_dataset(X), net=net), D, rtol=1e-6
    )


@pytest.mark.slow  # n_jobs=2 starts worker processes
def test_tiles_do_not_change_result(rng):
    X = random_sequences(rng, 11, 2, 1, 40)
    Y = random_sequences(rng, 6, 2, 1, 40)
    net = TAPNet()
    big = cdist_tap(X, Y, net=net)
    small = cdist_tap(X, Y, net=net, working_memory=0.5)
    np.testing.assert_allclose(small, big, rtol=1e-5)
    np.testing.assert_allclose(cdist_tap(X, Y, net=net, n_jobs=2), big, rtol=1e-5)


def test_float64_and_bfloat16(rng):
    X = random_sequences(rng, 8, 3, 20, 40)
    net = TAPNet()
    ref = cdist_tap(X, net=net)
    d64 = cdist_tap(X, net=net, dtype="float64")
    assert d64.dtype == np.float64
    np.testing.assert_allclose(d64, ref, rtol=1e-4)
    bf = cdist_tap(X, net=net, dtype=torch.bfloat16)
    assert bf.dtype == np.float32 and np.isfinite(bf).all()
    np.testing.assert_allclose(bf, ref, rtol=0.05)


def test_user_net_is_not_modified(rng):
    net = TAPNet()
    net.train()
    before = copy.deepcopy(net.state_dict())
    X = random_sequences(rng, 3, 2, 2, 10)
    cdist_tap(X, net=net, dtype="float64")
    assert net.training
    for k, v in net.state_dict().items():
        assert v.dtype == torch.float32
        torch.testing.assert_close(v, before[k])


def test_input_arrays_not_modified(rng):
    X = to_time_series_dataset(random_sequences(rng, 3, 2, 2, 10))
    before = X.copy()
    cdist_tap(X)
    np.testing.assert_array_equal(X, before)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"working_memory": 0}, ValueError, "working_memory must be a positive number"),
        (
            {"working_memory": -3},
            ValueError,
            "working_memory must be a positive number",
        ),
        ({"device": "tpu"}, ValueError, "device='tpu' is not a valid torch device"),
        ({"device": 3.5}, TypeError, "device must be 'auto'"),
        ({"dtype": "int8"}, ValueError, "dtype='int8' is not supported"),
        ({"net": "tapnet"}, TypeError, "net must be None"),
        ({"n_jobs": 0}, ValueError, "n_jobs must be None or a non-zero integer"),
    ],
)
def test_bad_parameters(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        cdist_tap([np.ones(3)], **kwargs)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only message")
def test_cuda_missing_message():
    with pytest.raises(ValueError, match="CUDA is not available"):
        cdist_tap([np.ones(3)], device="cuda")


def test_mismatched_features():
    with pytest.raises(ValueError, match="Y has 3 features per time step, but 2"):
        cdist_tap([np.ones((3, 2))], [np.ones((3, 3))])
    with pytest.raises(ValueError, match="y has 3 features per time step, but 2"):
        tap_distance(np.ones((3, 2)), np.ones((3, 3)))


def test_pair_functions_validate():
    with pytest.raises(ValueError, match="x: sequence 0 contains only NaN"):
        tap_alignment([np.nan, np.nan], [1.0])
    with pytest.raises(ValueError, match="y: sequence 0 contains infinite"):
        tap_distance([1.0], [np.inf])


@pytest.mark.slow
def test_dask_backend_gives_same_matrix(rng):
    distributed = pytest.importorskip("distributed")
    import joblib

    X = random_sequences(rng, 12, 2, 5, 30)
    net = TAPNet()
    local = cdist_tap(X, net=net, working_memory=0.5)
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        with distributed.get_task_stream(client) as stream:
            with joblib.parallel_config(backend="dask"):
                remote = cdist_tap(X, net=net, working_memory=0.5)
        # the tiles ran as tasks on both worker processes
        workers = {task["worker"] for task in stream.data}
    assert len(workers) == 2
    np.testing.assert_allclose(remote, local, rtol=1e-6)
