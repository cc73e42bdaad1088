"""TensorFlow Probability's bijector contracts, over every bijector and flow family flowlab defines.

TFP checks its own bijectors with ``bijector_test_util`` (assert_bijective_and_finite,
assert_scalar_congruency, ...) and the property tests of ``bijector_properties_test.py``
(shapes, caching, event_ndims, gradients, dtypes). Those live in TFP's repository, not its
wheel: they are used where importable and written out here otherwise.

The cases come from the registries: every flow family of :data:`flowlab.flows.FAMILIES` (and a
variant with each of its boolean options switched on), every coupling transform of the digits
flows (:data:`flowlab.studies.digits.flows.COUPLINGS`), and each bijector layer class flowlab defines, with
the lab's ``MySinh``. A family joins by registering; a new bijector class must get a factory in
:data:`LAYERS` (:func:`test_every_flowlab_bijector_class_has_a_case` says so).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from flowlab import flows
from flowlab.studies.digits import flows as image_flows
from flowlab.flows import FlowConfig, make_flow

tfb, tfd = tfp.bijectors, tfp.distributions

try:  # in TFP's repository, not its wheel
    from tensorflow_probability.python.bijectors import bijector_test_util
except ImportError:
    bijector_test_util = None


def _lab_my_sinh() -> type:
    """The lab's own ``MySinh``, executed from the solution cell of notebooks/normalizing_flows.ipynb
    (the class only, not the cell's demo lines), so these contracts hold for what students are shown."""
    import nbformat

    notebook = nbformat.read(str(Path(__file__).resolve().parents[1] / "notebooks" / "normalizing_flows.ipynb"),
                             as_version=4)
    (source,) = [c.source for c in notebook.cells if c.cell_type == "code" and "class MySinh(" in c.source]
    namespace = {"tf": tf, "tfb": tfb, "np": np}
    exec(source[:source.index("\nmy_sinh = MySinh()")], namespace)  # noqa: S102 - our own notebook
    return namespace["MySinh"]


MySinh = _lab_my_sinh()


@dataclass(frozen=True)
class Case:
    """A bijector to check: ``make`` builds a fresh one (weights created), ``ndim`` numbers a point."""

    name: str
    make: Callable[[], tfb.Bijector]
    ndim: int


def _family_config(name: str, **options) -> FlowConfig:
    return FlowConfig(flow=name, num_layers=2, hidden_units=(8,), seed=1, options=options)


def _family_cases() -> list[Case]:
    """Each registered family with its defaults, and with each boolean option (default False) on."""
    cases = []
    for name, registered in flows.FAMILIES.items():
        if not registered.layered:  # the continuous flow: tests/test_continuous.py
            continue
        cases.append(Case(name, lambda name=name: make_flow(_family_config(name)).bijector, 2))
        for option, default in registered.options.items():
            if default is False:
                cases.append(Case(f"{name}+{option}", lambda name=name, option=option:
                                  make_flow(_family_config(name, **{option: True})).bijector, 2))
    return cases


def _image_cases() -> list[Case]:
    """A small digits flow for each coupling transform."""
    def make(transform: str) -> tfb.Bijector:
        config = image_flows.ImageFlowConfig(couplings=(1, 1, 1), hidden_channels=4, transform=transform)
        return image_flows.make_image_flow(config).bijector
    return [Case(f"image_{transform}", lambda t=transform: make(t), image_flows.DIMS)
            for transform in image_flows.COUPLINGS]


def _built(bijector: tfb.Bijector, ndim: int) -> tfb.Bijector:
    bijector.inverse(tf.zeros([1, ndim]))  # Keras creates the weights on the first call
    return bijector


#: A factory for each bijector class flowlab defines (and the lab's MySinh).
LAYERS: dict[str, Case] = {
    "ActNorm": Case("ActNorm", lambda: flows.ActNorm((2,)), 3),
    "SplineCoupling": Case("SplineCoupling", lambda: _built(
        flows.SplineCoupling(2, (8,), "relu", seed=1, bins=4, name="spline"), 2), 2),
    "ImageCoupling": Case("ImageCoupling", lambda: _built(image_flows.ImageCoupling(
        (2, 2, 1), image_flows.checkerboard((2, 2, 1), 0), 4, seed=1, layer=0), 5), 5),
    "ImageSplineCoupling": Case("ImageSplineCoupling", lambda: _built(image_flows.ImageSplineCoupling(
        (2, 2, 1), image_flows.checkerboard((2, 2, 1), 1), 4, seed=1, layer=0), 5), 5),
    "MySinh": Case("MySinh", MySinh, 2),
}

CASES = _family_cases() + _image_cases() + list(LAYERS.values())
IDS = [case.name for case in CASES]


def _randomize(bijector: tfb.Bijector, seed: int) -> tfb.Bijector:
    """Move every trainable weight off its initial value (couplings start as the identity), then
    apply its constraint as an optimizer would (a MADE's masks are kernel constraints)."""
    rng = np.random.default_rng(seed)
    for variable in bijector.trainable_variables:
        variable.assign(variable + rng.normal(0.0, 0.2, variable.shape).astype(np.float32))
        if getattr(variable, "constraint", None) is not None:
            variable.assign(variable.constraint(variable))
    return bijector


def _fresh(case: Case, seed: int = 0) -> tfb.Bijector:
    return _randomize(case.make(), seed)


def _points(case: Case, shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """Points in the forward (noise) domain: standard normal."""
    return np.random.default_rng(seed).normal(size=(*shape, case.ndim)).astype(np.float32)


def _copy(value) -> tf.Tensor:
    """A new tensor of the same values: no cache keyed on the tensor can answer for it."""
    return tf.constant(np.asarray(value))


def _data(bijector: tfb.Bijector, case: Case, shape: tuple[int, ...]) -> np.ndarray:
    return bijector.forward(_points(case, shape)).numpy()


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_bijective_and_finite(case):
    """assert_bijective_and_finite: forward, inverse and both log-dets finite; the round trips hold."""
    bijector = _fresh(case)
    x = _points(case, (16,))
    y = bijector.forward(_copy(x)).numpy()
    assert np.all(np.isfinite(y))
    np.testing.assert_allclose(bijector.inverse(_copy(y)).numpy(), x, atol=1e-3, rtol=1e-3)
    np.testing.assert_allclose(bijector.forward(_copy(bijector.inverse(_copy(y)).numpy())).numpy(), y,
                               atol=1e-3, rtol=1e-3)
    for log_det in (bijector.forward_log_det_jacobian(_copy(x), event_ndims=1),
                    bijector.inverse_log_det_jacobian(_copy(y), event_ndims=1)):
        assert np.all(np.isfinite(log_det.numpy()))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_log_dets_are_negatives_and_match_autodiff(case):
    """fldj(x) == -ildj(f(x)) (TFP's scalar congruency, for vectors), and fldj is log|det J| of the
    forward map computed by TensorFlow."""
    bijector = _fresh(case)
    x = _copy(_points(case, (4,)))
    fldj = bijector.forward_log_det_jacobian(x, event_ndims=1).numpy()
    ildj = bijector.inverse_log_det_jacobian(_copy(bijector.forward(x).numpy()), event_ndims=1).numpy()
    np.testing.assert_allclose(fldj, -ildj, rtol=1e-4, atol=1e-3)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = bijector.forward(x)
    _, expected = np.linalg.slogdet(tape.batch_jacobian(y, x).numpy().astype(np.float64))
    np.testing.assert_allclose(fldj, expected, rtol=1e-3, atol=2e-3)


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("batch", [(), (6,), (3, 5)], ids=["point", "batch", "batch_3x5"])
def test_batch_shapes(case, batch):
    """A point [d], a batch [n, d] and [3, 5, d]: outputs keep the batch axes, and a point's
    result does not depend on how the batch around it is shaped."""
    bijector = _fresh(case)
    flat = _points(case, (15,))
    x = flat[:int(np.prod(batch))].reshape(*batch, case.ndim)
    y = bijector.forward(_copy(x))
    assert y.shape == (*batch, case.ndim)
    assert bijector.inverse(_copy(y.numpy())).shape == (*batch, case.ndim)
    assert bijector.forward_log_det_jacobian(_copy(x), event_ndims=1).shape == batch
    ildj = bijector.inverse_log_det_jacobian(_copy(y.numpy()), event_ndims=1)
    assert ildj.shape == batch
    reference = bijector.inverse_log_det_jacobian(_copy(y.numpy().reshape(-1, case.ndim)), event_ndims=1)
    np.testing.assert_allclose(ildj.numpy().reshape(-1), reference.numpy(), rtol=1e-5, atol=1e-5)
    assert bijector.forward_event_shape([case.ndim]) == [case.ndim]
    assert bijector.inverse_event_shape([case.ndim]) == [case.ndim]


def _distribution(bijector: tfb.Bijector, ndim: int) -> tfd.Distribution:
    return tfd.TransformedDistribution(tfd.MultivariateNormalDiag(loc=tf.zeros(ndim)), bijector)


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("shape", [(), (4,), (3, 5)], ids=["one", "four", "3x5"])
def test_sample_and_log_prob_shapes(case, shape):
    distribution = _distribution(_fresh(case), case.ndim)
    samples = distribution.sample(shape, seed=1)
    assert samples.shape == (*shape, case.ndim)
    log_prob = distribution.log_prob(samples)
    assert log_prob.shape == shape and np.all(np.isfinite(log_prob.numpy()))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_dtype_mismatch_is_tfps_message(case):
    """A float64 tensor either works (float64 out) or is refused by TFP's dtype check, never with a
    raw error from deep inside a network."""
    bijector = _fresh(case)
    x = tf.constant(_points(case, (3,)), dtype=tf.float64)
    try:
        y = bijector.forward(x)
    except (TypeError, ValueError) as error:
        assert "float" in str(error)
        assert not isinstance(error, tf.errors.OpError)
    else:
        assert y.dtype == tf.float64


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_two_instances_do_not_share_a_cache(case):
    """Two bijectors built with the same arguments but different weights: inside one tf.function
    each gives its own log-density, as it does eagerly."""
    first, second = _fresh(case, seed=1), _fresh(case, seed=2)
    if not first.trainable_variables:
        pytest.skip(f"{case.name} has no weights")
    one, two = _distribution(first, case.ndim), _distribution(second, case.ndim)
    y = _copy(_data(first, case, (8,)))
    eager = one.log_prob(_copy(y.numpy())).numpy(), two.log_prob(_copy(y.numpy())).numpy()
    assert not np.allclose(*eager)
    both = tf.function(lambda y: (one.log_prob(y), two.log_prob(y)))(y)
    np.testing.assert_allclose(both[0].numpy(), eager[0], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(both[1].numpy(), eager[1], rtol=1e-4, atol=1e-4)


def _ildj_gradients(bijector: tfb.Bijector, y: tf.Tensor) -> tuple[np.ndarray, list]:
    with tf.GradientTape() as tape:
        ildj = bijector.inverse_log_det_jacobian(y, event_ndims=1)
    return ildj.numpy(), tape.gradient(ildj, bijector.trainable_variables)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_gradients_after_a_cached_call(case):
    """After inverse(y) outside a tape, ildj(y) inside one has the value and gradients a fresh tensor gets."""
    bijector = _fresh(case)
    if not bijector.trainable_variables:
        pytest.skip(f"{case.name} has no weights")
    y = _copy(_data(bijector, case, (6,)))
    bijector.inverse(y)
    value, gradients = _ildj_gradients(bijector, y)
    fresh_value, fresh_gradients = _ildj_gradients(bijector, _copy(y.numpy()))
    np.testing.assert_allclose(value, fresh_value, rtol=1e-5, atol=1e-5)
    assert [g is None for g in gradients] == [g is None for g in fresh_gradients]
    assert any(g is not None for g in gradients)


@pytest.mark.parametrize("case", [case for case in CASES if case.name in LAYERS], ids=list(LAYERS))
def test_no_stale_log_det_after_a_weight_update(case):
    """inverse(y), a weight update, then ildj(y): the new weights' value. (A chain's ildj reads the
    intermediate points from TFP's cache of inverse(y), so this is a contract of single layers.)"""
    bijector = _fresh(case)
    if not bijector.trainable_variables:
        pytest.skip(f"{case.name} has no weights")
    y = _copy(_data(bijector, case, (6,)))
    before = bijector.inverse_log_det_jacobian(_copy(y.numpy()), event_ndims=1).numpy()
    bijector.inverse(y)
    _randomize(bijector, seed=7)
    updated = bijector.inverse_log_det_jacobian(y, event_ndims=1).numpy()
    expected = bijector.inverse_log_det_jacobian(_copy(y.numpy()), event_ndims=1).numpy()
    assert not np.allclose(expected, before)
    np.testing.assert_allclose(updated, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_copy_keeps_the_weights(case):
    bijector = _fresh(case)
    x = _points(case, (5,))
    np.testing.assert_allclose(bijector.copy().forward(_copy(x)).numpy(), bijector.forward(_copy(x)).numpy(),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_tf_function_gives_the_eager_values(case):
    distribution = _distribution(_fresh(case), case.ndim)
    y = _data(distribution.bijector, case, (7,))
    traced = tf.function(distribution.log_prob)(_copy(y)).numpy()
    np.testing.assert_allclose(traced, distribution.log_prob(_copy(y)).numpy(), rtol=1e-4, atol=1e-4)
    assert tf.function(lambda: distribution.sample(3, seed=2))().shape == (3, case.ndim)


def test_every_flowlab_bijector_class_has_a_case():
    """A bijector class added to flowlab must be added to LAYERS (families need no edit)."""
    defined = {name for module in (flows, image_flows) for name, value in vars(module).items()
               if inspect.isclass(value) and issubclass(value, tfb.Bijector)
               and value.__module__.startswith("flowlab")}
    assert defined <= set(LAYERS), f"no contract case for {sorted(defined - set(LAYERS))}"


@pytest.mark.skipif(bijector_test_util is None, reason="TFP's bijector_test_util is not in the wheel")
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_tfp_assert_bijective_and_finite(case):
    bijector = _fresh(case)
    x = _points(case, (8,))
    bijector_test_util.assert_bijective_and_finite(bijector, x, _data(bijector, case, (8,)), eval_func=np.asarray,
                                                   event_ndims=1, rtol=1e-3, atol=1e-3)


def test_my_sinh_log_dets_stay_finite_where_tfps_sinh_does():
    """The lab's MySinh: ildj finite for |y| > 1.8e19, the fldj gradient finite near x = 89.5,
    both equal to tfb.Sinh's, and a cdf (it declares itself increasing)."""
    mine, tfps = MySinh(), tfb.Sinh()
    y = tf.constant([-3e38, -1e20, -2.0, 0.0, 0.5, 1e20, 3e38])
    np.testing.assert_allclose(mine.inverse_log_det_jacobian(y, event_ndims=0).numpy(),
                               tfps.inverse_log_det_jacobian(y, event_ndims=0).numpy(), rtol=1e-5)
    x = tf.constant([-89.5, -3.0, 0.0, 1.0, 89.5])
    with tf.GradientTape() as tape:
        tape.watch(x)
        fldj = mine.forward_log_det_jacobian(x, event_ndims=0)
    np.testing.assert_allclose(fldj.numpy(), tfps.forward_log_det_jacobian(x, event_ndims=0).numpy(), rtol=1e-5)
    np.testing.assert_allclose(tape.gradient(fldj, x).numpy(), np.tanh(x.numpy()), rtol=1e-5, atol=1e-6)
    cdf = tfd.TransformedDistribution(tfd.Normal(0.0, 1.0), mine).cdf([np.sinh(1.0)]).numpy()
    np.testing.assert_allclose(cdf, tfd.Normal(0.0, 1.0).cdf(1.0).numpy(), rtol=1e-5)


@pytest.fixture(scope="module")
def dequantizer() -> image_flows.VariationalDequantizer:
    model = image_flows.VariationalDequantizer((2, 2), couplings=2, hidden_channels=4, seed=1)
    model.sample(tf.zeros([1, 4]), tf.zeros([1, 4]))
    return _randomize(model, seed=3)


def _dequantize(model, eps: np.ndarray, pixels: np.ndarray):
    return model.sample(tf.constant(pixels), tf.constant(eps))


@pytest.mark.parametrize("n", [1, 5])
def test_dequantizer_noise_is_in_the_unit_cube_and_its_density_is_the_change_of_variables(dequantizer, n):
    """The dequantizer is a flow from logistic noise to (0, 1)^d given the pixels: log q(u | x) is
    the base log-density minus log|det du/deps|, with the Jacobian from TensorFlow."""
    rng = np.random.default_rng(n)
    pixels = rng.integers(0, 17, size=(n, 4)).astype(np.float32)
    eps = tf.constant(rng.logistic(size=(n, 4)).astype(np.float32))
    with tf.GradientTape() as tape:
        tape.watch(eps)
        u, log_q = dequantizer.sample(tf.constant(pixels), eps)
    assert u.shape == (n, 4) and log_q.shape == (n,)
    assert np.all((u.numpy() > 0) & (u.numpy() < 1)) and np.all(np.isfinite(log_q.numpy()))
    _, log_det = np.linalg.slogdet(tape.batch_jacobian(u, eps).numpy().astype(np.float64))
    base = tfd.Logistic(0.0, 1.0).log_prob(eps).numpy().sum(axis=1)
    np.testing.assert_allclose(log_q.numpy(), base - log_det, rtol=1e-3, atol=1e-3)


def test_dequantizer_has_gradients_and_traces(dequantizer):
    rng = np.random.default_rng(0)
    pixels, eps = rng.integers(0, 17, size=(3, 4)).astype(np.float32), rng.logistic(size=(3, 4)).astype(np.float32)
    with tf.GradientTape() as tape:
        _, log_q = _dequantize(dequantizer, eps, pixels)
    assert all(g is not None for g in tape.gradient(log_q, dequantizer.trainable_variables))
    traced = tf.function(dequantizer.sample)(tf.constant(pixels), tf.constant(eps))
    np.testing.assert_allclose(traced[1].numpy(), log_q.numpy(), rtol=1e-5, atol=1e-5)
