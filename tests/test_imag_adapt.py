"""The adaptive-horizon rule (docs/design.md, "The adaptive rule") against a plain-Python reference."""

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from dreamerv3 import imag_adapt

H = 15
DEFAULTS = dict(
    enabled=True,
    mask_value=False,
    alpha=0.01,
    eps=1e-6,
    warmup=1000,
    abs_thresh=1.0,
    rel_thresh=1.15,
    rel_max=1.5,
    min_decay=0.85,
    min_horizon=3,
    tail_floor=0.1,
    mode="rule",
    placebo_rate=0.0,
    placebo_severity=1.0,
)


def reference_rule(l_dyns, cfg, length=H):
    """The rule written as a loop over updates, one formula per line."""
    ema, results = None, []
    for step, l_dyn in enumerate(l_dyns):
        ema = l_dyn if ema is None else (1 - cfg["alpha"]) * ema + cfg["alpha"] * l_dyn
        r = l_dyn / max(cfg["eps"], ema)
        active = step >= cfg["warmup"] and l_dyn > cfg["abs_thresh"] and r > cfg["rel_thresh"]
        sev = min(1.0, max(0.0, (r - cfg["rel_thresh"]) / (cfg["rel_max"] - cfg["rel_thresh"])))
        gamma = 1 - sev * (1 - cfg["min_decay"])
        if active:
            mask = [1.0 if k < cfg["min_horizon"] else max(cfg["tail_floor"], gamma**k) for k in range(length)]
        else:
            mask = [1.0] * length
        results.append(dict(mask=mask, ema=ema, ratio=r, active=active, sev=sev, gamma=gamma))
    return results


def run_rule(l_dyns, cfg, length=H):
    state, out = imag_adapt.init_state(), []
    for l_dyn in l_dyns:
        mask, state, metrics = imag_adapt.imag_mask(l_dyn, state, cfg, length)
        out.append((np.asarray(mask), {k: float(v) for k, v in metrics.items()}))
    return out, state


configs = st.fixed_dictionaries(
    dict(
        enabled=st.just(True),
        mask_value=st.just(False),
        alpha=st.floats(0.001, 1.0),
        eps=st.just(1e-6),
        warmup=st.integers(0, 6),
        abs_thresh=st.floats(0.0, 3.0),
        rel_thresh=st.floats(1.0, 1.5),
        rel_gap=st.floats(0.05, 1.0),
        min_decay=st.floats(0.05, 1.0),
        min_horizon=st.integers(0, H + 2),
        tail_floor=st.floats(0.0, 1.0),
        mode=st.just("rule"),
        placebo_rate=st.just(0.0),
        placebo_severity=st.just(1.0),
    )
)


def finish(cfg):
    cfg = dict(cfg)
    cfg["rel_max"] = cfg["rel_thresh"] + cfg.pop("rel_gap")
    return cfg


@settings(max_examples=60, deadline=None)
@given(cfg=configs, l_dyns=st.lists(st.floats(0.5, 20.0), min_size=1, max_size=12))
def test_rule_matches_reference(cfg, l_dyns):
    cfg = finish(cfg)
    expected = reference_rule(l_dyns, cfg)
    # Examples sitting on a threshold could flip on float32 rounding; skip those.
    assume(min(abs(l - cfg["abs_thresh"]) for l in l_dyns) > 1e-4)
    assume(all(abs(w["ratio"] - cfg["rel_thresh"]) > 1e-4 for w in expected))
    got, _ = run_rule(l_dyns, cfg)
    for want, (mask, metrics) in zip(expected, got):
        assert metrics["active"] == float(want["active"])
        np.testing.assert_allclose(metrics["ema"], want["ema"], rtol=1e-5)
        np.testing.assert_allclose(metrics["ratio"], want["ratio"], rtol=1e-4)
        np.testing.assert_allclose(metrics["severity"], want["sev"], atol=1e-3)
        np.testing.assert_allclose(metrics["gamma"], want["gamma"], atol=1e-3)
        np.testing.assert_allclose(mask, want["mask"], atol=2e-3)
        np.testing.assert_allclose(metrics["horizon_eff"], sum(want["mask"]), atol=2e-2)


@settings(max_examples=80, deadline=None)
@given(cfg=configs, sev=st.floats(0.0, 1.0), length=st.integers(1, 40))
def test_mask_shape_properties(cfg, sev, length):
    cfg = finish(cfg)
    gamma = 1 - sev * (1 - cfg["min_decay"])
    mask = np.asarray(imag_adapt.step_mask(gamma, True, length, cfg["min_horizon"], cfg["tail_floor"]))
    assert mask.shape == (length,)
    assert np.all(mask[: cfg["min_horizon"]] == 1.0)  # full weight before min_horizon
    assert np.all(mask >= np.float32(cfg["tail_floor"]) - 1e-7)  # never below the floor
    assert np.all(mask <= 1.0)
    assert np.all(np.diff(mask) <= 1e-6)  # non-increasing in k
    inactive = np.asarray(imag_adapt.step_mask(gamma, False, length, cfg["min_horizon"], cfg["tail_floor"]))
    assert np.all(inactive == 1.0)  # all ones when inactive


@settings(max_examples=40, deadline=None)
@given(ratio=st.floats(1.0, 3.0), delta=st.floats(1e-6, 1e-3))
def test_mask_is_continuous_in_the_ratio(ratio, delta):
    """A small change of r moves each m_k by at most a Lipschitz bound (no jumps)."""
    cfg = DEFAULTS

    def mask_of(r):
        sev = imag_adapt.severity(r, cfg["rel_thresh"], cfg["rel_max"])
        gamma = 1 - sev * (1 - cfg["min_decay"])
        # Above the threshold the rule is active; at r <= rel_thresh, sev = 0 gives ones,
        # the same as the inactive mask, so activation adds no jump.
        return np.asarray(imag_adapt.step_mask(gamma, r > cfg["rel_thresh"], H, cfg["min_horizon"], cfg["tail_floor"]))

    slope = (H - 1) * (1 - cfg["min_decay"]) / (cfg["rel_max"] - cfg["rel_thresh"])
    assert np.max(np.abs(mask_of(ratio + delta) - mask_of(ratio))) <= slope * delta + 1e-5


def test_full_severity_mask_sums_to_hand_value():
    """sev = 1 with the default settings: 3 ones, then max(0.1, 0.85**k) for k = 3..14."""
    mask = np.asarray(imag_adapt.step_mask(0.85, True, H, 3, 0.1))
    hand = 3 + sum(max(0.1, 0.85**k) for k in range(3, 15))
    assert math.isclose(hand, 6.5118, abs_tol=1e-4)
    np.testing.assert_allclose(mask.sum(), hand, rtol=1e-5)
    np.testing.assert_allclose(mask[3], 0.85**3, rtol=1e-5)


def test_warmup_blocks_activation():
    cfg = dict(DEFAULTS, warmup=3)
    l_dyns = [1.5, 9.0, 9.0, 30.0, 60.0]  # jumps far above the EMA from the second update on
    got, state = run_rule(l_dyns, cfg)
    active = [metrics["active"] for _, metrics in got]
    assert active == [0.0, 0.0, 0.0, 1.0, 1.0]
    assert int(state["count"]) == 5


def test_first_value_seeds_the_ema_and_low_loss_never_activates():
    cfg = dict(DEFAULTS, warmup=0)
    got, _ = run_rule([0.4, 0.9, 0.95], cfg)  # below abs_thresh: the KL is within free bits
    assert got[0][1]["ema"] == pytest.approx(0.4)
    assert all(metrics["active"] == 0.0 for _, metrics in got)
    assert all(np.all(mask == 1.0) for mask, _ in got)


@pytest.mark.parametrize(
    "field,value",
    [
        ("mode", "random"),
        ("placebo_rate", -0.1),
        ("placebo_rate", 1.5),
        ("placebo_severity", 2.0),
        ("rel_max", 1.15),
        ("min_decay", 0.0),
        ("min_decay", 1.2),
        ("tail_floor", -0.1),
        ("tail_floor", 1.5),
        ("warmup", -1),
    ],
)
def test_validate_refuses_meaningless_settings(field, value):
    message = imag_adapt.validate(dict(DEFAULTS, **{field: value}))
    assert message is not None and f"agent.imag_adapt.{field}" in message


def test_validate_accepts_defaults():
    assert imag_adapt.validate(DEFAULTS) is None


# ---- placebo mode ------------------------------------------------------------------


def reference_draw(seed, count):
    """placebo_draw in plain Python integers: MurmurHash3's fmix32 of fmix32(seed)
    xor count * 0x9E3779B1, top 24 bits as a fraction."""
    M = 0xFFFFFFFF

    def fmix(h):
        h ^= h >> 16
        h = (h * 0x85EBCA6B) & M
        h ^= h >> 13
        h = (h * 0xC2B2AE35) & M
        return h ^ (h >> 16)

    h = fmix(fmix(seed & M) ^ ((count * 0x9E3779B1) & M))
    return (h >> 8) / 2**24


def reference_placebo(l_dyns, cfg, seed, length=H):
    """The placebo arm as a loop: the EMA as in the rule, the mask on when the
    update's draw is below the rate (after warmup), at the fixed severity."""
    ema, out = None, []
    gamma = 1 - cfg["placebo_severity"] * (1 - cfg["min_decay"])
    for step, l_dyn in enumerate(l_dyns):
        ema = l_dyn if ema is None else (1 - cfg["alpha"]) * ema + cfg["alpha"] * l_dyn
        active = step >= cfg["warmup"] and reference_draw(seed, step) < cfg["placebo_rate"]
        mask = [
            1.0 if (not active or k < cfg["min_horizon"]) else max(cfg["tail_floor"], gamma**k) for k in range(length)
        ]
        out.append(dict(active=active, ema=ema, mask=mask, gamma=gamma))
    return out


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), count=st.integers(0, 2**31 - 1))
def test_placebo_draw_matches_reference(seed, count):
    got = float(imag_adapt.placebo_draw(np.uint32(seed), np.int32(count)))
    assert got == reference_draw(seed, count)
    assert 0.0 <= got < 1.0


def test_placebo_draws_are_uniform_and_seeded():
    counts = np.arange(20000, dtype=np.int32)
    draws = np.asarray(imag_adapt.placebo_draw(np.uint32(7), counts))
    assert abs(draws.mean() - 0.5) < 0.01
    # Fraction below 0.1: binomial sd is 0.002 at n = 20000; 5 sd of slack.
    assert abs((draws < 0.1).mean() - 0.1) < 0.011
    other = np.asarray(imag_adapt.placebo_draw(np.uint32(8), counts))
    assert (draws != other).mean() > 0.99


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 1000),
    rate=st.floats(0.0, 1.0),
    warmup=st.integers(0, 5),
    sev=st.floats(0.0, 1.0),
    l_dyns=st.lists(st.floats(0.5, 20.0), min_size=1, max_size=12),
)
def test_placebo_matches_reference(seed, rate, warmup, sev, l_dyns):
    cfg = dict(DEFAULTS, mode="placebo", placebo_rate=rate, placebo_severity=sev, warmup=warmup)
    assume(all(abs(reference_draw(seed, i) - rate) > 1e-6 for i in range(len(l_dyns))))
    want = reference_placebo(l_dyns, cfg, seed)
    state = imag_adapt.init_state()
    for w, l_dyn in zip(want, l_dyns):
        mask, state, metrics = imag_adapt.imag_mask(l_dyn, state, cfg, H, np.uint32(seed))
        assert float(metrics["active"]) == float(w["active"])
        np.testing.assert_allclose(float(metrics["ema"]), w["ema"], rtol=1e-5)
        np.testing.assert_allclose(float(metrics["gamma"]), w["gamma"], atol=1e-6)
        np.testing.assert_allclose(np.asarray(mask), w["mask"], atol=2e-5)


def test_placebo_ignores_loss_dyn_and_fires_at_its_rate():
    """Same seed, wildly different loss/dyn: the same updates fire; the fraction
    after warmup is the configured rate (binomial, 5 sd of slack)."""
    cfg = dict(DEFAULTS, mode="placebo", placebo_rate=0.2, warmup=100)
    n = 2100
    flat = np.full(n, 1.2, np.float32)
    jumpy = np.random.default_rng(0).uniform(0.5, 30.0, n).astype(np.float32)
    a, b = jax_scan(cfg, flat), jax_scan(cfg, jumpy)
    np.testing.assert_array_equal(a, b)
    assert not a[:100].any()
    assert abs(a[100:].mean() - 0.2) < 5 * math.sqrt(0.2 * 0.8 / 2000)
    rule = jax_scan(dict(cfg, mode="rule"), flat)
    assert not rule.any()  # a flat loss/dyn never fires the rule


def jax_scan(cfg, l_dyns, seed=3):
    import jax

    def body(state, l_dyn):
        _, state, metrics = imag_adapt.imag_mask(l_dyn, state, cfg, H, np.uint32(seed))
        return state, metrics["active"]

    _, active = jax.lax.scan(body, imag_adapt.init_state(), l_dyns)
    return np.asarray(active) > 0
