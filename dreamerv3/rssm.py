"""The world model's dynamics: a recurrent state-space model (RSSM).

State: deter [B, D] (block-diagonal GRU-style recurrent state) and stoch
[B, S, C] (S categorical latents of C classes, one-hot samples with
straight-through gradients, 1% unimix). `observe` scans the posterior over a
replayed sequence; `imagine` scans the prior under a policy or given actions.
Shape letters: B batch, T time, H imagined steps, A action features.
"""

import jax
import jax.numpy as jnp
import ninjax as nj

from dreamerv3 import losses, nets

f32 = jnp.float32
sg = jax.lax.stop_gradient


class RSSM(nj.Module):
    deter: int = 8192
    hidden: int = 1024
    stoch: int = 32
    classes: int = 64
    blocks: int = 8
    dynlayers: int = 1
    unimix: float = 0.01
    imglayers: int = 2
    obslayers: int = 1
    free_nats: float = 1.0

    def __init__(self, act_dim):
        self.act_dim = act_dim

    def initial(self, B):
        return {"deter": jnp.zeros((B, self.deter), f32), "stoch": jnp.zeros((B, self.stoch, self.classes), f32)}

    def feat(self, state):
        """The model state feature used by every head: deter + flattened stoch."""
        stoch = state["stoch"].reshape((*state["stoch"].shape[:-2], -1))
        return jnp.concatenate([state["deter"], stoch], -1)

    # ---- one step -------------------------------------------------------------------

    def core(self, deter, stoch, action):
        """Block-diagonal GRU step: new deter from (deter, stoch, previous action).

        Each of the G blocks sees its own slice of deter and all of the embedded
        inputs, goes through `dynlayers` block layers of deter/G units (each with a
        norm), then maps to its reset / candidate / update gates (no norm).
        """
        B, G = deter.shape[0], self.blocks
        stoch = stoch.reshape((B, -1))
        action = action / jnp.maximum(1.0, jnp.abs(sg(action)))
        parts = []
        for i, x in enumerate([deter, stoch, action]):
            x = self.sub(f"in{i}", nets.Linear, units=self.hidden)(x)
            parts.append(jax.nn.silu(self.sub(f"innorm{i}", nets.RMSNorm)(x)))
        x = jnp.concatenate(parts, -1)  # [B, 3 hidden]
        blocks = deter.reshape((B, G, -1)).transpose((1, 0, 2))  # [G, B, deter/G]
        x = jnp.broadcast_to(x[None], (G, *x.shape))
        x = jnp.concatenate([blocks.astype(x.dtype), x], -1)  # per-block inputs
        for i in range(self.dynlayers):  # hidden block layers
            x = self.sub(f"dyn{i}", nets.BlockLinear, units=self.deter, blocks=G)(x)
            x = jax.nn.silu(self.sub(f"dynnorm{i}", nets.RMSNorm, blocks=True)(x))
        # The gates' pre-activations are not normalised (as the official `dyngru`).
        x = self.sub("gru", nets.BlockLinear, units=3 * self.deter, blocks=G)(x).astype(f32)
        reset, cand, update = jnp.split(x, 3, -1)  # each [G, B, deter/G]
        reset = jax.nn.sigmoid(reset)
        cand = jnp.tanh(reset * cand)
        update = jax.nn.sigmoid(update - 1.0)
        blocks = update * cand + (1 - update) * blocks
        return blocks.transpose((1, 0, 2)).reshape((B, -1))

    def prior_logits(self, deter):
        x = deter
        for i in range(self.imglayers):
            x = self.sub(f"img{i}", nets.Linear, units=self.hidden)(x)
            x = jax.nn.silu(self.sub(f"imgnorm{i}", nets.RMSNorm)(x))
        x = self.sub("imgout", nets.Linear, units=self.stoch * self.classes)(x)
        return x.astype(f32).reshape((*deter.shape[:-1], self.stoch, self.classes))

    def post_logits(self, deter, tok_proj, fan_in):
        """Posterior from deter and the (pre-projected) encoder token. The first layer
        is the official's one Linear on concat(deter, token), split in two matmuls;
        both parts are initialised by that layer's fan-in (deter + token size)."""
        x = self.sub("obs0", nets.Linear, units=self.hidden, fan_in=fan_in)(deter) + tok_proj
        x = jax.nn.silu(self.sub("obsnorm0", nets.RMSNorm)(x))
        for i in range(1, self.obslayers):
            x = self.sub(f"obs{i}", nets.Linear, units=self.hidden)(x)
            x = jax.nn.silu(self.sub(f"obsnorm{i}", nets.RMSNorm)(x))
        x = self.sub("obsout", nets.Linear, units=self.stoch * self.classes)(x)
        return x.astype(f32).reshape((deter.shape[0], self.stoch, self.classes))

    def sample(self, logits, seed):
        """One-hot sample of unimix(logits) with straight-through gradients."""
        logits = losses.unimix_logits(logits, self.unimix)
        index = jax.random.categorical(seed, logits, -1)
        onehot = jax.nn.one_hot(index, self.classes, dtype=f32)
        probs = jnp.exp(logits)
        return onehot + probs - sg(probs)

    # ---- sequences ------------------------------------------------------------------

    def observe(self, carry, tokens, prevact, resets, key):
        """Posterior scan. tokens [B, T, E], prevact [B, T, A], resets [B, T] bool.

        key: a typed PRNG key (randomness is passed explicitly, not via nj.seed).
        Returns (last carry, outs with deter, stoch, post [B, T, S, C], prior logits).
        Where `resets` is set, the state and the previous action start from zeros.
        """
        B, T = resets.shape
        # The posterior layer on concat(deter, token) is split in two matmuls: the
        # token's half runs batched over T outside the scan. One bias (obs0's).
        fan_in = self.deter + tokens.shape[-1]
        tok = self.sub("obstok", nets.Linear, units=self.hidden, bias=False, fan_in=fan_in)(tokens)
        swap = lambda x: jnp.swapaxes(x, 0, 1)

        def step(carry, inputs):
            tok_t, act_t, reset_t, seed_t = inputs
            keep = 1.0 - reset_t.astype(f32)[:, None]
            deter = carry["deter"] * keep
            stoch = carry["stoch"] * keep[:, :, None]
            deter = self.core(deter, stoch, act_t * keep)
            post = self.post_logits(deter, tok_t, fan_in)
            stoch = self.sample(post, seed_t)
            carry = {"deter": deter, "stoch": stoch}
            return carry, {"deter": deter, "stoch": stoch, "post": post}

        seeds = jax.random.split(key, T)
        carry, outs = nj.scan(step, carry, (swap(tok), swap(prevact), swap(resets), seeds))
        outs = {k: swap(v) for k, v in outs.items()}
        outs["prior"] = self.prior_logits(outs["deter"])  # batched over T
        return carry, outs

    def img_step(self, carry, action, seed):
        deter = self.core(carry["deter"], carry["stoch"], action)
        stoch = self.sample(self.prior_logits(deter), seed)
        return {"deter": deter, "stoch": stoch}

    def imagine(self, carry, policy, length, key):
        """Prior scan under `policy(carry, key) -> action features [B, A]`.

        Returns (states [B, H+1] incl. the start, actions [B, H+1] (the last one is
        sampled at the final state and unused by the dynamics)).
        """

        def step(carry, seed):
            seed_pol, seed_dyn = jax.random.split(seed)
            action = policy(carry, seed_pol)
            return self.img_step(carry, action, seed_dyn), (carry, action)

        key, last_key = jax.random.split(key)
        seeds = jax.random.split(key, length)
        last, (states, actions) = nj.scan(step, carry, seeds)
        last_action = policy(last, last_key)
        states = jax.tree.map(lambda xs, x: jnp.concatenate([xs, x[None]], 0), states, last)
        actions = jnp.concatenate([actions, last_action[None]], 0)
        swap = lambda x: jnp.swapaxes(x, 0, 1)
        return jax.tree.map(swap, states), swap(actions)

    def imagine_actions(self, carry, actions, key):
        """Prior scan under given action features [B, H, A] (open-loop prediction)."""

        def step(carry, inputs):
            action, seed = inputs
            carry = self.img_step(carry, action, seed)
            return carry, carry

        seeds = jax.random.split(key, actions.shape[1])
        _, states = nj.scan(step, carry, (jnp.swapaxes(actions, 0, 1), seeds))
        return jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), states)

    def kl_loss(self, outs):
        """Per-step dynamics and representation losses [B, T] (free nats applied)."""
        return losses.kl_losses(outs["post"], outs["prior"], self.free_nats, self.unimix)
