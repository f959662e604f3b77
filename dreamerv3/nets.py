"""Layers, networks and output distributions of the DreamerV3 model (ninjax).

Shape letters: B batch, T time, H imagined steps, D features, C channels.
Parameters are stored in float32; matmuls and convs run in the compute dtype,
norms and outputs in float32. Every convolution goes through `fastconv.conv2d`
so its implementation is one switch (`jax.conv_impl`) and never a change to the
model. Those two and the init seed are `Settings`, which each agent puts in
effect while its functions are traced (`with nets.settings(...)`), so two
agents in one process never see each other's choices.
"""

import contextlib
import contextvars
import dataclasses
import math
import zlib

import jax
import jax.numpy as jnp
import ninjax as nj
import numpy as np

from dreamerv3 import fastconv, losses

f32 = jnp.float32
sg = jax.lax.stop_gradient


@dataclasses.dataclass(frozen=True)
class Settings:
    """What the networks read from `config.jax` and `config.seed` (see Agent)."""

    compute_dtype: jnp.dtype = jnp.dtype(jnp.float32)
    conv_impl: str = "auto"
    init_seed: int = 0


_SETTINGS = contextvars.ContextVar("nets_settings", default=Settings())  # noqa: B039 (Settings is frozen)


@contextlib.contextmanager
def settings(value):
    """Put `value` in effect for the networks traced inside the block."""
    token = _SETTINGS.set(value)
    try:
        yield
    finally:
        _SETTINGS.reset(token)


def with_settings(value, fn):
    """`fn` that traces under `value` (wrap functions before jax.jit / eval_shape)."""

    def wrapped(*args, **kwargs):
        with settings(value):
            return fn(*args, **kwargs)

    return wrapped


def cast(x):
    """Floating inputs go to the compute dtype; integer inputs stay as they are."""
    dtype = _SETTINGS.get().compute_dtype
    return x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x


def init_kernel(path, shape, fan_in, outscale):
    """Truncated normal with std outscale / sqrt(fan_in); outscale 0 gives zeros.

    As the official initializer, `outscale` multiplies the weights (not their
    variance), and `fan_in` is the kernel's whole input size, also for block
    kernels. Drawn on the host with NumPy, seeded by (init seed, the
    parameter's path): threefry draws inside the jitted init compiled for ~40 s
    on 2 CPU cores, and this keeps each parameter's init independent of
    creation order.
    """
    if outscale == 0.0:
        return jnp.zeros(shape, f32)
    std = outscale / math.sqrt(fan_in) / 0.87962566  # std of a [-2, 2] truncated unit normal
    seed = _SETTINGS.get().init_seed  # read while tracing; draw() runs later, on the host

    def draw():
        rng = np.random.default_rng([seed, zlib.crc32(path.encode())])
        x = rng.standard_normal(shape)
        bad = np.abs(x) > 2
        while bad.any():
            x[bad] = rng.standard_normal(int(bad.sum()))
            bad = np.abs(x) > 2
        return (std * x).astype(np.float32)

    return jax.pure_callback(draw, jax.ShapeDtypeStruct(shape, f32))


# ---- Layers -------------------------------------------------------------------


class Linear(nj.Module):
    """Dense layer; `outscale` scales the initial weights (0 = zero init). fan_in: the
    init's fan-in (0 = the input size; a layer split in parts gives the whole's)."""

    units: int = 1
    outscale: float = 1.0
    bias: bool = True
    fan_in: int = 0

    def __call__(self, x):
        kernel = self.value(
            "kernel",
            init_kernel,
            self.path + "/kernel",
            (x.shape[-1], self.units),
            self.fan_in or x.shape[-1],
            self.outscale,
        )
        x = cast(x) @ cast(kernel)
        if self.bias:
            x = x + cast(self.value("bias", jnp.zeros, (self.units,), f32))
        return x


class BlockLinear(nj.Module):
    """Block-diagonal dense layer on block-major inputs: x [G, N, in/G] -> [G, N, units/G].

    The G independent maps are one matmul batched over G. Callers keep their
    activations block-major between layers: on CPU, moving [N, G, .] to
    [G, N, .] and back around every layer cost more than the matmuls themselves.
    The init is scaled by the total fan-in G * in/G, as the official's.
    """

    units: int = 1
    blocks: int = 8

    def __call__(self, x):
        G = self.blocks
        assert x.shape[0] == G and self.units % G == 0, (x.shape, self.units, G)
        kernel = self.value(
            "kernel", init_kernel, self.path + "/kernel", (G, x.shape[-1], self.units // G), G * x.shape[-1], 1.0
        )
        bias = self.value("bias", jnp.zeros, (self.units,), f32)
        x = jax.lax.dot_general(cast(x), cast(kernel), (((2,), (1,)), ((0,), (0,))))
        return x + cast(bias).reshape((G, 1, -1))


class RMSNorm(nj.Module):
    """x / rms(x) * scale over the features, computed in float32.

    Features are the last axis, or with blocks=True the first and last axes of a
    block-major [G, N, u] input (one norm over all G*u features of each row).
    """

    eps: float = 1e-4
    blocks: bool = False

    def __call__(self, x):
        axes = (0, x.ndim - 1) if self.blocks else (x.ndim - 1,)
        size = x.shape[0] * x.shape[-1] if self.blocks else x.shape[-1]
        scale = self.value("scale", jnp.ones, (size,), f32)
        if self.blocks:
            scale = scale.reshape((x.shape[0], 1, x.shape[-1]))
        x = x.astype(f32)
        x = x * jax.lax.rsqrt((x * x).mean(axes, keepdims=True) + self.eps)
        return cast(x * scale)


class Conv(nj.Module):
    """Stride-1 'SAME' convolution (NHWC, HWIO kernel) through fastconv.
    upsample=True convolves the nearest 2x upsampled input, computed by fastconv
    without building it (same result and parameters, 2-5x faster on CPU, as fastconv measures)."""

    channels: int = 1
    kernel: int = 5
    upsample: bool = False

    def __call__(self, x):
        k, cin = self.kernel, x.shape[-1]
        fan_in = k * k * cin
        kernel = self.value("kernel", init_kernel, self.path + "/kernel", (k, k, cin, self.channels), fan_in, 1.0)
        bias = self.value("bias", jnp.zeros, (self.channels,), f32)
        if self.upsample:
            y = fastconv.upsample_conv2d(cast(x), cast(kernel), impl=_SETTINGS.get().conv_impl)
        else:
            y = fastconv.conv2d(cast(x), cast(kernel), 1, impl=_SETTINGS.get().conv_impl)
        return y + cast(bias)


class MLP(nj.Module):
    """`layers` x (Linear -> RMSNorm -> SiLU)."""

    units: int = 1024
    layers: int = 3

    def __call__(self, x):
        for i in range(self.layers):
            x = self.sub(f"l{i}", Linear, units=self.units)(x)
            x = jax.nn.silu(self.sub(f"n{i}", RMSNorm)(x))
        return x


def maxpool2(x):
    """2x2 max-pool with stride 2 over H and W of an NHWC tensor (fastconv: same
    values and gradients as the reshape-max, faster backward on CPU)."""
    return fastconv.maxpool2(x, impl=_SETTINGS.get().conv_impl)


def num_stages(shape, mults):
    """Conv stages that bring an HxW image down to 4x4 (4 for 64x64 images)."""
    H, W = shape[:2]
    stages = int(round(math.log2(H / 4))) if H >= 4 else -1
    if H != W or stages < 1 or 4 * 2**stages != H or stages > len(mults):
        raise ValueError(
            f"nets: images must be square with side 4 * 2**k, k <= {len(mults)} "
            f"(64x64 for the paper setup); got {shape}"
        )
    return stages


def obs_keys(obs_space):
    """Split observation keys into images (HxWxC uint8) and vectors (1-D floats)."""
    skip = ("reward", "is_first", "is_last", "is_terminal")
    keys = [k for k in obs_space if k not in skip and not k.startswith("log/")]
    imgs = [k for k in keys if len(obs_space[k].shape) == 3]
    vecs = [k for k in keys if len(obs_space[k].shape) in (0, 1)]
    return imgs, vecs


# ---- Encoder and decoder ------------------------------------------------------


class Encoder(nj.Module):
    """Images: per stage a 5x5 stride-1 conv, 2x2 max-pool, RMSNorm, SiLU, down to
    4x4 (4 stages at 64x64; smaller test images use the first stages); vectors:
    symlog then an MLP. Returns one token per step [..., D]. Pooling before the
    norm is the paper's layout, and keeps the elementwise work at quarter size."""

    depth: int = 64
    mults: tuple = (2, 3, 4, 4)
    kernel: int = 5
    units: int = 1024
    layers: int = 3
    symlog: bool = True

    def __init__(self, obs_space):
        self.imgkeys, self.veckeys = obs_keys(obs_space)
        self.obs_space = obs_space

    def __call__(self, obs, bdims):
        bshape = obs["is_first"].shape[:bdims]
        outs = []
        if self.veckeys:
            x = jnp.concatenate([obs[k].astype(f32).reshape((*bshape, -1)) for k in self.veckeys], -1)
            x = losses.symlog(x) if self.symlog else x
            outs.append(self.sub("mlp", MLP, units=self.units, layers=self.layers)(x))
        if self.imgkeys:
            # The image is data: no gradient flows into it (nor is one computed).
            x = jnp.concatenate([sg(obs[k]) for k in self.imgkeys], -1)
            x = x.reshape((-1, *x.shape[bdims:])).astype(f32) / 255.0 - 0.5
            stages = num_stages(x.shape[1:], self.mults)
            for i, mult in enumerate(self.mults[:stages]):
                x = self.sub(f"conv{i}", Conv, channels=self.depth * mult, kernel=self.kernel)(x)
                x = maxpool2(x)
                x = jax.nn.silu(self.sub(f"cnorm{i}", RMSNorm)(x))
            outs.append(x.reshape((*bshape, -1)))
        return jnp.concatenate([o.astype(f32) for o in outs], -1)


class GridProj(nj.Module):
    """Model state -> the decoder's first grid [N, h, w, C] (official `bspace`).

    deter goes through a block-diagonal layer of `blocks` blocks, block g
    giving channels g*C/G..(g+1)*C/G of every cell; the flattened stoch through
    Linear(2 units) -> norm -> SiLU -> Linear; the sum then gets a norm and SiLU.
    blocks=0: one Linear from the whole feature, then norm and SiLU.
    """

    units: int = 1024
    blocks: int = 8

    def __init__(self, deter, shape):
        self.deter, self.shape = deter, tuple(shape)

    def __call__(self, feat):
        N, (h, w, C) = feat.shape[0], self.shape
        if not self.blocks:
            x = self.sub("space", Linear, units=h * w * C)(feat).reshape((N, h, w, C))
            return jax.nn.silu(self.sub("spacenorm", RMSNorm)(x))
        G = self.blocks
        if C % G or self.deter % G:
            raise ValueError(
                f"nets.GridProj: agent.dec.bspace {G} must divide the decoder's first "
                f"channels {C} and agent.rssm.deter {self.deter}"
            )
        deter, stoch = feat[:, : self.deter], feat[:, self.deter :]
        x0 = deter.reshape((N, G, -1)).transpose((1, 0, 2))  # [G, N, D/G]
        x0 = self.sub("sp0", BlockLinear, units=h * w * C, blocks=G)(x0)  # [G, N, hwC/G]
        x0 = x0.reshape((G, N, h, w, C // G)).transpose((1, 2, 3, 0, 4)).reshape((N, h, w, C))
        x1 = self.sub("sp1", Linear, units=2 * self.units)(stoch)
        x1 = jax.nn.silu(self.sub("sp1norm", RMSNorm)(x1))
        x1 = self.sub("sp2", Linear, units=h * w * C)(x1).reshape((N, h, w, C))
        return jax.nn.silu(self.sub("spnorm", RMSNorm)(x0 + x1))


class Decoder(nj.Module):
    """Mirror of the encoder: the state projected to a 4x4xC grid (GridProj),
    per stage nearest 2x upsample and a 5x5 stride-1 conv, the last conv to the
    image channels; sigmoid output and MSE on [0, 1] pixels. Vectors: MLP then
    symlog-MSE. `feat` is deter (its first `deter` features) + flattened stoch."""

    depth: int = 64
    mults: tuple = (2, 3, 4, 4)
    kernel: int = 5
    units: int = 1024
    layers: int = 3
    bspace: int = 8

    def __init__(self, obs_space, deter):
        self.imgkeys, self.veckeys = obs_keys(obs_space)
        self.obs_space = obs_space
        self.deter = deter

    def __call__(self, feat, bdims):
        """Returns {key: distribution-like output} for every observation key."""
        bshape = feat.shape[:bdims]
        dists = {}
        if self.veckeys:
            x = self.sub("mlp", MLP, units=self.units, layers=self.layers)(feat)
            for k in self.veckeys:
                shape = self.obs_space[k].shape
                out = self.sub(f"out_{k}", Linear, units=max(1, math.prod(shape)))(x)
                dists[k] = SymlogMSE(out.astype(f32).reshape((*bshape, *shape)), len(shape))
        if self.imgkeys:
            chans = [self.obs_space[k].shape[-1] for k in self.imgkeys]
            H, W = self.obs_space[self.imgkeys[0]].shape[:2]
            stages = num_stages((H, W), self.mults)
            top = self.depth * self.mults[stages - 1]
            x = self.sub("proj", GridProj, self.deter, (4, 4, top), units=self.units, blocks=self.bspace)(
                feat.reshape((-1, feat.shape[-1]))
            )
            widths = [self.depth * m for m in reversed(self.mults[: stages - 1])] + [sum(chans)]
            for i, width in enumerate(widths):
                x = self.sub(f"conv{i}", Conv, channels=width, kernel=self.kernel, upsample=True)(x)
                if i < stages - 1:
                    x = jax.nn.silu(self.sub(f"cnorm{i}", RMSNorm)(x))
            x = jax.nn.sigmoid(x.astype(f32)).reshape((*bshape, H, W, sum(chans)))
            for k, part in zip(self.imgkeys, jnp.split(x, list(_cumsum(chans[:-1])), -1)):
                dists[k] = ImageMSE(part)
        return dists


def _cumsum(xs):
    total = 0
    for x in xs:
        total += x
        yield total


# ---- Output distributions -----------------------------------------------------


class SymlogMSE:
    """Prediction in symlog space; loss = sum of squared errors over event dims."""

    def __init__(self, pred, dims):
        self.pred, self.dims = pred, dims

    def mode(self):
        return losses.symexp(self.pred)

    def loss(self, target):
        err = (self.pred - losses.symlog(target.astype(f32))) ** 2
        return err.sum(tuple(range(-self.dims, 0))) if self.dims else err


class ImageMSE:
    """Pixels in [0, 1]; loss = sum of squared errors over H, W, C (uint8 targets)."""

    def __init__(self, pred):
        self.pred = pred

    def mode(self):
        return self.pred

    def loss(self, target):
        return ((self.pred - target.astype(f32) / 255.0) ** 2).sum((-3, -2, -1))


class TwoHot:
    """Two-hot distribution over the raw-unit bins `losses.bins` (official
    `symexp_twohot`): mean() is the bins' probability-weighted mean."""

    def __init__(self, logits):
        self.logits = logits.astype(f32)

    def mean(self):
        return losses.twohot_decode(self.logits)

    def loss(self, target):
        return losses.twohot_loss(self.logits, target)


class Binary:
    """Bernoulli from one logit."""

    def __init__(self, logit):
        self.logit = logit.astype(f32)

    def mode(self):
        return (self.logit > 0).astype(f32)

    def prob(self):
        return jax.nn.sigmoid(self.logit)

    def loss(self, target):
        t = target.astype(f32)
        return -(t * jax.nn.log_sigmoid(self.logit) + (1 - t) * jax.nn.log_sigmoid(-self.logit))


class Categorical:
    """Categorical over the last axis, optionally mixed with `unimix` uniform."""

    def __init__(self, logits, unimix=0.0):
        self.logits = losses.unimix_logits(logits.astype(f32), unimix)

    def sample(self, seed):
        return jax.random.categorical(seed, self.logits, -1)

    def logp(self, index):
        return jnp.take_along_axis(jax.nn.log_softmax(self.logits), index[..., None].astype(jnp.int32), -1)[..., 0]

    def entropy(self):
        logp = jax.nn.log_softmax(self.logits)
        return -(jnp.exp(logp) * logp).sum(-1)


class BoundedNormal:
    """Normal with tanh mean and std in [minstd, maxstd]. Samples are not
    clipped: the log-prob is of the sample taken, and the env wrapper clips
    (envs.ClipAction), as in the official."""

    def __init__(self, mean, std):
        self.mu, self.std = mean.astype(f32), std.astype(f32)

    def sample(self, seed):
        return self.mu + self.std * jax.random.normal(seed, self.mu.shape, f32)

    def logp(self, x):
        z = (x - self.mu) / self.std
        return (-0.5 * z * z - jnp.log(self.std) - 0.5 * math.log(2 * math.pi)).sum(-1)

    def entropy(self):
        return (0.5 * math.log(2 * math.pi * math.e) + jnp.log(self.std)).sum(-1)


# ---- Heads --------------------------------------------------------------------


class Head(nj.Module):
    """MLP trunk + output layer returning a distribution object.

    kind: 'twohot' (reward, value), 'binary' (continue), 'categorical' or
    'normal' (policy; `size` = number of actions or action dims).
    """

    kind: str = "twohot"
    size: int = 1
    units: int = 1024
    layers: int = 1
    outscale: float = 1.0
    bins: int = 255
    unimix: float = 0.01
    minstd: float = 0.1
    maxstd: float = 1.0

    def __call__(self, feat):
        x = self.sub("mlp", MLP, units=self.units, layers=self.layers)(feat)
        out = lambda n: self.sub("out", Linear, units=n, outscale=self.outscale)(x)
        if self.kind == "twohot":
            return TwoHot(out(self.bins))
        if self.kind == "binary":
            return Binary(out(1)[..., 0])
        if self.kind == "categorical":
            # No unimix: the official `categorical` head ignores it (only `onehot`
            # outputs mix), so the config's policy.unimix does not apply here.
            return Categorical(out(self.size))
        if self.kind == "normal":
            mean, std = jnp.split(out(2 * self.size).astype(f32), 2, -1)
            std = (self.maxstd - self.minstd) * jax.nn.sigmoid(std + 2.0) + self.minstd
            return BoundedNormal(jnp.tanh(mean), std)
        raise ValueError(f"nets.Head: unknown kind {self.kind!r}")
