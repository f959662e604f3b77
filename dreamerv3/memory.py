"""What a population needs in memory, estimated before anything starts.

Host: each member's replay (the steps it will hold: the smaller of its
capacity and the steps the run collects, times the bytes of one stored step)
plus its agent state. Device: the members' agent states (parameters, the
optimizer's two moments, the slow critic); the update's activations come on
top and are not estimated, so a population that passes can still run out of
device memory in its first update (XLA then says so).
"""

import math

import jax
import numpy as np
import psutil

from dreamerv3 import agent as agentlib

HEADROOM = 0.9  # share of the available memory a population may plan to use


def step_bytes(obs_space, act_space, config):
    """Bytes of one step in replay: observation, action and the stored latent state."""
    total = sum(np.dtype(s.dtype).itemsize * math.prod(s.shape) for s in obs_space.values())
    total += sum(np.dtype(s.dtype).itemsize * math.prod(s.shape) for s in act_space.values())
    if int(config.replay_context):
        r = config.agent.rssm
        deter = 4 if agentlib.compute_dtype(config) == np.float32 else 2
        total += deter * r.deter + (1 if r.classes <= 256 else 4) * r.stoch
    return total


def replay_steps(config):
    """Steps one member's replay will hold at most: capacity (whole chunks per env)
    or what the run collects, whichever is smaller."""
    envs, chunk = int(config.run.envs), int(config.replay.chunksize)
    per_env = max(1, int(config.replay.size) // envs)
    capacity = -(-per_env // chunk) * chunk
    collected = -(-int(min(float(config.run.steps), 1e15)) // envs)
    return envs * min(capacity, -(-collected // chunk) * chunk)


def state_bytes(obs_space, act_space, config):
    """Bytes of one member's agent state: float32 parameters, two optimizer moments, and
    the slow critic (at most the parameters again)."""
    counts = agentlib.count_params(obs_space, act_space, config)
    return 4 * 4 * counts["total"]


def check_population(configs, obs_space, act_space):
    """None if M members fit this machine's memory, else one line saying what they need."""
    base, M = configs[0], len(configs)
    replay = replay_steps(base) * step_bytes(obs_space, act_space, base)
    state = state_bytes(obs_space, act_space, base)
    host_need = M * (replay + state)
    available = psutil.virtual_memory().available
    if host_need > HEADROOM * available:
        return (
            f"population: {M} members need about {_gb(host_need)} of host memory "
            f"({_gb(replay)} of replay and {_gb(state)} of agent state each), more than "
            f"{HEADROOM:.0%} of the {_gb(available)} available; use fewer members, a smaller "
            "--replay.size or fewer --run.steps"
        )
    limit = device_limit()
    if limit and M * state > HEADROOM * limit:
        return (
            f"population: {M} members need about {_gb(M * state)} of device memory for their "
            f"agent states alone, more than {HEADROOM:.0%} of the device's {_gb(limit)}; "
            "use fewer members or a smaller model"
        )
    return None


def device_limit():
    """Bytes the first accelerator may allocate, or None on the CPU (host memory counts)."""
    device = jax.devices()[0]
    if device.platform == "cpu":
        return None
    stats = device.memory_stats() or {}
    return stats.get("bytes_limit")


def _gb(n):
    return f"{n / 1024**3:.1f} GiB"


def main(argv=None):
    """python -m dreamerv3.memory [trainer flags]: one member's replay and agent state in
    bytes for a config, and how many members fit in a given amount of memory."""
    import sys

    from dreamerv3 import configs as configlib
    from dreamerv3 import envs as envlib

    argv = sys.argv[1:] if argv is None else argv
    config = configlib.parse([*argv, "--logdir", "."] if "--logdir" not in argv else argv)
    obs_space, act_space = envlib.spaces(config.task, config)
    act_space = {k: v for k, v in act_space.items() if k != "reset"}
    replay = replay_steps(config) * step_bytes(obs_space, act_space, config)
    state = state_bytes(obs_space, act_space, config)
    print(
        f"{config.task}, {replay_steps(config):,} replay steps per member: replay "
        f"{_gb(replay)}, agent state {_gb(state)} per member"
    )
    for gib in (24, 128):
        print(
            f"members that fit in {gib} GiB of host memory at {HEADROOM:.0%}: "
            f"{int(HEADROOM * gib * 1024**3 // (replay + state))}"
        )


if __name__ == "__main__":
    main()
