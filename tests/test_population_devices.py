"""A population's member axis sharded over several devices computes what it computes on one.

Four CPU devices (XLA's --xla_force_host_platform_device_count=4) in a child process, as
the device count is fixed when jax starts: one update and one policy step of a 4-member
mixed-arm population with --jax.train_devices [0] and with [0,1,2,3], from the same
states, batches and observations.
"""

import json
import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).parent.parent

CHILD = r"""
import json, sys
import jax, numpy as np
sys.path.insert(0, %(tests)r)
from conftest import load_config, make_batch, spaces
from dreamerv3 import learner

assert len(jax.devices()) == 4, jax.devices()
arms = [{}, {'agent.imag_adapt.enabled': True, 'agent.imag_adapt.warmup': 0,
             'agent.imag_adapt.abs_thresh': 0.0, 'agent.imag_adapt.rel_thresh': 0.5,
             'agent.imag_adapt.rel_max': 2.0}]
base = load_config('debug')
results = {}
for devices in ([0], [0, 1, 2, 3]):
  configs = [base.update({'seed': k, 'jax.train_devices': devices,
                          'jax.policy_devices': devices, **arms[k %% 2]}) for k in range(4)]
  pop = learner.Population(*spaces(), configs)
  shardings = {str(leaf.sharding.spec) for leaf in jax.tree.leaves(pop.state)}
  held = {len(leaf.sharding.device_set) for leaf in jax.tree.leaves(pop.state)}
  batches = [make_batch(base.batch_size, base.batch_length, seed=k, config=base) for k in range(4)]
  _, outs, metrics = pop.train_step(pop.init_train(base.batch_size), learner.stack(batches))
  obs = make_batch(3, 1, seed=9, config=base)
  obs = {k: v[:, 0] for k, v in obs.items()}
  _, act, _ = pop.policy(pop.init_policy(3), learner.stack([obs] * 4))
  with pop.on_host():
    saved = [pop.member(k).save() for k in range(4)]
  results[len(devices)] = dict(metrics=metrics, saved=saved, action=act['action'],
                               shardings=shardings, held=held)
one, four = results[1], results[4]
assert four['held'] == {4} and one['held'] == {1}, (one['held'], four['held'])
worst = 0.0
for key, value in one['metrics'].items():
  np.testing.assert_allclose(four['metrics'][key], value, rtol=1e-5, atol=1e-6, err_msg=key)
for k in range(4):
  for key, value in one['saved'][k].items():
    np.testing.assert_allclose(four['saved'][k][key], value, rtol=0, atol=1e-6, err_msg=key)
    worst = max(worst, float(np.max(np.abs(np.asarray(four['saved'][k][key], np.float64) - value), initial=0)))
np.testing.assert_array_equal(four['action'], one['action'])
print(json.dumps({'worst': worst, 'fired': one['metrics']['imag_adapt/active'].tolist()}))
"""


def test_four_devices_equal_one_device():
    env = dict(os.environ)
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4").strip()
    env["JAX_PLATFORMS"] = "cpu"
    code = CHILD % {"tests": str(ROOT / "tests")}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=600, cwd=ROOT, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["fired"] == [0.0, 1.0, 0.0, 1.0]  # both arms ran: the mask off and on
    assert report["worst"] <= 1e-6
