"""The training loop (`train`: scripts train and train_eval) and `eval_only`.

One loop trains M members in lock-step: a solo run is M = 1, a population
(population.py) M > 1. Each member has what a run has: its envs and driver,
replay, step counter, bookkeeping, logger and checkpoint in its own run dir.
The learner (learner.py) acts for every member's envs in one call and trains
every member in one update on its own replayed batch. Members share the
schedule, so their step counters, update budgets and clocks move together.

Envs are stepped in lock-step; every agent step adds one transition per env
to replay (obs plus the action chosen at that obs, the official convention,
and with `replay_context` the policy's latent state after that obs). Each
update samples batch_length + replay_context steps per sequence; the learner
returns the batch's fresh posteriors, which are written back into replay.
Updates are interleaved at `run.train_ratio` replayed steps per agent step:
one update of batch_size x batch_length steps every
batch_size * batch_length / train_ratio agent steps, once `run.train_fill`
steps are collected. Logging, reports and checkpoints are checked at
"opportunities", every OPPORTUNITY loop iterations, against their clocks in
seconds (0 = at every opportunity). A checkpoint is also written at the end.

Resume: each member keeps its last KEEP complete checkpoints. Every member is
loaded from the newest step that all of them hold and that loads: a damaged
checkpoint (a truncated file, weights of another model size) is skipped with one
warning line for the step before it, and a kill between two members' saves
leaves some members one checkpoint ahead. Newer folders are removed and the
logs trimmed to that step (logs.trim), so the members stay in lock-step and no
episode is written twice.
"""

import concurrent.futures
import os
import pathlib
import sys
import time

import elements
import numpy as np

from dreamerv3 import checkpoint as ckptlib
from dreamerv3 import envs as envlib
from dreamerv3 import learner as learnerlib
from dreamerv3 import logs, memory
from dreamerv3 import metrics as metricslib
from dreamerv3 import replay as replaylib
from dreamerv3.errors import ResumeError, UsageError
from dreamerv3.restore import build_agent

OPPORTUNITY = 10  # loop iterations between checks of the log/report/save clocks
KEEP = 2  # complete checkpoints each run keeps (see the module doc)


def make_envs(config, count, offset=0):
    """Envs `offset..offset+count-1`; a bad env.* setting becomes a UsageError."""
    try:
        return [envlib.make_env(config.task, config, offset + i) for i in range(count)]
    except ValueError as e:
        raise UsageError(str(e))


def make_logger(config, logdir, step, repeat, terminal=True):
    try:
        return logs.make_logger(logdir, step, repeat, terminal=terminal, cfg=config.logger)
    except ValueError as e:
        raise UsageError(str(e))


class Bookkeeping:
    """Loop state that must survive a resume, saved in the checkpoint."""

    def __init__(self):
        self.budget = 0.0  # fractional updates owed to the train ratio
        self.updates = 0  # gradient updates done
        self.episodes = 0  # training episodes written to scores.jsonl

    def save(self):
        return {"budget": self.budget, "updates": self.updates, "episodes": self.episodes}

    def load(self, data):
        self.budget = data["budget"]
        self.updates = data["updates"]
        self.episodes = data["episodes"]


class Driver:
    """Steps a list of envs in lock-step and tracks their episodes."""

    def __init__(self, envs, act_space):
        self.envs = envs
        self.act_space = {k: v for k, v in act_space.items() if k != "reset"}
        self.score = np.zeros(len(envs), np.float64)
        self.length = np.zeros(len(envs), np.int64)
        self.rewards = [[] for _ in envs]  # rewards of each env's current episode
        self.restart()

    def restart(self):
        """Start a fresh episode in every env."""
        reset = {k: np.zeros(v.shape, v.dtype) for k, v in self.act_space.items()}
        self.obs = [env.step({**reset, "reset": True}) for env in self.envs]
        self.score[:], self.length[:] = 0.0, 0
        self.rewards = [[] for _ in self.envs]

    def batch(self):
        return {k: np.stack([o[k] for o in self.obs]) for k in self.obs[0]}

    def step(self, acts, on_transition=None, on_episode=None):
        """Apply acts [n_envs, ...]; returns nothing, calls the callbacks. Keys of
        acts that are not actions (the policy's outputs) go to on_transition only."""
        for i, env in enumerate(self.envs):
            obs = self.obs[i]
            act = {k: np.asarray(acts[k][i]) for k in self.act_space}
            if obs["is_last"]:
                act = {k: np.zeros_like(v) for k, v in act.items()}
            extra = {k: np.asarray(v[i]) for k, v in acts.items() if k not in self.act_space}
            on_transition and on_transition({**obs, **act, **extra}, i)
            new = env.step({**act, "reset": False})
            if new["is_first"]:
                self.score[i], self.length[i] = 0.0, 0
                self.rewards[i] = []
            else:
                self.score[i] += float(new["reward"])
                self.length[i] += 1
                self.rewards[i].append(float(new["reward"]))
            if new["is_last"] and on_episode:
                on_episode(self.score[i], int(self.length[i]), i)
            self.obs[i] = new

    def close(self):
        for env in self.envs:
            env.close()


class Member:
    """One run of the loop: everything it keeps per run dir, but the learner."""

    def __init__(self, config, index):
        self.config, self.index = config, index
        self.logdir = pathlib.Path(config.logdir)
        self.logdir.mkdir(parents=True, exist_ok=True)
        self.repeat = envlib.frames_per_step(config.task, config)
        self.envs = make_envs(config, config.run.envs)
        K, T = int(config.replay_context), int(config.batch_length)
        self.replay = replaylib.Replay(
            config.replay.size,
            config.replay.chunksize,
            len(self.envs),
            config.seed,
            length=T + K,
            online=config.replay.online,
        )
        self.step = elements.Counter()
        self.book = Bookkeeping()
        self.ckpt = ckptlib.Checkpoint(self.logdir / "ckpt", keep=KEEP)
        self.agg = elements.Agg()
        self.epstats = elements.Agg()  # per-episode statistics, logged as epstats/*
        self.logger = None
        self.driver = None
        self.on_episode = None

    def start(self, act_space):
        # The terminal shows the first member's lines; every member writes its files.
        self.logger = make_logger(self.config, self.logdir, self.step, self.repeat, terminal=self.index == 0)
        self.driver = Driver(self.envs, act_space)
        self.on_episode = episode_callback(self.logger, self.book, self.driver, self.epstats)


def make_learner(configs, obs_space, act_space, agent_cls=None):
    """Solo (the Agent's own update) for one member, else the vmapped Population.
    agent_cls: another agent class (tests): solo-shaped for one member, population-shaped
    (learner.Population's interface) for several."""
    try:
        if len(configs) == 1:
            return learnerlib.Solo(build_agent(obs_space, act_space, configs[0], agent_cls))
        return (agent_cls or learnerlib.Population)(obs_space, act_space, configs)
    except ValueError as e:
        raise UsageError(str(e).strip().splitlines()[0] if str(e).strip() else repr(e))


def spaces(config):
    """(obs_space, act_space without 'reset') of the config's task; UsageError for a bad env.*."""
    try:
        obs_space, act_space = envlib.spaces(config.task, config)
    except ValueError as e:
        raise UsageError(str(e))
    return obs_space, {k: v for k, v in act_space.items() if k != "reset"}


def check_memory(configs):
    """UsageError (one line) when a population's members would not fit this machine's memory:
    checked before any member's run dir is made."""
    if len(configs) > 1:
        problem = memory.check_population(configs, *spaces(configs[0]))
        if problem:
            raise UsageError(problem)


def train(configs, agent_cls=None, with_eval=False):
    """Train the members whose configs are `configs` (one for a solo run)."""
    base, M = configs[0], len(configs)
    obs_space, act_space = spaces(base)
    members = [Member(c, k) for k, c in enumerate(configs)]
    learner = make_learner(configs, obs_space, act_space, agent_cls)
    print_params(learner)
    if M > 1:
        print(f"Population of {M} members; run dirs: {members[0].logdir} ... {members[-1].logdir}")
    for k, m in enumerate(members):
        for name, obj in (("step", m.step), ("agent", learner.member(k)), ("replay", m.replay), ("book", m.book)):
            m.ckpt.register(name, obj)
    resume(members, learner)
    for m in members:
        envlib.fast_forward(m.envs, int(m.step))  # a dynamics shift that was due stays applied
        m.start(act_space)
    lead = members[0]  # every member's counters equal the lead's
    eval_driver = None
    if with_eval:
        eval_driver = Driver(make_envs(base, base.run.eval_envs, 1000), act_space)

    B, T, K = base.batch_size, base.batch_length, int(base.replay_context)
    fill = base.run.train_fill or B * T
    E = len(lead.envs)
    clocks = {k: elements.when.Clock(base.run[k]) for k in ("log_every", "report_every", "save_every")}
    eval_clock = elements.when.Clock(base.run.eval_every, first=False)
    usage = elements.Usage(**base.usage)
    timer = elements.Timer()  # wall time per part of the loop, logged as timer/<part>/*
    fps = {"policy": [time.time(), int(lead.step)], "train": [time.time(), 0]}
    policy_carry = learner.init_policy(E)
    train_carry = learner.init_train(B)
    threads = int(base.run.env_threads) or min(M, os.cpu_count() or 1)
    pool = concurrent.futures.ThreadPoolExecutor(threads) if threads > 1 else None

    def step_member(k, acts):  # one member's envs, replay and episode logs (a thread's task)
        m = members[k]
        m.step.increment(E)  # before the callbacks: episodes log the step they end at
        m.driver.step({key: v[k] for key, v in acts.items()}, m.replay.add, m.on_episode)

    start = time.time()

    iteration = 0
    while int(lead.step) < base.run.steps:
        if base.run.duration and time.time() - start >= base.run.duration:
            print(f"Stopping: run.duration of {base.run.duration}s reached.")
            break
        with timer.section("policy"):
            obs = learnerlib.stack([m.driver.batch() for m in members])
            policy_carry, acts, outs = learner.policy(policy_carry, obs)
            acts = {**outs, **acts}
        with timer.section("env"):
            if pool:
                list(pool.map(step_member, range(M), [acts] * M))
            else:
                for k in range(M):
                    step_member(k, acts)

        if int(lead.step) >= fill and lead.replay.ready(T + K):
            for m in members:
                m.book.budget += E * base.run.train_ratio / (B * T)
            while lead.book.budget >= 1:
                with timer.section("sample"):
                    batch = learnerlib.stack([m.replay.sample(B) for m in members])
                with timer.section("train"):  # the metrics come to the host: the update has finished
                    train_carry, outs, metrics = learner.train(train_carry, batch)
                with timer.section("writeback"):
                    for k, m in enumerate(members):
                        m.agg.add(scalars({key: v[k] for key, v in metrics.items()}))
                        if "replay" in outs:
                            m.replay.update({key: v[k] for key, v in outs["replay"].items()})
                        m.book.budget -= 1
                        m.book.updates += 1
                fps["train"][1] += B * T

        iteration += 1
        if iteration % OPPORTUNITY:
            continue
        if lead.book.updates and clocks["report_every"]():
            for k, m in enumerate(members):
                write_report(m.replay, m.config, m.logger, lambda batch: learner.report(k, batch))  # noqa: B023 (called within this iteration)
        if eval_driver and eval_clock():
            log_eval(learner.agent, eval_driver, base, lead.logger)
        if clocks["log_every"]():
            log_train(members, fps, usage, timer)
        if clocks["save_every"]():
            save(members, learner)

    if eval_driver:
        log_eval(learner.agent, eval_driver, base, lead.logger)
        eval_driver.close()
    if int(lead.step) != fps["policy"][1]:
        log_train(members, fps, usage, timer)
    if lead.ckpt.latest() is None or lead.ckpt.saved_step != int(lead.step):
        save(members, learner)
    pool and pool.shutdown()
    for m in members:
        logs.close(m.logger)
        m.driver.close()
    each = f" in each of {M} members" if M > 1 else ""
    print(f"Finished at agent step {int(lead.step)} ({int(lead.step) * lead.repeat} env frames){each}.")


def scalars(metrics):
    return {k: np.asarray(v) for k, v in metrics.items() if np.asarray(v).ndim == 0}


def episode_callback(logger, book, driver, epstats):
    """The driver's on_episode of a training run: one episode/* line per episode, the count
    the checkpoint keeps, the episode's reward rate."""

    def on_episode(score, length, index):
        logger.add({"score": score, "length": length}, prefix="episode")
        logger.write()  # one line per episode, even when two end at one step
        book.episodes += 1
        rate = metricslib.reward_rate(driver.rewards[index])
        if rate is not None:
            epstats.add({"reward_rate": rate})

    return on_episode


def resume(members, learner):
    """Load every member at the newest step at which all of them hold a complete checkpoint
    that loads (see the module doc); or, for a new solo run, --run.from_checkpoint's weights.
    ResumeError (one line, exit 2) when no such step loads."""
    held = [{ckptlib.step_of(p): p for p in ckptlib.complete_folders(m.ckpt.directory)} for m in members]
    if not any(held):
        source = members[0].config.run.from_checkpoint
        if source:  # a solo run only (population.py refuses it)
            source = ckptlib.resolve(source)
            ckptlib.load_item(learner.member(0), source, "agent")
            print(f"Loaded agent weights from {source}.")
        return
    solo = len(members) == 1
    common = sorted(set(held[0]).intersection(*held[1:]), reverse=True)
    if not common:
        found = ", ".join(f"{m.logdir}: {sorted(h) or 'none'}" for m, h in zip(members, held))
        raise UsageError(
            "population: the members hold no checkpoint of one same step, so they "
            f"cannot resume in lock-step (steps held: {found}); remove the run dirs "
            "to start again"
        )
    for i, step in enumerate(common):
        problem = _load_all(members, held, step)
        if problem is None:
            break
        if i + 1 == len(common):
            if solo:
                raise ResumeError(f"{problem} (no earlier complete checkpoint to resume from)")
            raise ResumeError(
                f"population: {problem}, and no earlier step at which every member holds a "
                "complete checkpoint; remove the run dirs to start again"
            )
        if solo:
            print(
                f"Warning: {problem}; resuming from the one before it, {held[0][common[i + 1]].name}", file=sys.stderr
            )
        else:
            print(
                f"Warning: {problem}; resuming every member from step {common[i + 1]}, the "
                "newest step before it that all of them hold",
                file=sys.stderr,
            )
    for m, h in zip(members, held):
        for later in sorted(s for s in h if s > step):
            ckptlib.remove_folder(h[later])  # saves of a step not resumed from: another timeline
        rewind_logs(m, solo)
    if solo:
        print(f"Resumed from {held[0][step]} at agent step {step}.")
    else:
        print(f"Resumed {len(members)} members at agent step {step}.")


def _load_all(members, held, step):
    """Load every member's checkpoint of `step`; None, or why one of them does not load."""
    for m, h in zip(members, held):
        why = m.ckpt.try_load(h[step])
        if why is not None:
            return f"checkpoint {h[step]}: {why}"
    return None


def rewind_logs(member, solo=True):
    """After a resume: trim the member's logs to its step (no episode is written twice), and
    warn in one line when scores.jsonl still disagrees with the checkpoint's episode count (a
    log lost or edited by hand; the run goes on)."""
    m = member
    logs.trim(m.logdir, int(m.step) * m.repeat)
    written = logs.count_lines(m.logdir / "scores.jsonl")
    if "jsonl" in m.config.logger.outputs and written != m.book.episodes:
        where = "scores.jsonl" if solo else f"{m.logdir}/scores.jsonl"
        print(f"Warning: {where} has {written} episodes, checkpoint counted {m.book.episodes}.")


def write_report(replay, config, logger, report_fn):
    """report/* from one report batch of `replay`; report_fn(batch) -> one member's metrics."""
    length = config.report_length + config.replay_context
    batch = replay.sample(config.batch_size, length, mode="report")
    metrics = {k: np.asarray(v) for k, v in report_fn(batch).items()}
    logger.add(logs.scope_safe(metrics), prefix="report")


def policy_acts(agent, carry, obs, mode):
    """An Agent's actions plus the policy's outputs (eval episodes)."""
    carry, act, outs = agent.policy(carry, obs, mode=mode)
    return carry, {k: np.asarray(v) for k, v in {**outs, **act}.items()}


def run_eval_episodes(agent, driver, episodes, mode="eval"):
    """Play until `episodes` episodes finish; returns [(score, length)]."""
    results = []
    driver.restart()
    carry = agent.init_policy(len(driver.envs))
    collect = lambda score, length, i: results.append((float(score), length))
    while len(results) < episodes:
        carry, acts = policy_acts(agent, carry, driver.batch(), mode)
        driver.step(acts, on_episode=collect)
    return results[:episodes]


def log_eval(agent, driver, config, logger):
    for score, length in run_eval_episodes(agent, driver, config.run.eval_eps):
        logger.add({"score": score, "length": length}, prefix="eval_episode")
        logger.write()


def log_train(members, fps, usage, timer):
    """Each member's train/*, epstats/*, replay/*, as the official logs them, and the loop's
    shared usage/*, fps/* (agent steps of one member per second, replayed steps per second)
    and timer/<part>/{mean,frac,count}: seconds per call, share of the interval's wall time
    and calls of each part of the loop (policy, env, sample, train, writeback)."""
    stats = usage.stats()
    times = timer_stats(timer)
    rates = take_rates(fps, int(members[0].step), time.time())
    for m in members:
        m.logger.add(m.agg.result(), prefix="train")
        m.logger.add(m.epstats.result(), prefix="epstats")
        m.logger.add(stats, prefix="usage")
        m.logger.add(times, prefix="timer")
        m.logger.add(rates, prefix="fps")
        m.logger.add(m.replay.stats(), prefix="replay")
        m.logger.write()


def timer_stats(timer):
    """timer/<part>/{mean,frac,count} of the loop's timer (its other statistics are not logged)."""
    return {k: v for k, v in timer.stats().items() if k.rsplit("/", 1)[-1] in ("mean", "frac", "count")}


def take_rates(fps, step, now):
    """fps/policy (agent steps/s) and fps/train (replayed steps/s) since the last call, and
    both clocks restarted at `now`. fps: {'policy': [time, step], 'train': [time, steps]}."""
    policy_time, policy_step = fps["policy"]
    rates = {
        "policy": (step - policy_step) / max(1e-9, now - policy_time),
        "train": fps["train"][1] / max(1e-9, now - fps["train"][0]),
    }
    fps["policy"] = [now, step]
    fps["train"] = [now, 0]
    return rates


def save(members, learner):
    """A checkpoint of every member. Episodes are flushed first: a checkpoint promises its
    scores.jsonl is complete up to its step, which is what makes resume exact."""
    with learner.on_host():
        for m in members:
            m.logger.write()
            for output in m.logger.outputs:
                flush(output)
            m.ckpt.save(int(m.step))


def flush(output):
    """Wait for an output's background write and raise what it raised (a full disk): elements'
    `wait` drops it, and a checkpoint must not follow a failed log write."""
    if hasattr(output, "wait"):
        output.wait()
    future = getattr(output, "_future", None)  # elements.logger.AsyncOutput's last write
    future and future.result()


def eval_only(config, agent_cls=None):
    if not config.run.from_checkpoint:
        raise UsageError("script eval_only needs --run.from_checkpoint <run dir or checkpoint>")
    logdir = pathlib.Path(config.logdir)
    logdir.mkdir(parents=True, exist_ok=True)
    repeat = envlib.frames_per_step(config.task, config)
    envs = make_envs(config, config.run.envs)
    agent = build_agent(envs[0].obs_space, envs[0].act_space, config, agent_cls)
    print_params(agent)
    source = ckptlib.resolve(config.run.from_checkpoint)
    ckptlib.load_item(agent, source, "agent")
    print(f"Loaded agent weights from {source}.")
    step = elements.Counter()
    logger = make_logger(config, logdir, step, repeat)
    driver = Driver(envs, envs[0].act_space)
    carry = agent.init_policy(len(envs))
    start = time.time()

    def on_episode(score, length, index):
        logger.add({"score": score, "length": length}, prefix="episode")
        logger.write()

    while int(step) < config.run.steps:
        if config.run.duration and time.time() - start >= config.run.duration:
            break
        carry, acts = policy_acts(agent, carry, driver.batch(), "eval")
        step.increment(len(envs))
        driver.step(acts, on_episode=on_episode)
    logs.close(logger)
    driver.close()


def print_params(agent):
    counts = dict(getattr(agent, "param_counts", {}) or {})
    total = counts.pop("total", sum(counts.values()))
    parts = ", ".join(f"{k} {int(v):,}" for k, v in counts.items())
    print(f"Parameter count: total {int(total):,}" + (f" ({parts})" if parts else ""))


SCRIPTS = {
    "train": lambda configs, agent_cls=None: train(configs, agent_cls),
    "train_eval": lambda configs, agent_cls=None: train(configs, agent_cls, with_eval=True),
    "eval_only": lambda configs, agent_cls=None: eval_only(configs[0], agent_cls),
}
