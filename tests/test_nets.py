"""Layers and output distributions of dreamerv3/nets.py, plus the optimizer."""

import elements
import jax
import jax.numpy as jnp
import ninjax as nj
import numpy as np
import pytest

from dreamerv3 import nets
from dreamerv3 import opt as optlib

RNG = np.random.default_rng(1)


def run(module_fn, *args):
    """Init a module's params and apply it once (both jitted)."""
    params = nj.init(module_fn)({}, *args)
    _, out = jax.jit(nj.pure(module_fn))(params, *args)
    return params, out


def test_linear_outscale_zero_gives_zero_output_and_rmsnorm_unit_rms():
    lin = nets.Linear(units=7, outscale=0.0, name="lin")
    x = jnp.asarray(RNG.normal(size=(3, 5)), jnp.float32)
    params, out = run(lambda x: lin(x), x)
    assert out.shape == (3, 7) and float(jnp.abs(out).max()) == 0.0
    norm = nets.RMSNorm(name="norm")
    _, y = run(lambda x: norm(x * 10), x)
    np.testing.assert_allclose(np.sqrt((np.asarray(y) ** 2).mean(-1)), 1.0, rtol=1e-3)


def test_block_linear_and_block_norm_match_numpy():
    """Block-major [G, N, in] layer = G separate dense maps; the block norm spans all G*u features."""
    G, N, fan_in, units = 4, 5, 3, 8
    x = jnp.asarray(RNG.normal(size=(G, N, fan_in)), jnp.float32)
    block = nets.BlockLinear(units=units, blocks=G, name="block")
    norm = nets.RMSNorm(blocks=True, name="bnorm")
    params, (y, z) = run(lambda x: (block(x), norm(block(x))), x)
    kernel, bias = np.asarray(params["block/kernel"]), np.asarray(params["block/bias"])
    ref = np.stack([np.asarray(x)[g] @ kernel[g] + bias.reshape(G, -1)[g] for g in range(G)])
    np.testing.assert_allclose(np.asarray(y), ref, rtol=1e-5, atol=1e-6)
    rows = ref.transpose(1, 0, 2).reshape(N, -1)  # [N, G * units/G]
    rows = rows / np.sqrt((rows**2).mean(-1, keepdims=True) + 1e-4)
    np.testing.assert_allclose(np.asarray(z).transpose(1, 0, 2).reshape(N, -1), rows, rtol=1e-4, atol=1e-5)


def test_settings_apply_only_inside_their_block():
    """Each agent traces under its own dtype / init seed; nothing leaks to the next one."""
    x = jnp.ones((2, 3), jnp.float32)
    with nets.settings(nets.Settings(jnp.dtype(jnp.bfloat16), "xla", 1)):
        assert nets.cast(x).dtype == jnp.bfloat16
        seeded = nj.init(lambda x: nets.Linear(units=4, name="lin")(x))({}, x)["lin/kernel"]
    assert nets.cast(x).dtype == jnp.float32
    default = nj.init(lambda x: nets.Linear(units=4, name="lin")(x))({}, x)["lin/kernel"]
    init = nets.with_settings(nets.Settings(init_seed=1), nj.init(lambda x: nets.Linear(units=4, name="lin")(x)))
    np.testing.assert_array_equal(np.asarray(init({}, x)["lin/kernel"]), np.asarray(seeded))
    assert not np.array_equal(np.asarray(default), np.asarray(seeded))


def test_init_is_deterministic_per_path_and_scaled():
    lin = nets.Linear(units=256, name="wide")
    x = jnp.ones((1, 512), jnp.float32)
    p1 = nj.init(lambda x: lin(x))({}, x)
    p2 = nj.init(lambda x: lin(x))({}, x)
    kernel = np.asarray(p1["wide/kernel"])
    np.testing.assert_array_equal(kernel, np.asarray(p2["wide/kernel"]))
    assert abs(kernel.std() - np.sqrt(1 / 512)) < 0.1 * np.sqrt(1 / 512)
    assert np.abs(kernel).max() <= 2 * np.sqrt(1 / 512) / 0.87962566 + 1e-6


def image_space(size):
    return {
        "image": elements.Space(np.uint8, (size, size, 3)),
        "vector": elements.Space(np.float32, (4,)),
        "is_first": elements.Space(bool),
    }


def test_encoder_decoder_shapes_and_channels_at_64():
    space = image_space(64)
    enc = nets.Encoder(space, depth=2, units=8, layers=1, name="enc")
    dec = nets.Decoder(space, 8, depth=2, units=8, layers=1, name="dec")
    obs = {
        "image": jnp.zeros((2, 3, 64, 64, 3), jnp.uint8),
        "vector": jnp.zeros((2, 3, 4), jnp.float32),
        "is_first": jnp.zeros((2, 3), bool),
    }

    def fn(obs):
        tok = enc(obs, 2)
        dists = dec(tok, 2)
        return tok, {k: d.mode() for k, d in dists.items()}

    params, (tok, recon) = run(fn, obs)
    # Encoder: four stride-1 5x5 convs with channels depth * [2, 3, 4, 4], pooled to 4x4.
    chans = [params[f"enc/conv{i}/kernel"].shape for i in range(4)]
    assert chans == [(5, 5, 3, 4), (5, 5, 4, 6), (5, 5, 6, 8), (5, 5, 8, 8)]
    assert tok.shape == (2, 3, 8 + 4 * 4 * 8)
    assert recon["image"].shape == (2, 3, 64, 64, 3)
    assert recon["vector"].shape == (2, 3, 4)
    assert float(recon["image"].min()) >= 0 and float(recon["image"].max()) <= 1
    assert params["dec/conv3/kernel"].shape == (5, 5, 4, 3)


def test_bad_image_size_is_refused():
    with pytest.raises(ValueError, match="square with side"):
        nets.num_stages((48, 48, 3), (2, 3, 4, 4))


def test_categorical_unimix_and_normal_bounds():
    logits = jnp.asarray([[50.0, -50.0, -50.0, -50.0]])
    dist = nets.Categorical(logits, 0.01)
    probs = np.exp(np.asarray(dist.logits))
    np.testing.assert_allclose(probs, [[0.99 + 0.0025, 0.0025, 0.0025, 0.0025]], rtol=1e-4)
    assert dist.sample(jax.random.PRNGKey(0)).shape == (1,)
    normal = nets.BoundedNormal(jnp.zeros((100, 2)), jnp.full((100, 2), 0.5))
    assert float(normal.std.min()) == 0.5


def test_policy_heads_as_official():
    """Categorical policy without unimix; normal policy samples unclipped, with
    the log-prob of the sample taken (the env wrapper clips)."""
    head = nets.Head(kind="categorical", size=4, units=8, layers=1, outscale=0.01, name="pol")
    feat = jnp.asarray(RNG.normal(size=(3, 5)), jnp.float32)
    params = nj.init(lambda x: head(x).logits)({}, feat)
    params["pol/out/bias"] = jnp.asarray([50.0, -50.0, -50.0, -50.0])
    _, logp = nj.pure(lambda x: head(x).logits)(params, feat)
    assert float(jnp.exp(logp).min()) < 1e-20  # no 1% uniform mix
    normal = nets.BoundedNormal(jnp.zeros((1000, 2)), jnp.full((1000, 2), 1.0))
    x = normal.sample(jax.random.PRNGKey(0))
    assert float(jnp.abs(x).max()) > 2.0  # not clipped
    ref = (-0.5 * np.asarray(x) ** 2 - 0.5 * np.log(2 * np.pi)).sum(-1)
    np.testing.assert_allclose(normal.logp(x), ref, rtol=1e-5)


def test_outscale_multiplies_the_initial_weights():
    """Official: kernel = trunc_normal(std 1/sqrt(fan_in)) * outscale (ours used to
    scale the variance, giving 10x larger initial policy logits at 0.01)."""
    x = jnp.ones((1, 1024), jnp.float32)
    kernel = nj.init(lambda x: nets.Linear(units=256, outscale=0.01, name="o")(x))({}, x)["o/kernel"]
    np.testing.assert_allclose(np.asarray(kernel).std(), 0.01 / 32, rtol=0.05)


def test_block_linear_init_scales_by_total_fan_in():
    """Official Initializer.compute_fans on a [G, in/G, out/G] kernel: fan_in = in."""
    G, per_block = 8, 128
    x = jnp.ones((G, 1, per_block), jnp.float32)
    kernel = nj.init(lambda x: nets.BlockLinear(units=512, blocks=G, name="b")(x))({}, x)["b/kernel"]
    np.testing.assert_allclose(np.asarray(kernel).std(), 1 / np.sqrt(G * per_block), rtol=0.05)


def test_grid_proj_matches_numpy():
    """The decoder's input (official bspace): block-linear from deter with block g
    giving channels [g C/G, (g+1) C/G) of every cell, plus an MLP from stoch,
    then RMSNorm and SiLU."""
    N, D, S, G, units, (h, w, C) = 3, 16, 6, 4, 5, (2, 2, 8)
    proj = nets.GridProj(D, (h, w, C), units=units, blocks=G, name="proj")
    feat = jnp.asarray(RNG.normal(size=(N, D + S)), jnp.float32)
    params = nj.init(proj)({}, feat)
    params = {k: jnp.asarray(RNG.normal(size=v.shape), jnp.float32) for k, v in params.items()}
    _, got = jax.jit(nj.pure(proj))(params, feat)
    P = {k.split("/", 1)[1]: np.asarray(v, np.float64) for k, v in params.items()}
    f = np.asarray(feat, np.float64)
    silu = lambda x: x / (1 + np.exp(-x))
    norm = lambda x, s: x / np.sqrt((x**2).mean(-1, keepdims=True) + 1e-4) * s
    deter, stoch = f[:, :D], f[:, D:]
    x0 = np.zeros((N, h, w, C))
    bias0 = P["sp0/bias"].reshape(G, -1)
    for g in range(G):
        out = deter[:, g * D // G : (g + 1) * D // G] @ P["sp0/kernel"][g] + bias0[g]
        x0[..., g * C // G : (g + 1) * C // G] = out.reshape(N, h, w, C // G)
    x1 = silu(norm(stoch @ P["sp1/kernel"] + P["sp1/bias"], P["sp1norm/scale"]))
    x1 = (x1 @ P["sp2/kernel"] + P["sp2/bias"]).reshape(N, h, w, C)
    ref = silu(norm(x0 + x1, P["spnorm/scale"]))
    np.testing.assert_allclose(np.asarray(got), ref, rtol=1e-4, atol=1e-5)
    assert P["sp0/kernel"].shape == (G, D // G, h * w * C // G)
    assert P["sp1/kernel"].shape == (S, 2 * units)


def test_symlog_mse_and_binary_losses():
    pred = jnp.asarray([[0.0, 1.0]])
    target = jnp.asarray([[0.0, np.e - 1]])
    np.testing.assert_allclose(nets.SymlogMSE(pred, 1).loss(target), [0.0], atol=1e-6)
    b = nets.Binary(jnp.asarray([0.0]))
    np.testing.assert_allclose(b.loss(jnp.asarray([1.0])), [np.log(2)], rtol=1e-6)


def laprop_reference(grads, lr, b1=0.9, b2=0.999, eps=1e-20):
    m = v = 0.0
    params = 0.0
    out = []
    for t, g in enumerate(grads, 1):
        v = b2 * v + (1 - b2) * g * g
        u = g / (np.sqrt(v / (1 - b2**t)) + eps)
        m = b1 * m + (1 - b1) * u
        params = params - lr * m / (1 - b1**t)
        out.append(params)
    return np.array(out)


def test_laprop_matches_loop_and_agc_clips():
    cfg = elements.Config(lr=0.1, agc=1e9, pmin=1e-3, beta1=0.9, beta2=0.999, eps=1e-20, warmup=0)
    tx = optlib.make(cfg)
    params = {"w": jnp.zeros((3,), jnp.float32)}
    grads = RNG.normal(size=(10, 3)).astype(np.float32)
    state = tx.init(params)
    traj = []
    for g in grads:
        upd, state = tx.update({"w": jnp.asarray(g)}, state, params)
        params = {"w": params["w"] + upd["w"]}
        traj.append(np.asarray(params["w"]))
    np.testing.assert_allclose(np.array(traj), laprop_reference(grads.astype(np.float64), 0.1), rtol=1e-4, atol=1e-6)
    # AGC: a gradient larger than 0.3 * ||param|| is scaled down to exactly that norm.
    agc = optlib.clip_by_agc(0.3)
    p = {"w": jnp.full((4,), 2.0)}
    g, _ = agc.update({"w": jnp.full((4,), 100.0)}, None, p)
    np.testing.assert_allclose(np.linalg.norm(g["w"]), 0.3 * 4.0, rtol=1e-5)
    small, _ = agc.update({"w": jnp.full((4,), 0.01)}, None, p)
    np.testing.assert_allclose(small["w"], 0.01)


def test_warmup_schedule():
    sched = optlib.schedule(4e-5, 1000)
    assert float(sched(jnp.asarray(0))) == pytest.approx(4e-8)
    assert float(sched(jnp.asarray(999))) == pytest.approx(4e-5)
    assert float(sched(jnp.asarray(5000))) == pytest.approx(4e-5)
