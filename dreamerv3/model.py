"""All networks of the agent in one ninjax module, with the impure pieces of the
update: world-model loss, imagination, actor-critic loss, policy step, open loop.

The agent (agent.py) calls these through `nj.pure` with an explicit parameter
dict; parameter keys start with `model/<part>/` where part is one of
enc, dyn, dec, rew, con (world model) and pol, val (actor and critic).
Shape letters: B batch, T time, N = B*T imagination starts, H imagined steps.
"""

import jax
import jax.numpy as jnp
import ninjax as nj

from dreamerv3 import losses, nets, rssm
from dreamerv3 import metrics as metricslib

f32 = jnp.float32
sg = jax.lax.stop_gradient
WM_PARTS = ("enc", "dyn", "dec", "rew", "con")
AC_PARTS = ("pol", "val")


def kwargs(cfg):
    """Config block -> constructor kwargs (lists become tuples for ninjax fields)."""
    return {k: tuple(v) if isinstance(v, (list, tuple)) else v for k, v in dict(cfg).items()}


class Model(nj.Module):
    def __init__(self, obs_space, act_space, config):
        a = config.agent
        self.config = config
        space = act_space["action"]
        self.discrete = bool(space.discrete)
        self.act_dim = int(space.classes) if self.discrete else int(space.shape[-1])
        self.imgkeys, self.veckeys = nets.obs_keys(obs_space)
        self.enc = nets.Encoder(obs_space, **kwargs(a.enc), name="enc")
        self.dyn = rssm.RSSM(self.act_dim, **kwargs(a.rssm), name="dyn")
        self.dec = nets.Decoder(obs_space, a.rssm.deter, **kwargs(a.dec), name="dec")
        self.rew = nets.Head(kind="twohot", **kwargs(a.rewhead), name="rew")
        self.con = nets.Head(kind="binary", **kwargs(a.conhead), name="con")
        kind = "categorical" if self.discrete else "normal"
        self.pol = nets.Head(kind=kind, size=self.act_dim, **kwargs(a.policy), name="pol")
        self.val = nets.Head(kind="twohot", **kwargs(a.value), name="val")
        self.scales = dict(a.loss_scales)
        self.disc = 1.0 - 1.0 / a.horizon
        # With contdisc the continue head predicts the discount too (the official's).
        self.con_discount = self.disc if a.contdisc else 1.0
        self.imag_disc = 1.0 if a.contdisc else self.disc

    # ---- actions --------------------------------------------------------------------

    def actfeat(self, action):
        """Env action (int index or float vector) -> features fed to the dynamics."""
        if self.discrete:
            return jax.nn.one_hot(action.astype(jnp.int32), self.act_dim, dtype=f32)
        return action.astype(f32)

    def actindex(self, feat):
        return jnp.argmax(feat, -1) if self.discrete else feat

    # ---- world model ----------------------------------------------------------------

    def observe(self, data, key, start=None):
        """Posterior over a replayed batch. start: None (every sequence starts from
        a zero state, is_first forced at t=0) or the replay context's state
        {deter, stoch, prevact} [B, ...] of the step before the sequence."""
        B, T = data["is_first"].shape
        tokens = self.enc(data, bdims=2)
        act = self.actfeat(data["action"])
        resets = data["is_first"].astype(bool)
        if start is None:
            first, carry = jnp.zeros_like(act[:, :1]), self.dyn.initial(B)
            resets = resets.at[:, 0].set(True)
        else:
            first, carry = start["prevact"][:, None], {k: start[k] for k in ("deter", "stoch")}
        prevact = jnp.concatenate([first, act[:, :-1]], 1)
        return self.dyn.observe(carry, tokens, prevact, resets, key)

    def wm_loss(self, data, key, start=None):
        """Scaled world-model loss and per-step losses (paper eq. 4-5); aux['feat']
        is the replayed posterior feature [B, T, F] with its gradient (repval).
        start: the replay context's state (see observe)."""
        carry, outs = self.observe(data, key, start)
        feat = self.dyn.feat(outs)
        dyn, rep = self.dyn.kl_loss(outs)
        # Reconstruction losses per observation key ('image', ...) as the official
        # logs them, each scaled by loss_scales.rec.
        recs = {key: dist.loss(data[key]) for key, dist in self.dec(feat, 2).items()}
        per_step = {
            "dyn": dyn,
            "rep": rep,
            **recs,
            "rew": self.rew(feat).loss(data["reward"]),
            "con": self.con(feat).loss(losses.con_target(data["is_terminal"], self.con_discount)),
        }
        scale = lambda k: self.scales["rec"] if k in recs else self.scales[k]
        total = sum(scale(k) * v.mean() for k, v in per_step.items())
        mixed = lambda logits: jnp.exp(losses.unimix_logits(logits, self.dyn.unimix))
        mets = {
            "dyn_ent": metricslib.latent_entropy(sg(mixed(outs["prior"]))),
            "rep_ent": metricslib.latent_entropy(sg(mixed(outs["post"]))),
        }
        states = {"deter": outs["deter"], "stoch": outs["stoch"]}
        aux = {
            "losses": {k: v.mean() for k, v in per_step.items()},
            "metrics": mets,
            "states": sg(states),
            "carry": sg(carry),
            "feat": feat,
        }
        return total, aux

    # ---- imagination ----------------------------------------------------------------

    def imagine(self, starts, length, key):
        """Roll the prior under the actor from N start states; no gradients needed
        (REINFORCE actor, critic targets are constants)."""

        def policy(state, key):
            dist = self.pol(sg(self.dyn.feat(state)))
            return self.actfeat(dist.sample(key))

        states, actions = self.dyn.imagine(starts, policy, length, key)
        feat = self.dyn.feat(states)  # [N, H+1, F]
        return {
            "feat": sg(feat),
            "act": sg(actions),
            "rew": sg(self.rew(feat).mean()),
            "con": sg(self.con(feat).prob()),
            "val": sg(self.val(feat).mean()),
        }

    def value_mean(self, feat):
        return self.val(feat).mean()

    # ---- actor and critic -----------------------------------------------------------

    def ac_loss(self, traj, targets, data, imag_mask, mask_value):
        """Actor + critic on imagined steps, critic on replayed states (scaled)."""
        a = self.config.agent
        feat = traj["feat"][:, :-1]
        dist = self.pol(feat)
        index = self.actindex(traj["act"][:, :-1])
        logpi, ent = dist.logp(index), dist.entropy()
        vdist = self.val(feat)
        lossd, outs, mets = losses.imag_loss(
            logpi=logpi,
            ent=ent,
            val_logits=vdist.logits,
            ret=targets["ret"],
            val=traj["val"][:, :-1],
            slowval=targets["slowval"][:, :-1],
            weight=targets["weight"],
            scale=targets["scale"],
            actent=a.actent,
            slowreg=a.slowreg,
            imag_mask=imag_mask,
            mask_value=mask_value,
        )
        B, T = data["is_first"].shape
        vrep = self.val(targets["rep_feat"])
        repval, rmets = losses.repl_loss(
            vrep.logits,
            data["reward"].astype(f32),
            1.0 - data["is_terminal"].astype(f32),
            targets["ret"][:, 0].reshape((B, T)),
            targets["slowval"][:, 0].reshape((B, T)),
            data["is_last"],
            self.disc,
            a.return_lambda,
            a.slowreg,
        )
        lossd["repval"] = repval
        total = sum(self.scales[k] * v for k, v in lossd.items())
        return total, {"losses": lossd, "outs": outs, "metrics": {**mets, **rmets}}

    # ---- acting ---------------------------------------------------------------------

    def policy_step(self, carry, obs, key):
        """One env step: update the posterior with obs, sample an action."""
        obs = {k: v[:, None] for k, v in obs.items()}
        keep = 1.0 - obs["is_first"][:, 0].astype(f32)[:, None]
        tokens = self.enc(obs, bdims=2)
        state = {"deter": carry["deter"], "stoch": carry["stoch"]}
        prevact = (carry["prevact"] * keep)[:, None]
        key_obs, key_act = jax.random.split(key)
        state, _ = self.dyn.observe(state, tokens, prevact, obs["is_first"].astype(bool), key_obs)
        dist = self.pol(self.dyn.feat(state))
        action = dist.sample(key_act)
        return {**state, "prevact": self.actfeat(action)}, action

    # ---- open loop ------------------------------------------------------------------

    def openloop(self, data, context, key, start=None):
        """Posterior on the first `context` steps (from `start`, see observe), prior
        under the recorded actions after."""
        img = self.imgkeys[0]
        obs = {k: v[:, :context] for k, v in data.items()}
        key_obs, key_img = jax.random.split(key)
        carry, outs = self.observe(obs, key_obs, start)
        act = self.actfeat(data["action"])
        # The state at step t+1 follows from the action taken at step t.
        future = act[:, context - 1 : -1]
        imag = self.dyn.imagine_actions(carry, future, key_img)
        obs_img = self.dec(self.dyn.feat(outs), 2)[img].mode()
        imag_img = self.dec(self.dyn.feat(imag), 2)[img].mode()
        pred = jnp.concatenate([obs_img, imag_img], 1)
        to_uint8 = lambda x: jnp.clip(x * 255.0, 0, 255).astype(jnp.uint8)
        return {"truth": data[img], "pred": to_uint8(pred)}

    def touch(self, data, key):
        """Run every network once (for initialisation and parameter counting)."""
        _, aux = self.wm_loss(data, key)
        feat = self.dyn.feat(aux["states"])
        self.pol(feat)
        self.val(feat)
