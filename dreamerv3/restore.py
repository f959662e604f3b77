"""Building an agent, and rebuilding a finished run's agent from its run dir.

Separate from the run loop (run.py) so that analysis can load a world model from a
checkpoint without importing the trainer's loop.
"""

import pathlib

from dreamerv3 import checkpoint as ckptlib
from dreamerv3 import configs as configlib
from dreamerv3 import envs as envlib
from dreamerv3.errors import UsageError


def build_agent(obs_space, act_space, config, agent_cls=None):
    """The agent for these spaces; a setting it rejects becomes a UsageError."""
    if agent_cls is None:
        from dreamerv3.agent import Agent as agent_cls
    act_space = {k: v for k, v in act_space.items() if k != "reset"}
    try:
        return agent_cls(obs_space, act_space, config)
    except ValueError as e:
        raise UsageError(str(e).strip().splitlines()[0] if str(e).strip() else repr(e))


def load_agent(logdir, agent_cls=None):
    """Rebuild a run's agent from `<logdir>/config.yaml` + its newest checkpoint.
    Keys that configs.yaml gained after the run was made take their defaults;
    keys it has since dropped are ignored."""
    logdir = pathlib.Path(logdir)
    config = configlib.load_saved(logdir / "config.yaml")
    source = ckptlib.resolve(logdir)
    data = ckptlib.read_item(source, "agent")  # first: a bad file fails before a build
    if not isinstance(data, dict):
        raise ckptlib.CheckpointError(f"{source}/agent.pkl: holds a {type(data).__name__}, expected a dict of arrays")
    envlib.check_task(config.task)  # a registered id only: gymnasium imports '<module>:<Env>' ids
    obs_space, act_space = envlib.spaces(config.task, config)
    agent = build_agent(obs_space, act_space, config, agent_cls)
    agent.load(data)
    return agent, config
