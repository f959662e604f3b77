"""2-D convolution entry points for every conv layer of the model.

All encoder/decoder convolutions go through `conv2d` (and the decoder's
upsample-then-conv through `upsample_conv2d`), so how they are computed is one
switch, `jax.conv_impl`, and never a change to the model:

  'xla'   lax.conv_general_dilated on the NHWC tensors as given.
  'fast'  the same math on a space-to-depth grid, kernel gradients on row
          tiles (below).
  'auto'  'fast' on CPU, 'xla' on GPU/TPU (whose conv kernels are already good).

Why: XLA's CPU convolution runs full-resolution, few-channel layers (64x64x3 ->
8, 5x5) at a tenth of the matmul rate, but layers with many channels at close to
it. Folding each s x s block of pixels into channels (space-to-depth) turns a
stride-1 kxk conv into a conv on an (H/s)x(W/s) grid with s*s times the channels
and a ceil((k-1)/s)+1 square kernel whose taps are the original ones, placed by
a constant 0/1 tensor (`phase_taps`). Same sums of the same products (only the
order of the float additions differs), plus some multiplications by exact
zeros. A nearest 2x upsample followed by a conv is the same construction with
input blocks of s and output blocks of 2s pixels (the sub-pixel trick): the
upsampled image is never built and the conv runs at the low resolution.

The kernel gradient of a few-channel conv is the other slow part: XLA computes
it as a conv with the batch as the reduction. `row_tile_kernel_grad` computes
it as matmuls over chunks of images instead (below), near the matmul rate.

Shapes: x [N, H, W, Cin] (NHWC), kernel [kh, kw, Cin, Cout] (HWIO), 'SAME'
padding. Gradients come from JAX's autodiff of the reformulation, except where
a custom VJP takes the kernel gradient from row tiles or from XLA's
full-resolution conv (`conv2d`, measured faster); an input that is not
differentiated (the encoder's image) costs no input gradient either way.
Which path each layer takes (`block_size`, `kernel_grad_by_rows`) was measured
with XLA's own CPU conv kernels (`jax.cpu_ynn_fusions`, bench/README.md).
"""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

IMPLS = ("auto", "xla", "fast")


# ---- Reference path --------------------------------------------------------


def xla_conv2d(x, kernel, stride=1):
    """lax's conv: the reference every other path must equal."""
    return jax.lax.conv_general_dilated(x, kernel, (stride, stride), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))


def upsample2(x):
    """Nearest-neighbour 2x upsampling over H and W of an NHWC tensor."""
    return jnp.repeat(jnp.repeat(x, 2, 1), 2, 2)


# ---- Space-to-depth formulation ---------------------------------------------


@functools.cache
def phase_taps(k, up, s):
    """Constant A[d, q, r, a] (one spatial axis) for a stride-1 'SAME' conv of
    kernel size k applied after a nearest `up`x upsample, computed on blocks:
    input blocks of s low-res pixels, output blocks of up*s pixels.

    Output pixel a of block I reads kernel tap d from upsampled pixel
    u = up*s*I + a + d - lo, i.e. low-res pixel floor(u/up) = s*(I + q) + r.
    A counts those links (up > 1 can map two taps to one low-res pixel).
    Returns (A, qmin, qmax): block offsets run over qmin..qmax."""
    lo = (k - 1) // 2
    so = up * s
    a = np.arange(so)[None, :]
    d = np.arange(k)[:, None]
    low = np.floor_divide(a + d - lo, up)  # [k, so] low-res offset
    q, r = np.floor_divide(low, s), np.mod(low, s)
    qmin, qmax = int(q.min()), int(q.max())
    taps = np.zeros((k, qmax - qmin + 1, s, so), np.float32)
    for di in range(k):
        for ai in range(so):
            taps[di, q[di, ai] - qmin, r[di, ai], ai] += 1
    return taps, qmin, qmax


def block_kernel(kernel, up, s):
    """The kxk HWIO kernel as an (nq x nq, s*s*Cin -> (up*s)^2*Cout) kernel on
    the block grid; differentiable in `kernel` (a fixed linear map of it)."""
    kh, kw, cin, cout = kernel.shape
    th, qmin_h, qmax_h = phase_taps(kh, up, s)
    tw, qmin_w, qmax_w = phase_taps(kw, up, s)
    g = jnp.einsum("dqra,epsb,deio->qprsiabo", th.astype(kernel.dtype), tw.astype(kernel.dtype), kernel)
    nq, npw, so = th.shape[1], tw.shape[1], up * s
    g = g.reshape((nq, npw, s * s * cin, so * so * cout))
    return g, ((-qmin_h, qmax_h), (-qmin_w, qmax_w))


def space_to_depth(x, s):
    """[N, H, W, C] -> [N, H/s, W/s, s*s*C], channels ordered (row, col, c)."""
    if s == 1:
        return x
    N, H, W, C = x.shape
    x = x.reshape((N, H // s, s, W // s, s, C)).transpose((0, 1, 3, 2, 4, 5))
    return x.reshape((N, H // s, W // s, s * s * C))


def depth_to_space(x, s):
    """Inverse of `space_to_depth`."""
    if s == 1:
        return x
    N, H, W, D = x.shape
    C = D // (s * s)
    x = x.reshape((N, H, W, s, s, C)).transpose((0, 1, 3, 2, 4, 5))
    return x.reshape((N, H * s, W * s, C))


def block_conv2d(x, kernel, up=1, s=2, layout="NHWC", kgrad="xla"):
    """Stride-1 'SAME' conv of `upsample(x, up)` computed on s x s input blocks.

    Sizes that s does not divide are zero-padded at the bottom/right (the same
    zeros 'SAME' padding reads) and the output is cropped back. kgrad='rows'
    takes the block kernel's gradient from `row_tile_kernel_grad`."""
    N, H, W, _ = x.shape
    ph, pw = -H % s, -W % s
    if ph or pw:
        x = jnp.pad(x, ((0, 0), (0, ph), (0, pw), (0, 0)))
    g, padding = block_kernel(kernel, up, s)
    xs = space_to_depth(x, s)
    if layout == "NCHW":
        y = jax.lax.conv_general_dilated(
            xs.transpose((0, 3, 1, 2)), g, (1, 1), padding, dimension_numbers=("NCHW", "HWIO", "NCHW")
        ).transpose((0, 2, 3, 1))
    elif kgrad == "rows":
        y = row_kgrad_conv(xs, g, padding)
    else:
        y = jax.lax.conv_general_dilated(xs, g, (1, 1), padding, dimension_numbers=("NHWC", "HWIO", "NHWC"))
    y = depth_to_space(y, up * s)
    return y[:, : up * H, : up * W]


# ---- Kernel gradient on row tiles ---------------------------------------------


@functools.cache
def shift_taps(k, tile):
    """Constant S[dx, j, t] = 1 where j = t + dx: column tap dx links output
    column t of a tile to column j of the tile's (tile + k - 1)-wide input span."""
    taps = np.zeros((k, tile + k - 1, tile), np.float32)
    for dx in range(k):
        taps[dx, np.arange(tile) + dx, np.arange(tile)] = 1
    return taps


def row_patches(x, k, padding, tile):
    """[N, H, W, C] -> [N, Ho, Wo/tile, k * (tile + k - 1) * C]: for each output
    row and tile of `tile` output columns, the k input rows times the tile + k - 1
    input columns it reads (flattened row, column, channel). Per output pixel that
    is (tile + k - 1) / tile times the k * C values of one image row, where an
    im2col patch matrix holds k * k * C."""
    N, H, W, C = x.shape
    (lo, hi), (left, right) = padding
    Ho, Wo = H + lo + hi - k + 1, W + left + right - k + 1
    span, tiles = tile + k - 1, Wo // tile
    pieces = -(-span // tile)
    extra = max(0, (pieces - 1) * tile + Wo - (W + left + right))
    xp = jnp.pad(x, ((0, 0), (lo, hi), (left, right + extra), (0, 0)))
    cols = jnp.concatenate(
        [xp[:, :, m * tile : m * tile + Wo].reshape((N, H + lo + hi, tiles, tile, C)) for m in range(pieces)], 3
    )[:, :, :, :span]
    cols = cols.reshape((N, H + lo + hi, tiles, span * C))
    return jnp.concatenate([cols[:, d : d + Ho] for d in range(k)], -1)


def row_tile_kernel_grad(x, dy, k, padding, tile=8, chunk=16):
    """Gradient of a stride-1 kxk conv's kernel: sum over pixels of input patch
    times output cotangent, as one matmul per chunk of `chunk` images between
    their row patches and the cotangent's tiles (a free reshape of dy), then the
    k diagonals of the (tile + k - 1) x tile column blocks summed into the taps.
    The matmuls do (tile + k - 1) / k times the kernel gradient's FLOPs but run
    near the matmul rate; XLA's CPU kernel gradient runs few-channel convs at a
    tenth of it. Chunks keep each patch matrix in cache (lax.scan)."""
    N, Ho, Wo, O = dy.shape
    C = x.shape[-1]
    tile = math.gcd(Wo, tile)
    pad = -N % chunk
    if pad:
        x = jnp.pad(x, ((0, pad), (0, 0), (0, 0), (0, 0)))
        dy = jnp.pad(dy, ((0, pad), (0, 0), (0, 0), (0, 0)))
    x = x.reshape(((N + pad) // chunk, chunk, *x.shape[1:]))
    dy = dy.reshape(((N + pad) // chunk, chunk, Ho, Wo // tile, tile * O))

    def step(acc, inputs):
        xc, dyc = inputs
        patches = row_patches(xc, k, padding, tile)
        return acc + jnp.einsum("nhti,nhto->io", patches, dyc, preferred_element_type=jnp.float32), None

    span = tile + k - 1
    acc = jnp.zeros((k * span * C, tile * O), jnp.float32)
    blocks, _ = jax.lax.scan(step, acc, (x, dy))
    blocks = blocks.reshape((k, span, C, tile, O))
    dk = jnp.einsum("xjt,djcto->dxco", shift_taps(k, tile), blocks)
    return dk.astype(dy.dtype)


def _lax_conv(x, kernel, padding):
    return jax.lax.conv_general_dilated(x, kernel, (1, 1), padding, dimension_numbers=("NHWC", "HWIO", "NHWC"))


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def row_kgrad_conv(x, kernel, padding):
    """lax's stride-1 conv (explicit padding) whose kernel gradient comes from
    `row_tile_kernel_grad`; its input gradient is XLA's."""
    return _lax_conv(x, kernel, padding)


def _row_kgrad_fwd(x, kernel, padding):
    return _lax_conv(x, kernel, padding), (x, kernel)


def _row_kgrad_bwd(padding, res, dy):
    x, kernel = res
    dx = jax.vjp(lambda x: _lax_conv(x, kernel, padding), x)[1](dy)[0]
    return dx, row_tile_kernel_grad(x, dy, kernel.shape[0], padding)


row_kgrad_conv.defvjp(_row_kgrad_fwd, _row_kgrad_bwd)


# ---- Choosing a path ----------------------------------------------------------


def resolve(impl):
    """'auto' -> 'fast' on CPU, 'xla' elsewhere."""
    if impl not in IMPLS:
        raise ValueError(f"fastconv.py: conv_impl must be one of {IMPLS}, got {impl!r}")
    if impl == "auto":
        return "fast" if jax.default_backend() == "cpu" else "xla"
    return impl


def block_size(kernel, up):
    """Block size for the fast path, from per-layer CPU measurements
    (bench/bench_conv.py, bench/README.md). Upsample+conv: always the low-res
    grid (s=1), 2-5x faster than upsample-then-conv. Plain conv: 2x2 blocks for
    inputs of at most 12 channels (forward and input gradient 1.2-3x faster at
    64x64x3, 32x32x8 and 16x16x12; a tie at 8x8x16)."""
    if up > 1:
        return 1
    return 2 if kernel.shape[2] <= 12 else 1


def kernel_grad_by_rows(kernel):
    """Whether a plain conv's kernel gradient comes from `row_tile_kernel_grad`
    instead of XLA: for at most 8 input channels, where it measured faster; XLA's
    is as fast or faster from 12 on. (The decoder's sub-pixel convs keep XLA's:
    row tiles measured 1.2-3x slower there, bench_conv's `s1rows`.)"""
    return kernel.shape[2] <= 8


def same_padding(k):
    """'SAME' padding of a stride-1 kxk conv, as explicit (lo, hi) per axis."""
    lo = (k - 1) // 2
    return ((lo, k - 1 - lo), (lo, k - 1 - lo))


# ---- Entry points --------------------------------------------------------------


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _blocked_conv2d(x, kernel, rows=True):
    """Stride-1 conv on 2x2 blocks forward and for the input's gradient; the
    kernel's gradient on row tiles (rows=True) or by XLA's full-resolution conv:
    autodiff of the blocked form measured slower than either. All three are
    exact gradients of the same function."""
    return block_conv2d(x, kernel, 1, 2)


def _blocked_fwd(x, kernel, rows):
    return block_conv2d(x, kernel, 1, 2), (x, kernel)


def _blocked_bwd(rows, res, dy):
    x, kernel = res
    # XLA drops the input's gradient when it is unused (the encoder's image).
    dx = jax.vjp(lambda x: block_conv2d(x, kernel, 1, 2), x)[1](dy)[0]
    k = kernel.shape[0]
    if rows:
        return dx, row_tile_kernel_grad(x, dy, k, same_padding(k))
    return dx, jax.vjp(lambda k: xla_conv2d(x, k), kernel)[1](dy)[0]


_blocked_conv2d.defvjp(_blocked_fwd, _blocked_bwd)


def conv2d(x, kernel, stride=1, impl="auto"):
    """NHWC input, HWIO kernel, 'SAME' padding; same result as lax's conv.
    Fast path: forward and input gradient on 2x2 blocks for few-channel inputs,
    the kernel gradient on row tiles where that is faster (`block_size`,
    `kernel_grad_by_rows`)."""
    impl = resolve(impl)
    if impl == "xla" or stride != 1:
        return xla_conv2d(x, kernel, stride)
    rows = kernel_grad_by_rows(kernel)
    if block_size(kernel, 1) == 2:
        return _blocked_conv2d(x, kernel, rows)
    if rows:
        return row_kgrad_conv(x, kernel, same_padding(kernel.shape[0]))
    return xla_conv2d(x, kernel)


def upsample_conv2d(x, kernel, impl="auto"):
    """conv2d(upsample2(x), kernel): nearest 2x upsample then a stride-1 'SAME'
    conv, without building the upsampled image on the fast path."""
    impl = resolve(impl)
    if impl == "xla":
        return xla_conv2d(upsample2(x), kernel)
    return block_conv2d(x, kernel, 2, block_size(kernel, 2))


# ---- 2x2 max-pool ------------------------------------------------------------------


def maxpool2(x, impl="auto"):
    """2x2 max-pool with stride 2 over H and W of an NHWC tensor (even H, W).

    The fast path gives the same values and the same gradient as the reshape-max
    (XLA: ties share the gradient equally), but its backward pass is built from
    four strided slices instead of XLA's reduce gradient, 3x faster on CPU."""
    if resolve(impl) == "xla":
        B, H, W, C = x.shape
        return x.reshape((B, H // 2, 2, W // 2, 2, C)).max((2, 4))
    return _maxpool2(x)


def _pool_phases(x):
    return [x[:, i::2, j::2] for i in (0, 1) for j in (0, 1)]


@jax.custom_vjp
def _maxpool2(x):
    a, b, c, d = _pool_phases(x)
    return jnp.maximum(jnp.maximum(a, b), jnp.maximum(c, d))


def _maxpool2_fwd(x):
    y = _maxpool2(x)
    return y, (x, y)


def _maxpool2_bwd(res, dy):
    x, y = res
    hits = [(p == y).astype(dy.dtype) for p in _pool_phases(x)]
    share = dy / (hits[0] + hits[1] + hits[2] + hits[3])
    B, H2, W2, C = y.shape
    dx = jnp.stack([h * share for h in hits], 3).reshape((B, H2, W2, 2, 2, C))
    return (dx.transpose((0, 1, 3, 2, 4, 5)).reshape((B, 2 * H2, 2 * W2, C)),)


_maxpool2.defvjp(_maxpool2_fwd, _maxpool2_bwd)
