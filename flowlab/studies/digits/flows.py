"""Flows for 8x8 digit images (:mod:`flowlab.studies.digits.data`): affine coupling layers with
checkerboard and channel masks, ActNorm, squeeze and split, the multi-scale
architecture of RealNVP and Glow, and variational dequantization.

Every flow here is a ``tfd.TransformedDistribution`` of a standard normal on 64 numbers
through a ``tfb.Chain``, like the moons' flows, with images flattened row by row and
pixels in grey-level units (a density on ``[0, 17)^64``). The chain's bijectors act on the
first ``h * w * c`` of the 64 numbers, read as an ``h x w x c`` block in raster order
(row, column, channel); the numbers after the block pass through unchanged. That one
convention expresses both multi-scale operations as plain bijectors:

- **squeeze** (``h x w x c`` to ``h/2 x w/2 x 4c``) is a ``tfb.Permute`` of the block;
- **split** moves half the channels behind the block (another ``tfb.Permute``) and the
  later, smaller block leaves them alone: they are *factored out*, standard normal in the
  base distribution, as in RealNVP (Dinh et al., 2017).

The chain runs in the density direction (data to noise) as each bijector's inverse, and
in the sampling direction as its forward.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from flowlab import _validate
from flowlab.flows import spline
from flowlab.studies.digits.data import DIMS, LEVELS, SIDE
from flowlab.flows import ActNorm, OnePassDensity, OnePassInverse, layer_seed, initialize_actnorms, soft_clamp

tfd, tfb = tfp.distributions, tfp.bijectors

__all__ = ["ImageFlowConfig", "ImageFlow", "make_image_flow", "ImageCoupling", "ActNorm", "squeeze_permutation",
           "split_permutation", "checkerboard", "channel_mask", "logit_bijector", "initialize_actnorms",
           "flow_steps", "VariationalDequantizer"]


def checkerboard(shape: tuple[int, int, int], parity: int) -> np.ndarray:
    """A float mask of ``shape`` (h, w, c): 1 where ``(row + column) % 2 == parity`` (these
    entries condition), 0 elsewhere (these are transformed).

    Example:
        >>> checkerboard((2, 2, 1), 0)[..., 0].tolist()
        [[1.0, 0.0], [0.0, 1.0]]
    """
    h, w, c = shape
    rows, columns = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    return np.repeat((((rows + columns) % 2) == parity)[..., None], c, axis=-1).astype(np.float32)


def channel_mask(shape: tuple[int, int, int], parity: int) -> np.ndarray:
    """A float mask of ``shape`` (h, w, c): 1 on the first half of the channels for
    ``parity == 0`` (the second half for 1), which condition the other half.

    Example:
        >>> channel_mask((1, 1, 4), 1)[0, 0].tolist()
        [0.0, 0.0, 1.0, 1.0]
    """
    h, w, c = shape
    first = np.arange(c) < c // 2
    return np.broadcast_to(first if parity == 0 else ~first, (h, w, c)).astype(np.float32)


def squeeze_permutation(shape: tuple[int, int, int]) -> np.ndarray:
    """Indices ``p`` with ``squeezed = block[p]``: each 2x2 patch of an ``h x w x c`` block
    (raster order) becomes the 4c channels of one position of the ``h/2 x w/2 x 4c`` block.

    Example:
        >>> squeeze_permutation((2, 2, 1)).tolist()  # one 2x2 patch -> one position, 4 channels
        [0, 1, 2, 3]
        >>> squeeze_permutation((2, 4, 1)).tolist()
        [0, 1, 4, 5, 2, 3, 6, 7]
    """
    h, w, c = shape
    index = np.arange(h * w * c).reshape(h // 2, 2, w // 2, 2, c)
    return index.transpose(0, 2, 1, 3, 4).reshape(-1)


def split_permutation(shape: tuple[int, int, int], dims: int = DIMS) -> np.ndarray:
    """Indices ``p`` (over all ``dims`` numbers) that keep the first half of the channels of an
    ``h x w x c`` block in front, as an ``h x w x c/2`` block, and move the other half behind
    it, where later bijectors leave them (factored out). Numbers after the block stay put.

    Example:
        >>> split_permutation((1, 2, 2), dims=5).tolist()
        [0, 2, 1, 3, 4]
    """
    h, w, c = shape
    index = np.arange(h * w * c).reshape(h, w, c)
    kept, factored = index[..., :c // 2].reshape(-1), index[..., c // 2:].reshape(-1)
    return np.concatenate([kept, factored, np.arange(h * w * c, dims)])


def _permute_block(permutation: np.ndarray, name: str) -> tfb.Permute:
    """A ``tfb.Permute`` of the 64 numbers whose *inverse* (the density direction) applies
    ``numbers[permutation]``; a permutation of the block alone leaves the rest in place."""
    full = np.concatenate([permutation, np.arange(len(permutation), DIMS)]).astype(np.int32)
    return tfb.Permute(np.argsort(full).astype(np.int32), name=name)


def logit_bijector(alpha: float = 0.01) -> tfb.Bijector:
    """Grey levels in ``(0, 17)`` from logits (forward) and back (inverse):
    ``x = 17 (sigmoid(y) - alpha) / (1 - 2 alpha)``. In the density direction it maps
    dequantized pixels to ``logit(alpha + (1 - 2 alpha) x / 17)``, spreading the cube's edges
    (where most pixels sit at 0) out over the real line; its log-det is part of the density.

    Example:
        >>> round(float(logit_bijector().forward(0.0)), 3)  # a logit of 0 is mid-grey
        8.5
        >>> round(float(logit_bijector().inverse(0.5)), 2)  # the middle of the lowest bin, spread out
        -3.21
    """
    alpha = _validate.finite_float("alpha", alpha, minimum=0.0, strict=True)
    if alpha >= 0.5:
        raise ValueError(f"alpha must be in (0, 0.5), got {alpha}")
    return tfb.Chain([tfb.Scale(LEVELS / (1 - 2 * alpha)), tfb.Shift(-alpha), tfb.Sigmoid()], name="logit")


class _ConvNet(tf.Module):
    """Three 3x3 convolutions, ``inputs`` channels in, ``outputs`` out; the last one starts at
    zero, so the layer it drives starts as the identity."""

    def __init__(self, shape: tuple[int, int, int], inputs: int, outputs: int, hidden: int, seed: int,
                 layer: int, name: str):
        super().__init__(name=name)

        def glorot(part: int):
            return tf.keras.initializers.GlorotUniform(seed=layer_seed(seed, layer, part))

        self.network = tf.keras.Sequential([
            tf.keras.Input(shape=(*shape[:2], inputs)),
            tf.keras.layers.Conv2D(hidden, 3, padding="same", activation="relu", kernel_initializer=glorot(0)),
            tf.keras.layers.Conv2D(hidden, 1, activation="relu", kernel_initializer=glorot(1)),
            tf.keras.layers.Conv2D(outputs, 3, padding="same", kernel_initializer="zeros"),
        ])

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        return self.network(x)


class ImageCoupling(OnePassInverse, tfb.Bijector):
    """An affine coupling layer on an ``h x w x c`` block: the entries where ``mask`` is 1 pass
    through and, through a small convolutional network (fed the masked block and the mask),
    set a shift and a log-scale (soft-bounded by ``log_scale_bound``) for every other entry:
    ``x = z * exp(log_scale) + shift`` there. One network pass both ways; the Jacobian is
    triangular, so its log-det is the sum of the log-scales.

    Subclasses change the element-wise transform: :attr:`outputs_per_entry` raw network outputs
    per entry, :meth:`_transform` (noise to data) and :meth:`_untransform` (data to noise), each
    returning the new values and the log-derivative per entry (:class:`ImageSplineCoupling`)."""

    outputs_per_entry = 2

    def __init__(self, block: tuple[int, int, int], mask: np.ndarray, hidden_channels: int, seed: int,
                 layer: int, log_scale_bound: float = 3.0, name: str = "coupling", net: tf.Module | None = None):
        # ``net``: the network to share, as copy() does; a new one when None. Being in ``parameters``,
        # it tells TFP's cache this layer from another built with the same arguments.
        parameters = dict(locals())
        super().__init__(forward_min_event_ndims=1, dtype=tf.float32, parameters=parameters, name=name)
        self.block, self.size = tuple(block), math.prod(block)
        self.mask = tf.constant(np.asarray(mask, dtype=np.float32)[None])
        self.log_scale_bound = log_scale_bound
        self.net = net if net is not None else _ConvNet(
            self.block, block[2] + 1, self.outputs_per_entry * block[2], hidden_channels, seed, layer, f"{name}_net")
        self._parameters["net"] = self.net

    def _transform(self, z: tf.Tensor, raw: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        shift, log_scale = raw[..., 0], soft_clamp(raw[..., 1], self.log_scale_bound)
        return z * tf.exp(log_scale) + shift, log_scale

    def _untransform(self, x: tf.Tensor, raw: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        shift, log_scale = raw[..., 0], soft_clamp(raw[..., 1], self.log_scale_bound)
        return (x - shift) * tf.exp(-log_scale), -log_scale

    def _raw(self, value: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """The block as images (n, h, w, c) and the network's raw outputs (n, h, w, c, outputs_per_entry)."""
        images = tf.reshape(value[..., :self.size], [-1, *self.block])
        mask = tf.broadcast_to(self.mask[..., :1], tf.concat([tf.shape(images)[:-1], [1]], axis=0))
        raw = self.net(tf.concat([images * self.mask, mask], axis=-1))
        return images, tf.reshape(raw, tf.concat([tf.shape(images), [self.outputs_per_entry]], axis=0))

    def _apply(self, value: tf.Tensor, transform) -> tuple[tf.Tensor, tf.Tensor]:
        """``transform`` on the free entries of the block of ``value``; the result and its log-det."""
        images, raw = self._raw(value)
        new, log_derivative = transform(images, raw)
        free = 1.0 - self.mask
        images = images * self.mask + new * free
        leading = tf.shape(value)[:-1]
        block = tf.reshape(images, tf.concat([leading, [self.size]], axis=0))
        log_det = tf.reshape(tf.reduce_sum(log_derivative * free, axis=[1, 2, 3]), leading)
        return tf.concat([block, value[..., self.size:]], axis=-1), log_det

    def _forward(self, z: tf.Tensor) -> tf.Tensor:
        return self._apply(z, self._transform)[0]

    def _forward_log_det_jacobian(self, z: tf.Tensor) -> tf.Tensor:
        return self._apply(z, self._transform)[1]

    def _inverse_and_log_det(self, x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return self._apply(x, self._untransform)


class ImageSplineCoupling(ImageCoupling):
    """:class:`ImageCoupling` with a monotone rational-quadratic spline per free entry
    (``bins`` bins on ``[-bound, bound]``, the identity outside; :mod:`flowlab.flows.spline`) instead
    of an affine map. The spline runs in the density direction, like the moons' spline flow."""

    bins, bound = 8, 5.0
    outputs_per_entry = 3 * bins - 1

    def _spline(self, raw: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        return spline.spline_parameters(raw, self.bins, self.bound)

    def _untransform(self, x: tf.Tensor, raw: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return spline.rqs_evaluate(x, *self._spline(raw), self.bound)

    def _transform(self, z: tf.Tensor, raw: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        parameters = self._spline(raw)
        x = spline.rqs_solve(z, *parameters, self.bound)
        return x, -spline.rqs_evaluate(x, *parameters, self.bound)[1]


#: Coupling transform name -> coupling layer class.
COUPLINGS = {"affine": ImageCoupling, "spline": ImageSplineCoupling}


def _coupling_stage(block: tuple[int, int, int], couplings: int, masks: str, hidden: int, seed: int,
                    first_layer: int, bound: float, transform: str) -> list[tfb.Bijector]:
    """``couplings`` x [ActNorm, ImageCoupling] on ``block``, masks alternating (checkerboard,
    channel, or both in turn), in the density direction."""
    steps: list[tfb.Bijector] = []
    for i in range(couplings):
        layer = first_layer + i
        kind = masks if masks != "both" else ("checkerboard" if i % 2 == 0 else "channel")
        parity = (couplings - 1 - i) % 2 if masks == "channel" else i % 2 if masks != "both" else (i // 2) % 2
        mask = checkerboard(block, parity) if kind == "checkerboard" else channel_mask(block, parity)
        steps += [ActNorm(block, name=f"actnorm_{layer}"),
                  COUPLINGS[transform](block, mask, hidden, seed, layer, bound, name=f"coupling_{layer}")]
    return steps


def _couplings(value: Any) -> tuple[int, ...]:
    """Three coupling counts (one per stage), within :data:`flowlab._validate.LIST_LIMITS`."""
    return _validate.within("couplings", "couplings", value)


def _flow_args(couplings: Any, hidden_channels: Any, seed: Any, log_scale_bound: Any, alpha: Any,
               transform: Any) -> tuple[tuple[int, ...], int, int, float, str]:
    """Check a digits flow's settings (no network is built): each error names the setting."""
    couplings = _couplings(couplings)
    hidden = _validate.within("hidden_channels", "hidden_channels", hidden_channels)
    seed = _validate.within("seed", "seed", seed)
    bound = _validate.finite_float("log_scale_bound", log_scale_bound, minimum=0.0, strict=True)
    logit_bijector(alpha)  # checks alpha
    return couplings, hidden, seed, bound, _validate.one_of("transform", transform, tuple(COUPLINGS))


def flow_steps(*, multiscale: bool = True, couplings: Sequence[int] = (4, 4, 4), hidden_channels: int = 32,
               seed: int = 0, log_scale_bound: float = 3.0, alpha: float = 0.01,
               transform: str = "spline") -> list[tfb.Bijector]:
    """The bijectors of a digits flow in the density direction (data to noise, each applied
    as its inverse), from the logit of the pixels on.

    Multi-scale (``multiscale=True``; ``couplings`` = (n1, n2, n3)): n1 checkerboard couplings on
    the 8x8x1 image; squeeze to 4x4x4 and n2 channel couplings; split off half the channels
    (32 numbers factored out); n3 couplings on the 4x4x2 rest, checkerboard and channel masks
    in turn. Without the multi-scale structure: ``sum(couplings)`` checkerboard couplings on the
    8x8x1 image, the same networks, no squeeze and no split.

    Example:
        >>> steps = [type(b).__name__ for b in flow_steps(couplings=(1, 1, 1), hidden_channels=4)]
        >>> steps[:4], steps.count("Permute"), len(steps)
        (['Chain', 'ActNorm', 'ImageSplineCoupling', 'Permute'], 2, 9)
    """
    couplings, hidden, seed, bound, transform = _flow_args(couplings, hidden_channels, seed, log_scale_bound,
                                                           alpha, transform)
    image, squeezed, kept = (SIDE, SIDE, 1), (SIDE // 2, SIDE // 2, 4), (SIDE // 2, SIDE // 2, 2)
    steps: list[tfb.Bijector] = [logit_bijector(alpha)]
    if not multiscale:
        return steps + _coupling_stage(image, sum(couplings), "checkerboard", hidden, seed, 0, bound, transform)
    n1, n2, n3 = couplings
    steps += _coupling_stage(image, n1, "checkerboard", hidden, seed, 0, bound, transform)
    steps.append(_permute_block(squeeze_permutation(image), name="squeeze"))
    steps += _coupling_stage(squeezed, n2, "channel", hidden, seed, n1, bound, transform)
    steps.append(_permute_block(split_permutation(squeezed), name="split"))
    steps += _coupling_stage(kept, n3, "both", hidden, seed, n1 + n2, bound, transform)
    return steps


@dataclass(frozen=True)
class ImageFlowConfig:
    """Everything needed to rebuild a digits flow (saved next to its weights).

    Example:
        >>> ImageFlowConfig(couplings=(2, 2, 2)).couplings
        (2, 2, 2)
    """

    multiscale: bool = True
    couplings: tuple[int, ...] = (4, 4, 4)
    hidden_channels: int = 32
    seed: int = 0
    log_scale_bound: float = 3.0
    alpha: float = 0.01
    transform: str = "spline"

    def __post_init__(self):
        if not isinstance(self.multiscale, bool):
            raise ValueError(f"multiscale must be True or False, got {self.multiscale!r}")
        object.__setattr__(self, "couplings", _couplings(self.couplings))
        _flow_args(self.couplings, self.hidden_channels, self.seed, self.log_scale_bound, self.alpha,
                   self.transform)  # every field, without building a network

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "ImageFlowConfig":
        return cls(**{**values, "couplings": tuple(values.get("couplings", cls.couplings))})


class ImageFlow(OnePassDensity, tfd.TransformedDistribution):
    """A digits flow: a standard normal on 64 numbers pushed through the chain of
    :func:`flow_steps` (run as inverses), with its :class:`ImageFlowConfig` as ``config``.
    ``bijector``: the chain of those steps to use (shared, with its weights, as ``copy()`` does);
    made from the config when None."""

    def __init__(self, config: ImageFlowConfig, bijector: tfb.Chain | None = None):
        if not isinstance(config, ImageFlowConfig):
            raise ValueError(f"config must be an ImageFlowConfig (ImageFlowConfig.from_dict makes one from a "
                             f"dict), got {type(config).__name__}: {config!r}")
        if bijector is None:
            bijector = tfb.Chain(flow_steps(**config.to_dict()), name="digits_flow")
        steps = list(bijector.bijectors)
        parameters = {"config": config, "bijector": bijector}
        super().__init__(tfd.MultivariateNormalDiag(loc=tf.zeros(DIMS)), bijector, name="image_flow")
        self._parameters = parameters
        self._config, self._steps = config, steps

    @classmethod
    def _parameter_properties(cls, dtype, num_classes=None):
        return tfd.TransformedDistribution._parameter_properties(dtype, num_classes)

    @property
    def config(self) -> ImageFlowConfig:
        """The configuration this flow was made from."""
        return self._config

    @property
    def steps(self) -> list[tfb.Bijector]:
        """The bijectors in the density direction, as :func:`flow_steps` made them."""
        return list(self._steps)


def make_image_flow(config: ImageFlowConfig | None = None) -> ImageFlow:
    """A trainable digits flow with its weights created (``config`` None: the default
    :class:`ImageFlowConfig`, made per call: a default made at import would build a flow on
    every import of this module, ``flowlab train`` for the moons included).

    Example:
        >>> flow = make_image_flow(ImageFlowConfig(couplings=(1, 1, 1), hidden_channels=4))
        >>> flow.log_prob(np.full((2, 64), 3.5, np.float32)).shape
        TensorShape([2])
    """
    flow = ImageFlow(ImageFlowConfig() if config is None else config)
    flow.log_prob(tf.fill([1, DIMS], LEVELS / 2))
    return flow


class VariationalDequantizer(tf.Module):
    """Learned dequantization noise ``u`` in ``(0, 1)^d`` for integer images, a small
    conditional flow (Ho et al., 2019): ``eps`` from a standard logistic, ``couplings`` affine
    coupling layers whose networks also see the image, then a sigmoid. At the start every
    layer is the identity and ``sigmoid(eps)`` is exactly uniform, so the bound it gives starts
    at the uniform one; training ``E_q[log p(x + u) - log q(u | x)]`` with the flow need not tighten it.

    ``shape`` is (h, w) of the images (8x8 digits by default; smaller in tests)."""

    def __init__(self, shape: tuple[int, int] = (SIDE, SIDE), couplings: int = 2, hidden_channels: int = 16,
                 seed: int = 0, levels: int = LEVELS, name: str = "dequantizer"):
        super().__init__(name=name)
        if isinstance(shape, (str, bytes)) or not isinstance(shape, Sequence) or len(shape) != 2:
            raise ValueError(f"shape must be the (height, width) of the images, two positive integers, "
                             f"got {type(shape).__name__}: {shape!r}")
        self.shape = (_validate.positive_int("shape[0]", shape[0]), _validate.positive_int("shape[1]", shape[1]), 1)
        self.levels = _validate.positive_int("levels", levels)
        couplings = _validate.positive_int("couplings", couplings)
        hidden = _validate.positive_int("hidden_channels", hidden_channels)
        seed = _validate.non_negative_int("seed", seed)
        self.couplings, self.hidden_channels, self.seed = couplings, hidden, seed
        self.masks = [tf.constant(checkerboard(self.shape, i % 2)[None]) for i in range(couplings)]
        self.nets = [_ConvNet(self.shape, 3, 2, hidden, seed, 900 + i, f"{name}_net_{i}") for i in range(couplings)]
        self.base = tfd.Logistic(0.0, 1.0)

    @property
    def config(self) -> dict[str, Any]:
        """The arguments it was made with, as plain JSON values: what
        :func:`flowlab.io.save_image_flow` writes (a dict kept as an attribute would be wrapped
        by tf.Module's tracking, which json cannot write on some TensorFlow versions).

        Example:
            >>> VariationalDequantizer((2, 2), couplings=1, hidden_channels=4).config
            {'shape': [2, 2], 'couplings': 1, 'hidden_channels': 4, 'seed': 0, 'levels': 17}
        """
        return {"shape": [int(self.shape[0]), int(self.shape[1])], "couplings": self.couplings,
                "hidden_channels": self.hidden_channels, "seed": self.seed, "levels": self.levels}

    def sample(self, pixels: tf.Tensor, eps: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Noise ``u`` for ``pixels`` (shape (n, h*w)) from base draws ``eps`` (same shape, standard
        logistic), and ``log q(u | pixels)`` per image."""
        n = tf.shape(pixels)[0]
        condition = tf.reshape(tf.cast(pixels, tf.float32) / self.levels - 0.5, [n, *self.shape])
        h = tf.reshape(eps, [n, *self.shape])
        log_q = tf.reduce_sum(self.base.log_prob(h), axis=[1, 2, 3])
        for mask, net in zip(self.masks, self.nets):
            shift, log_scale = tf.split(net(tf.concat([condition, h * mask, tf.broadcast_to(mask, tf.shape(h))],
                                                      axis=-1)), 2, axis=-1)
            log_scale = soft_clamp(log_scale, 3.0) * (1.0 - mask)
            h = h * tf.exp(log_scale) + shift * (1.0 - mask)
            log_q -= tf.reduce_sum(log_scale, axis=[1, 2, 3])
        # sigmoid's log-derivative is log sigmoid(h) + log sigmoid(-h)
        log_q -= tf.reduce_sum(tf.math.log_sigmoid(h) + tf.math.log_sigmoid(-h), axis=[1, 2, 3])
        return tf.reshape(tf.sigmoid(h), [n, -1]), log_q
