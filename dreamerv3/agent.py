"""The DreamerV3 agent: state, one jitted update, policy, report, open loop.

Everything an update changes lives in one pytree `self.state` (params,
optimizer state, slow critic, return-normaliser stats, the adaptive-horizon
rule's state, update counter), so `save()`/`load()` restore a run exactly and
the jitted update can donate it. Data parallel: a Mesh over
`jax.train_devices`, batch dimension sharded, everything else replicated.

The agent's computations are pure functions of arrays: `init_state(seed)`,
`policy_step(params, carry, obs, seed, count)` and `update(state, carry, data, scalars)`.
The methods around them (`policy`, `train`, `report`) hold one run's state; a population
(learner.py) runs the same pure functions under `jax.vmap` for many runs.
"""

import dataclasses

import elements
import jax
import jax.numpy as jnp
import ninjax as nj
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from dreamerv3 import imag_adapt, losses, nets, settings
from dreamerv3 import metrics as metricslib
from dreamerv3 import model as modellib
from dreamerv3 import opt as optlib

f32 = jnp.float32
sg = jax.lax.stop_gradient

# A run's random numbers come from separate streams, each key a function of
# (seed, stream, count) alone. Threefry keys draw the same bits inside and
# outside jax.vmap (XLA's RngBitGenerator keys do not: their bits depend on a
# member's position in the batch), so member k of a population draws exactly
# what a solo run with seed k draws.
RNG_IMPL = "threefry2x32"
STREAMS = {"init": 0, "train": 1, "policy": 2, "report": 3, "openloop": 4}


def stream_key(seed, stream, count=0):
    """Typed key of draw `count` in `stream` (a STREAMS name) of the run with `seed`.
    seed and count: Python ints or uint32 arrays (traced, batched) alike."""
    key = jax.random.key(jnp.asarray(seed, jnp.uint32), impl=RNG_IMPL)
    key = jax.random.fold_in(key, STREAMS[stream])
    return jax.random.fold_in(key, jnp.asarray(count, jnp.uint32))


def run_scalars(config):
    """The per-run values the update and the policy read as arrays instead of
    constants (so that a population's members may differ in them, population.py):
    the seed, the learning rate and the `agent.imag_adapt` block."""
    return {
        "seed": np.uint32(int(config.seed) & 0xFFFFFFFF),
        "lr": np.float32(config.agent.opt.lr),
        "adapt": imag_adapt.as_arrays(config.agent.imag_adapt),
    }


POLICY_CALLS = "policy_calls"  # the save() entry of the policy-call counter


class Agent:
    def __init__(self, obs_space, act_space, config, init_state=True):
        """init_state=False leaves `state` None: a population (learner.py) uses the agent as
        its members' template and makes every member's state itself."""
        self.obs_space, self.act_space, self.config = obs_space, act_space, config
        self.acfg = config.agent
        self.adapt_cfg = dict(config.agent.imag_adapt)
        error = imag_adapt.validate(self.adapt_cfg)
        if error:
            raise ValueError(error)
        self.net_settings = net_settings(config)
        self.H = int(self.acfg.imag_length)
        self.context = int(config.replay_context)
        self.model = modellib.Model(obs_space, act_space, config, name="model")
        self.entropy_bounds = metricslib.entropy_bounds(
            self.model.discrete, self.model.act_dim, self.acfg.policy.minstd, self.acfg.policy.maxstd
        )
        self.obskeys = self.model.imgkeys + self.model.veckeys
        self.optimizer = optlib.make(self.acfg.opt)
        self.scalars = run_scalars(config)
        self._setup_devices()
        self.param_counts = self._count_params()
        self.state = jax.device_put(self.init_state(), self.repl) if init_state else None
        self._policy_params = None
        self._policy_calls = 0
        self._train_fns, self._report_fn, self._openloop_fns = {}, None, {}
        self._policy_fn = self.jit(self.policy_step)

    # ---- construction ---------------------------------------------------------------

    def _setup_devices(self):
        devices = jax.devices()
        train = [devices[i] for i in self.config.jax.train_devices]
        policy = [devices[i] for i in self.config.jax.policy_devices]
        self.mesh = Mesh(np.array(train), ("d",))
        self.repl = NamedSharding(self.mesh, P())
        self.batch = NamedSharding(self.mesh, P("d"))
        self.policy_mesh = Mesh(np.array(policy), ("d",))
        self.policy_repl = NamedSharding(self.policy_mesh, P())
        self.shared_policy = train[: len(policy)] == policy and len(train) == len(policy)

    def _dummy_data(self, B=1, T=2):
        data = {k: jnp.zeros((B, T, *self.obs_space[k].shape), self.obs_space[k].dtype) for k in self.obskeys}
        space = self.act_space["action"]
        data["action"] = jnp.zeros((B, T, *space.shape), space.dtype)
        data["reward"] = jnp.zeros((B, T), f32)
        for k in ("is_first", "is_last", "is_terminal"):
            data[k] = jnp.zeros((B, T), bool)
        return data

    def jit(self, fn, **kwargs):
        """jax.jit of `fn` traced under this agent's network settings, compiled
        with `compiler_options(config)`."""
        options = compiler_options(self.config)
        if options:
            kwargs["compiler_options"] = options
        return jax.jit(nets.with_settings(self.net_settings, fn), **kwargs)

    def _init_params(self, seed=None):
        """Fresh parameters of the run with `seed` (default: this agent's)."""
        seed = int(self.config.seed if seed is None else seed)
        settings = dataclasses.replace(self.net_settings, init_seed=seed)
        init = nets.with_settings(settings, nj.init(self.model.touch))
        return init({}, self._dummy_data(), stream_key(seed & 0xFFFFFFFF, "init"))

    def _count_params(self):
        return tally(jax.eval_shape(self._init_params))

    def init_state(self, seed=None):
        """The state before the first update of the run with `seed` (default: this
        agent's); a population builds each member's with its own seed."""
        params = self._init_params(seed)
        val = {k: v for k, v in params.items() if k.startswith("model/val/")}
        return {
            "params": params,
            "opt": self.optimizer.init(params),
            "slowval": jax.tree.map(jnp.copy, val),
            "retnorm": losses.retnorm_init(),
            "adapt": imag_adapt.init_state(),
            "step": jnp.zeros((), jnp.int32),
        }

    # ---- carries --------------------------------------------------------------------

    def zero_carry(self, B):
        r = self.acfg.rssm
        return {
            "deter": np.zeros((B, r.deter), np.float32),
            "stoch": np.zeros((B, r.stoch, r.classes), np.float32),
            "prevact": np.zeros((B, self.model.act_dim), np.float32),
        }

    def init_policy(self, batch_size):
        return jax.device_put(self.zero_carry(batch_size), self.policy_repl)

    @property
    def ext_space(self):
        """What replay stores with each step besides obs and action (the
        official's ext_space): with replay_context, the policy's posterior state
        after that step's obs; stoch as its class indices (exact for one-hot),
        deter in the compute precision as the official (float16 where that is
        bfloat16: checkpoints hold only numpy's own dtypes; deter is in [-1, 1])."""
        if not self.context:
            return {}
        r = self.acfg.rssm
        index = np.uint8 if r.classes <= 256 else np.int32
        full = self.net_settings.compute_dtype == jnp.float32
        return {
            "dyn/deter": elements.Space(np.float32 if full else np.float16, (r.deter,)),
            "dyn/stoch": elements.Space(index, (r.stoch,), 0, r.classes),
        }

    def init_train(self, batch_size):
        """Training sequences start from the replay context's stored state (or
        zeros with replay_context 0); the carry returned by train() is the last
        posterior state, kept for inspection."""
        return jax.device_put(self.zero_carry(batch_size), self.batch)

    def init_report(self, batch_size):
        return jax.device_put(self.zero_carry(batch_size), self.batch)

    # ---- policy ---------------------------------------------------------------------

    def policy_step(self, params, carry, obs, seed, count):
        """One policy step (pure): carry and obs [E, ...] -> (carry, action [E, ...], the
        replay entries of ext_space [E, ...]); its key is draw `count` of the run's policy stream."""
        key = stream_key(seed, "policy", count)
        _, (carry, action) = nj.pure(self.model.policy_step)(params, carry, obs, key)
        return carry, action, self._entries(carry)

    def _entries(self, state):
        """Posterior state [..., ...] -> the replay entries of ext_space."""
        if not self.context:
            return {}
        space = self.ext_space
        return {
            "dyn/deter": state["deter"].astype(space["dyn/deter"].dtype),
            "dyn/stoch": jnp.argmax(state["stoch"], -1).astype(space["dyn/stoch"].dtype),
        }

    def policy(self, carry, obs, mode="train"):
        """Sample an action for each env; 'train', 'explore' and 'eval' all sample."""
        assert mode in ("train", "explore", "eval"), mode
        if self.shared_policy:
            params = self.state["params"]
        else:
            if self._policy_params is None:
                self._policy_params = jax.device_put(self.state["params"], self.policy_repl)
            params = self._policy_params
        obs = {k: np.asarray(obs[k]) for k in (*self.obskeys, "is_first")}
        count = np.uint32(self._policy_calls & 0xFFFFFFFF)
        self._policy_calls += 1
        carry, action, entries = self._policy_fn(params, carry, obs, self.scalars["seed"], count)
        action = np.asarray(action)
        if self.model.discrete:
            action = action.astype(np.int32)
        return carry, {"action": action}, {k: np.asarray(v) for k, v in entries.items()}

    # ---- training -------------------------------------------------------------------

    def _imag_mask(self, l_dyn, state, adapt, seed):
        """The adaptive-horizon rule (imag_adapt.py); returns the mask applied, the rule's new
        state and metrics. Where `adapt['enabled']` (a bool array: members of a population may
        differ in it) is off, the mask applied is all ones, which leaves the actor-critic loss
        exactly the plain one (x * 1.0 == x), so no second, unmasked pass is needed. The rule's
        state still tracks loss/dyn, but the logged active/mask_mean/horizon_eff are those of
        the mask applied: 0, 1 and H."""
        enabled = adapt["enabled"]
        mask, state, mets = imag_adapt.imag_mask(sg(l_dyn), state, adapt, self.H, seed)
        mask = jnp.where(enabled, mask, jnp.ones_like(mask))
        mets = {
            **mets,
            "active": jnp.where(enabled, mets["active"], 0.0),
            "mask_mean": mask.mean(),
            "horizon_eff": mask.sum(),
        }
        return mask, state, {f"imag_adapt/{k}": v for k, v in mets.items()}

    def _apply_context(self, data):
        """Replay context (the official's _apply_replay_context): the first
        `replay_context` steps only give the start state, their last step's stored
        posterior and action; training uses the steps after them.
        Returns (data [B, T, ...], start or None)."""
        K = self.context
        if not K:
            return data, None
        r = self.acfg.rssm
        start = {
            "deter": data["dyn/deter"][:, K - 1].astype(f32),
            "stoch": jax.nn.one_hot(data["dyn/stoch"][:, K - 1], r.classes, dtype=f32),
            "prevact": self.model.actfeat(data["action"][:, K - 1]),
        }
        rest = {k: v[:, K:] for k, v in data.items() if k not in self.ext_space}
        return rest, start

    def update(self, state, carry, data, scalars, rule=True):
        """One gradient update (pure): (state, carry [B, ...], data [B, K + T, ...], scalars)
        -> (state, carry, metrics, outs). scalars: run_scalars() of the run, arrays (a
        population vmaps this function over its members' states, batches and scalars);
        whether the mask applies is scalars['adapt']['enabled']. rule=False leaves the
        adaptive rule's code out of the program: the plain DreamerV3 update, kept as the
        reference the disabled mask is tested against (bit for bit) and benchmarked by."""
        a = self.acfg
        data, start = self._apply_context(data)
        params = state["params"]
        seeds = jax.random.split(stream_key(scalars["seed"], "train", state["step"]), 3)
        split = lambda prefix: {k: v for k, v in params.items() if k.split("/")[1] in prefix}
        wm_params, ac_params = split(modellib.WM_PARTS), split(modellib.AC_PARTS)

        # World model: forward now, backward after the actor-critic loss, because
        # the replay value loss trains it too (agent.repval_grad, as the official).
        def wm_fn(wm_p):
            _, (loss, aux) = nj.pure(self.model.wm_loss)({**params, **wm_p}, data, seeds[0], start)
            return (loss, aux.pop("feat")), aux

        (wm_total, rep_feat), wm_vjp, wm_aux = jax.vjp(wm_fn, wm_params, has_aux=True)

        # Adaptive imagination horizon: the one call site (imag_adapt.imag_mask).
        adapt = scalars["adapt"]
        if rule:
            imag_mask, adapt_state, adapt_mets = self._imag_mask(
                wm_aux["losses"]["dyn"], state["adapt"], adapt, scalars["seed"]
            )
        else:
            imag_mask, adapt_state, adapt_mets = None, state["adapt"], {}

        # Imagination from every replayed posterior state (no gradients into the model)
        B, T = data["is_first"].shape
        starts = jax.tree.map(lambda x: sg(x.reshape((B * T, *x.shape[2:]))), wm_aux["states"])
        _, traj = nj.pure(self.model.imagine)(params, starts, self.H, seeds[1])
        traj["con"] = traj["con"].at[:, 0].set(1.0 - data["is_terminal"].reshape(-1).astype(f32))
        _, slowval = nj.pure(self.model.value_mean)({**params, **state["slowval"]}, traj["feat"])
        targets, retnorm = losses.imag_targets(
            rew=traj["rew"],
            con=traj["con"],
            val=traj["val"],
            retnorm_state=state["retnorm"],
            discount=self.model.imag_disc,
            lam=a.return_lambda,
            retnorm=dict(a.retnorm),
        )
        targets["slowval"] = slowval
        ret, weight, scale = targets["ret"], targets["weight"], targets["scale"]

        # Actor and critic; the replay value loss's gradient on the replayed
        # features goes back through the world model's backward pass.
        def ac_fn(ac_p, rep_feat, mask):
            rep_feat = rep_feat if a.repval_grad else sg(rep_feat)
            _, (loss, aux) = nj.pure(self.model.ac_loss)(
                {**params, **ac_p}, traj, {**targets, "rep_feat": rep_feat}, data, mask, adapt["mask_value"]
            )
            return loss, aux

        (ac_total, ac_aux), (ac_grads, feat_grad) = jax.value_and_grad(ac_fn, (0, 1), has_aux=True)(
            ac_params, rep_feat, imag_mask
        )
        (wm_grads,) = wm_vjp((jnp.ones_like(wm_total), feat_grad))

        # Optimizer, slow critic, counters
        grads = {**wm_grads, **ac_grads}
        optimizer = optlib.make(a.opt, lr=scalars["lr"])  # this run's lr, as an array
        updates, opt_state = optimizer.update(grads, state["opt"], params)
        new_params = {**params, **jax.tree.map(lambda p, u: p + u, params, updates)}
        rate = a.slow_rate
        slow = {k: (1 - rate) * v + rate * new_params[k] for k, v in state["slowval"].items()}
        new_state = {
            "params": new_params,
            "opt": opt_state,
            "slowval": slow,
            "retnorm": retnorm,
            "adapt": adapt_state,
            "step": state["step"] + 1,
        }

        lossd = {**wm_aux["losses"], **ac_aux["losses"]}
        metrics = {f"loss/{k}": v for k, v in lossd.items()}
        metrics.update(ac_aux["metrics"])
        metrics.update(wm_aux["metrics"])
        metrics.update(adapt_mets)
        # The official's names for the return statistics, policy randomness and
        # optimizer (train/ret becomes the normalised return; the raw one is tar).
        metrics.update(metricslib.return_metrics(ret, retnorm["lo"], scale, ac_aux["outs"]["adv"], slowval))
        metrics["rand/action"] = metricslib.policy_randomness(metrics["ent/action"], self.entropy_bounds)
        metrics.update(metricslib.opt_metrics(wm_total + ac_total, grads, updates, new_params, state["step"] + 1))
        metrics.update(
            {
                "loss/total": wm_total + ac_total,
                "rew": traj["rew"][:, 1:].mean(),
                "con": traj["con"][:, 1:].mean(),
                "retnorm/scale": scale,
                "opt/grad_norm": optlib.global_norm(grads),
                "opt/lr": optlib.schedule(scalars["lr"], a.opt.warmup)(state["step"]),
                "opt/update_norm": optlib.global_norm(updates),
            }
        )
        outs = {
            "pol_weight": ac_aux["outs"]["pol_weight"].mean(0),
            "weight": weight.mean(0),
            "replay": self._entries(wm_aux["states"]),
        }
        new_carry = {**wm_aux["carry"], "prevact": self.model.actfeat(data["action"][:, -1])}
        return new_state, new_carry, metrics, outs

    def _train_fn(self, rule=True):
        if rule not in self._train_fns:
            fn = lambda state, carry, data, scalars: self.update(state, carry, data, scalars, rule)
            self._train_fns[rule] = self.jit(
                fn,
                in_shardings=(self.repl, self.batch, self.batch, self.repl),
                out_shardings=(self.repl, self.batch, self.repl, self.repl),
                donate_argnums=(0,),
            )
        return self._train_fns[rule]

    def host_data(self, data):
        """The batch keys the update reads, as numpy arrays."""
        missing = [k for k in self.ext_space if k not in data]
        if missing:
            raise ValueError(
                f"agent: replay_context {self.context} needs {missing} in the "
                f"batch (stored by the policy; a replay made without them?)"
            )
        keys = (*self.obskeys, "action", "reward", "is_first", "is_last", "is_terminal", *self.ext_space)
        return {k: np.asarray(data[k]) for k in keys}

    def _put_data(self, data):
        return jax.device_put(self.host_data(data), self.batch)

    def train(self, carry, data):
        """One update on data [B, replay_context + T, ...]; returns (carry, outs,
        float metrics). With replay_context, outs['replay'] holds the fresh
        posteriors of the T trained steps and their 'stepid' (when data has one)
        for replay.update()."""
        carry, outs, metrics = self.train_step(carry, data)
        return carry, writeback(outs, data, self.context), metrics

    def train_step(self, carry, data, rule=True):
        """Like train(), (carry, outs, metrics), with every output of the update in outs:
        the per-step actor weights too (for tests and tools). rule: as in update()."""
        fn = self._train_fn(rule)
        self.state, carry, metrics, outs = fn(self.state, carry, self._put_data(data), self.scalars)
        self._policy_params = None
        metrics = {k: float(v) for k, v in jax.device_get(metrics).items()}
        return carry, jax.device_get(outs), metrics

    # ---- report and open loop -------------------------------------------------------

    def _openloop_jit(self, context):
        if context not in self._openloop_fns:

            def fn(params, data, seed, start):
                _, out = nj.pure(self.model.openloop)(params, data, context, seed, start)
                return out

            self._openloop_fns[context] = self.jit(fn)
        return self._openloop_fns[context]

    def openloop(self, data, context, start=None, params=None, seed=None):
        """Observe `context` steps, imagine the rest under data['action'] (uint8 outputs).
        start: None (from a zero state) or the replay context's start state.
        params, seed: another run's parameters and seed (a population member's)."""
        if not self.model.imgkeys:
            raise ValueError("agent.openloop needs an image observation")
        T = np.asarray(data["is_first"]).shape[1]
        if not 0 < context < T:
            raise ValueError(f"agent.openloop: context must be in [1, {T - 1}], got {context}")
        keys = (*self.obskeys, "action", "reward", "is_first", "is_last", "is_terminal")
        data = {k: np.asarray(data[k]) for k in keys}
        params = self.state["params"] if params is None else params
        key = stream_key(self.scalars["seed"] if seed is None else seed, "openloop")
        fn = self._openloop_jit(context)
        return jax.device_get(fn(params, data, key, start))

    def report(self, carry, data, params=None, seed=None):
        """World-model losses on a held batch plus the open-loop video.
        params, seed: another run's parameters and seed (a population member's)."""
        params = self.state["params"] if params is None else params
        seed = self.scalars["seed"] if seed is None else seed
        if self._report_fn is None:

            def fn(params, data, seed):
                data, start = self._apply_context(data)
                _, (_, aux) = nj.pure(self.model.wm_loss)(params, data, seed, start)
                return aux["losses"]

            self._report_fn = self.jit(fn)
        data = self.host_data(data)
        lossd = jax.device_get(self._report_fn(params, data, stream_key(seed, "report")))
        data, start = self._apply_context(data)  # the video starts where the loss does
        metrics = {f"loss/{k}": float(v) for k, v in lossd.items()}
        if self.model.imgkeys:
            n = min(self.acfg.report_openloop, data["is_first"].shape[0])
            T = data["is_first"].shape[1]
            sub = {k: np.asarray(v[:n]) for k, v in data.items()}
            start = start and {k: np.asarray(v[:n]) for k, v in start.items()}
            out = self.openloop(sub, max(1, T // 2), start, params, seed)
            metrics["openloop/image"] = compose_video(out["truth"], out["pred"], max(1, T // 2))
        return carry, metrics

    # ---- checkpoints ----------------------------------------------------------------

    def save(self):
        """The agent's state as named arrays, with the policy-call counter that seeds the
        policy's sampling keys, so a resumed run draws new keys instead of repeating them."""
        return to_saved(jax.device_get(self.state), self._policy_calls)

    def load(self, data):
        state, self._policy_calls = from_saved(data, self.state)
        self.state = jax.device_put(state, self.repl)
        self._policy_params = None


def writeback(outs, data, context, members=False):
    """What replay.update() takes after an update on `data`: outs['replay'] (the fresh posteriors
    of the trained steps) and those steps' 'stepid' (when `data` has one: the steps after the
    first `context`; `members`: data has a member axis in front); {} without a replay context."""
    if not context:
        return {}
    replay = dict(outs["replay"])
    if "stepid" in data:
        stepid = np.asarray(data["stepid"])
        replay["stepid"] = stepid[:, :, context:] if members else stepid[:, context:]
    return {"replay": replay}


def to_saved(state, policy_calls):
    """A state pytree of host arrays -> the checkpoint's named arrays."""
    leaves = jax.tree_util.tree_flatten_with_path(state)[0]
    saved = {jax.tree_util.keystr(path): np.asarray(x) for path, x in leaves}
    saved[POLICY_CALLS] = np.asarray(policy_calls, np.int64)
    return saved


def from_saved(data, like):
    """The checkpoint's named arrays -> (a state pytree of numpy arrays shaped and typed as
    `like`'s leaves, the policy-call counter). A missing or misshapen leaf is a ValueError;
    checkpoints from before the counter was saved start it again at 0."""
    paths, treedef = jax.tree_util.tree_flatten_with_path(like)
    leaves = []
    for path, old in paths:
        key = jax.tree_util.keystr(path)
        if key not in data:
            raise ValueError(f"agent.load: checkpoint lacks {key}")
        new = np.asarray(data[key])
        if new.shape != tuple(old.shape):
            raise ValueError(f"agent.load: {key} has shape {new.shape}, expected {tuple(old.shape)}")
        leaves.append(new.astype(old.dtype))
    calls = int(data[POLICY_CALLS]) if POLICY_CALLS in data else 0
    return jax.tree_util.tree_unflatten(treedef, leaves), calls


def tally(shapes):
    """Parameter count per module ('enc', 'dyn', ...) plus 'total'."""
    counts = {}
    for key, value in shapes.items():
        part = key.split("/")[1]
        counts[part] = counts.get(part, 0) + int(np.prod(value.shape))
    counts["total"] = sum(counts.values())
    return counts


def compiler_options(config):
    """XLA options of the agent's jits: on CPU, the ops handed to YNNPACK
    (`jax.cpu_ynn_fusions`); None for XLA's own choice ([default]) or off CPU."""
    fusions = list(config.jax.cpu_ynn_fusions)
    if config.jax.platform != "cpu" or fusions == ["default"]:
        return None
    return {"xla_cpu_experimental_ynn_fusion_type": ",".join(fusions)}


COMPUTE_DTYPES = settings.COMPUTE_DTYPES


def compute_dtype(config):
    """`jax.compute_dtype`, with 'auto' resolved: bfloat16 on accelerators (the
    official's choice; tensor cores), float32 on CPU, where XLA emulates bfloat16
    matmuls and they run slower than float32."""
    name = config.jax.compute_dtype
    assert name in COMPUTE_DTYPES, (COMPUTE_DTYPES, name)
    if name == "auto":
        name = "float32" if config.jax.platform == "cpu" else "bfloat16"
    return jnp.dtype(name)


def net_settings(config):
    return nets.Settings(compute_dtype(config), config.jax.conv_impl, int(config.seed))


def count_params(obs_space, act_space, config):
    """Per-module parameter counts without allocating parameters (jax.eval_shape)."""
    agent = Agent.__new__(Agent)
    agent.obs_space, agent.act_space, agent.config = obs_space, act_space, config
    agent.net_settings = net_settings(config)
    agent.model = modellib.Model(obs_space, act_space, config, name="model")
    agent.obskeys = agent.model.imgkeys + agent.model.veckeys
    return tally(jax.eval_shape(agent._init_params))


def compose_video(truth, pred, context, border=2):
    """[B, T, H, W, 3] uint8 truth and prediction -> [T, 3 (H+2b), B (W+2b), 3] video.

    Rows truth / model / error with error = (pred - true + 255) / 2; frames
    before `context` get a green border (observed), later ones red (imagined).
    """
    truth, pred = truth.astype(np.int32), pred.astype(np.int32)
    error = (pred - truth + 255) // 2
    B, T = truth.shape[:2]
    rows = np.stack([truth, pred, error], 2)  # [B, T, 3, H, W, C]
    b = border
    color = np.zeros((T, 3), np.int32)
    color[:context] = (0, 255, 0)
    color[context:] = (255, 0, 0)
    padded = np.pad(rows, ((0, 0), (0, 0), (0, 0), (b, b), (b, b), (0, 0)))
    mask = np.ones(padded.shape[3:5], bool)
    mask[b:-b, b:-b] = False
    padded[:, :, :, mask, :] = color[None, :, None, None, :]
    B, T, R, Hp, Wp, C = padded.shape
    video = padded.transpose(1, 2, 3, 0, 4, 5).reshape(T, R * Hp, B * Wp, C)
    return video.astype(np.uint8)
