"""The checks of the agent's settings, kept apart from the modules that compute with them.

`imag_adapt.py` and `agent.py` import jax; a config is checked (`configs.parse`) before jax
starts, so their settings' checks live here, importing nothing but the standard library.
`imag_adapt.validate` is this module's `validate`.
"""

MODES = ("rule", "placebo")  # agent.imag_adapt.mode
COMPUTE_DTYPES = ("auto", "float32", "bfloat16", "float16")  # jax.compute_dtype (agent.py)


def validate(cfg):
    """Refuse settings the rule cannot mean; returns an error line or None."""
    if cfg["mode"] not in MODES:
        return f"agent.imag_adapt.mode '{cfg['mode']}' is not one of {', '.join(MODES)}"
    if not 0 <= cfg["placebo_rate"] <= 1:
        return f"agent.imag_adapt.placebo_rate ({cfg['placebo_rate']}) must be in [0, 1]"
    if not 0 <= cfg["placebo_severity"] <= 1:
        return f"agent.imag_adapt.placebo_severity ({cfg['placebo_severity']}) must be in [0, 1]"
    if cfg["rel_max"] <= cfg["rel_thresh"]:
        return (
            f"agent.imag_adapt.rel_max ({cfg['rel_max']}) must be greater than "
            f"agent.imag_adapt.rel_thresh ({cfg['rel_thresh']})"
        )
    if not 0 < cfg["min_decay"] <= 1:
        return f"agent.imag_adapt.min_decay ({cfg['min_decay']}) must be in (0, 1]"
    if not 0 <= cfg["tail_floor"] <= 1:
        return f"agent.imag_adapt.tail_floor ({cfg['tail_floor']}) must be in [0, 1]"
    if cfg["warmup"] < 0:
        return f"agent.imag_adapt.warmup ({cfg['warmup']}) must be >= 0"
    if not 0 < cfg["alpha"] <= 1:
        return f"agent.imag_adapt.alpha ({cfg['alpha']}) must be in (0, 1]"
    if cfg["eps"] <= 0:
        return f"agent.imag_adapt.eps ({cfg['eps']}) must be > 0"
    if cfg["min_horizon"] < 0:
        return f"agent.imag_adapt.min_horizon ({cfg['min_horizon']}) must be >= 0"
    return None


def check_compute_dtype(name):
    """None, or one line when `name` is not a known jax.compute_dtype."""
    if name not in COMPUTE_DTYPES:
        return f"unknown --jax.compute_dtype '{name}' (known: {', '.join(COMPUTE_DTYPES)})"
    return None
