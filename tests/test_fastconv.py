"""Every fastconv formulation equals lax's conv, forward and gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dreamerv3 import fastconv

SHAPES = [  # (H, W, Cin, Cout, kernel)
    (8, 8, 3, 8, 5),
    (7, 9, 1, 4, 5),
    (6, 5, 16, 3, 3),
    (9, 6, 4, 12, 3),
    (5, 7, 2, 2, 4),
]


def inputs(H, W, cin, cout, k, seed=0):
    kx, kk = jax.random.split(jax.random.PRNGKey(seed))
    x = jax.random.normal(kx, (2, H, W, cin), jnp.float32)
    kernel = jax.random.normal(kk, (k, k, cin, cout), jnp.float32) / k
    return x, kernel


def assert_same_fn(f, ref, x, kernel, argnums=(0, 1)):
    """f and ref agree in value and in the gradient of a random projection
    (one jit per check: compiling is cheaper than many eager ops)."""

    @jax.jit
    def both(x, kernel):
        out = []
        for fn in (f, ref):
            y = fn(x, kernel)
            proj = jnp.cos(jnp.arange(y.size, dtype=y.dtype)).reshape(y.shape)
            out.append((y, jax.grad(lambda *a: jnp.sum(fn(*a) * proj), argnums)(x, kernel)))  # noqa: B023 (called within this iteration)
        return out

    (y, grads), (y_ref, grads_ref) = both(x, kernel)
    np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-5)
    for g, g_ref in zip(jax.tree.leaves(grads), jax.tree.leaves(grads_ref)):
        np.testing.assert_allclose(g, g_ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("s", [1, 2, 3])
def test_block_conv_equals_lax(shape, s):
    x, kernel = inputs(*shape)
    assert_same_fn(lambda x, k: fastconv.block_conv2d(x, k, 1, s), fastconv.xla_conv2d, x, kernel)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("s", [1, 2])
def test_subpixel_equals_upsample_then_conv(shape, s):
    x, kernel = inputs(*shape)
    assert_same_fn(
        lambda x, k: fastconv.block_conv2d(x, k, 2, s),
        lambda x, k: fastconv.xla_conv2d(fastconv.upsample2(x), k),
        x,
        kernel,
    )


def test_block_conv_nchw_layout_equals_lax():
    x, kernel = inputs(8, 6, 3, 5, 5)
    assert_same_fn(lambda x, k: fastconv.block_conv2d(x, k, 1, 2, "NCHW"), fastconv.xla_conv2d, x, kernel)


@pytest.mark.parametrize(
    "shape,impl,stride",
    [
        (SHAPES[0], "fast", 1),
        (SHAPES[1], "fast", 1),
        (SHAPES[3], "fast", 1),
        (SHAPES[2], "fast", 1),
        (SHAPES[4], "fast", 1),
        (SHAPES[0], "xla", 1),
        (SHAPES[1], "fast", 2),
        (SHAPES[2], "xla", 2),
    ],
)
def test_conv2d_equals_lax(shape, impl, stride):
    x, kernel = inputs(*shape)
    assert_same_fn(
        lambda x, k: fastconv.conv2d(x, k, stride, impl), lambda x, k: fastconv.xla_conv2d(x, k, stride), x, kernel
    )


@pytest.mark.parametrize("shape,impl", [(SHAPES[0], "fast"), (SHAPES[2], "fast"), (SHAPES[0], "xla")])
def test_upsample_conv2d_equals_upsample_then_conv(shape, impl):
    x, kernel = inputs(*shape)
    assert_same_fn(
        lambda x, k: fastconv.upsample_conv2d(x, k, impl),
        lambda x, k: fastconv.xla_conv2d(fastconv.upsample2(x), k),
        x,
        kernel,
    )


@pytest.mark.parametrize("shape", SHAPES[:3])
def test_blocked_custom_vjp_equals_lax(shape):
    """The blocked path with its custom VJP, whatever block_size would pick."""
    x, kernel = inputs(*shape)
    assert_same_fn(fastconv._blocked_conv2d, fastconv.xla_conv2d, x, kernel)
    assert_same_fn(lambda x, k: fastconv._blocked_conv2d(x, k, False), fastconv.xla_conv2d, x, kernel)
    assert_same_fn(fastconv._blocked_conv2d, fastconv.xla_conv2d, x, kernel, argnums=1)


def test_image_layer_kernel_gradient_under_jit():
    """The encoder's first layer: only the kernel is differentiated."""
    x, kernel = inputs(16, 16, 3, 8, 5)
    loss = lambda f: jax.jit(jax.grad(lambda k: jnp.sum(f(x, k) ** 2)))
    np.testing.assert_allclose(
        loss(lambda x, k: fastconv.conv2d(x, k, 1, "fast"))(kernel),
        loss(fastconv.xla_conv2d)(kernel),
        rtol=1e-4,
        atol=1e-3,
    )


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("tile,chunk", [(8, 16), (2, 3), (3, 1)])
def test_row_tile_kernel_grad_equals_lax(shape, tile, chunk):
    """Widths the tile does not divide, batches the chunk does not divide,
    even kernels (asymmetric 'SAME' padding)."""
    H, W, cin, cout, k = shape
    x, kernel = inputs(*shape)
    x = jnp.concatenate([x, -x[:1]])  # 3 images
    dy = jax.random.normal(jax.random.PRNGKey(5), (3, H, W, cout))
    ref = jax.vjp(lambda kk: fastconv.xla_conv2d(x, kk), kernel)[1](dy)[0]
    got = fastconv.row_tile_kernel_grad(x, dy, k, fastconv.same_padding(k), tile, chunk)
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("shape", SHAPES[1:4])
def test_row_kgrad_conv_equals_lax(shape):
    x, kernel = inputs(*shape)
    k = kernel.shape[0]
    assert_same_fn(
        lambda x, kk: fastconv.row_kgrad_conv(x, kk, fastconv.same_padding(k)), fastconv.xla_conv2d, x, kernel
    )


@pytest.mark.parametrize("shape", [SHAPES[0], SHAPES[2]])
def test_subpixel_with_row_kgrad_equals_upsample_then_conv(shape):
    x, kernel = inputs(*shape)
    assert_same_fn(
        lambda x, k: fastconv.block_conv2d(x, k, 2, 1, kgrad="rows"),
        lambda x, k: fastconv.xla_conv2d(fastconv.upsample2(x), k),
        x,
        kernel,
    )


def test_shift_taps_link_each_output_column_to_its_inputs():
    taps = fastconv.shift_taps(5, 8)
    assert taps.shape == (5, 12, 8)
    np.testing.assert_array_equal(taps.sum(1), np.ones((5, 8)))
    assert taps[2, 7, 5] == 1 and taps[2, 6, 5] == 0


def test_phase_taps_keep_every_tap_once_per_output_phase():
    for k, up, s in [(5, 1, 2), (5, 2, 1), (3, 2, 2), (4, 1, 3)]:
        taps, _, _ = fastconv.phase_taps(k, up, s)
        np.testing.assert_array_equal(taps.sum((1, 2)), np.ones((k, up * s)))


def test_bad_impl_names_the_file_and_choices():
    x, kernel = inputs(4, 4, 1, 1, 3)
    with pytest.raises(ValueError, match=r"fastconv.py: conv_impl must be one of"):
        fastconv.conv2d(x, kernel, impl="cudnn")


def test_auto_is_fast_on_cpu_only():
    expected = "fast" if jax.default_backend() == "cpu" else "xla"
    assert fastconv.resolve("auto") == expected


@pytest.mark.parametrize("shape", [(2, 8, 6, 3), (1, 4, 4, 16)])
def test_maxpool2_equals_reshape_max_with_ties(shape):
    """Same values and gradients (ties share equally), on rounded inputs full of ties."""
    x = jnp.round(jax.random.normal(jax.random.PRNGKey(3), shape) * 2) / 2
    w = jnp.cos(jnp.arange(x.size // 4, dtype=x.dtype))
    ref = lambda x: x.reshape((shape[0], shape[1] // 2, 2, shape[2] // 2, 2, -1)).max((2, 4))
    assert int(jnp.sum(x[:, ::2, ::2] == x[:, 1::2, ::2])) > 0
    for impl in ("fast", "xla"):
        f = lambda x: fastconv.maxpool2(x, impl)  # noqa: B023 (called within this iteration)
        np.testing.assert_array_equal(f(x), ref(x))
        loss = lambda fn: jax.grad(lambda x: jnp.sum(fn(x).reshape(-1) * w))(x)
        np.testing.assert_allclose(loss(f), loss(ref), rtol=1e-6, atol=1e-7)
