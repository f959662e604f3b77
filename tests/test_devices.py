"""The trainer on several devices: four CPU devices from XLA's
--xla_force_host_platform_device_count=4, in one child process (the device count is fixed
when jax starts), which the tests below share.

- A solo agent's update with its batch sharded over two devices (data parallel) trains.
- A population's member axis sharded over four devices computes what it computes on one:
  one update and one policy step of a 4-member mixed-arm population with
  --jax.train_devices [0] and with [0,1,2,3], from the same states, batches and
  observations.
"""

import json
import math
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).parent.parent

CHILD = r"""
import json, sys
import jax, numpy as np
sys.path.insert(0, %(tests)r)
from conftest import load_config, make_batch, spaces
from dreamerv3 import learner
from dreamerv3.agent import Agent

assert len(jax.devices()) == 4, jax.devices()
base = load_config('debug')
report = {}

# Solo, data parallel: the batch sharded over two devices, the policy on one.
config = base.update({'jax.train_devices': [0, 1], 'jax.policy_devices': [0]})
agent = Agent(*spaces(), config)
batch = make_batch(config.batch_size, config.batch_length, config=config)
_, _, metrics = agent.train(agent.init_train(config.batch_size), batch)
agent.policy(agent.init_policy(1), {k: v[:1, 0] for k, v in batch.items()})
report['solo_losses'] = {k: v for k, v in metrics.items() if k.startswith('loss/')}

# A population on one device and on four.
arms = [{}, {'agent.imag_adapt.enabled': True, 'agent.imag_adapt.warmup': 0,
             'agent.imag_adapt.abs_thresh': 0.0, 'agent.imag_adapt.rel_thresh': 0.5,
             'agent.imag_adapt.rel_max': 2.0}]
results = {}
for devices in ([0], [0, 1, 2, 3]):
  configs = [base.update({'seed': k, 'jax.train_devices': devices,
                          'jax.policy_devices': devices, **arms[k %% 2]}) for k in range(4)]
  pop = learner.Population(*spaces(), configs)
  held = {len(leaf.sharding.device_set) for leaf in jax.tree.leaves(pop.state)}
  batches = [make_batch(base.batch_size, base.batch_length, seed=k, config=base) for k in range(4)]
  _, outs, metrics = pop.train_step(pop.init_train(base.batch_size), learner.stack(batches))
  obs = make_batch(3, 1, seed=9, config=base)
  obs = {k: v[:, 0] for k, v in obs.items()}
  _, act, _ = pop.policy(pop.init_policy(3), learner.stack([obs] * 4))
  with pop.on_host():
    saved = [pop.member(k).save() for k in range(4)]
  results[len(devices)] = dict(metrics=metrics, saved=saved, action=act['action'], held=held)
one, four = results[1], results[4]
report['devices_holding_a_leaf'] = [sorted(one['held']), sorted(four['held'])]
# |four - one| / (atol + rtol |one|) with atol 1e-6, rtol 1e-5: <= 1 is within tolerance
report['metric_err'] = max(
    float(np.max(np.abs(four['metrics'][k] - v) / (1e-6 + 1e-5 * np.abs(v))))
    for k, v in one['metrics'].items())
report['param_abs'] = max(
    float(np.max(np.abs(np.asarray(four['saved'][m][k], np.float64) - v), initial=0.0))
    for m in range(4) for k, v in one['saved'][m].items())
report['actions_equal'] = bool(np.array_equal(four['action'], one['action']))
report['fired'] = one['metrics']['imag_adapt/active'].tolist()
print(json.dumps(report))
"""


@pytest.fixture(scope="module")
def four_devices():
    env = dict(os.environ)
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4").strip()
    env["JAX_PLATFORMS"] = "cpu"
    code = CHILD % {"tests": str(ROOT / "tests")}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=600, cwd=ROOT, env=env
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_solo_update_with_the_batch_on_two_devices(four_devices):
    losses = four_devices["solo_losses"]
    assert losses and all(math.isfinite(v) for v in losses.values()), losses


def test_population_on_four_devices_equals_one_device(four_devices):
    report = four_devices
    assert report["devices_holding_a_leaf"] == [[1], [4]]  # really spread over four
    assert report["fired"] == [0.0, 1.0, 0.0, 1.0]  # both arms ran: the mask off and on
    assert report["param_abs"] <= 1e-6 and report["metric_err"] <= 1, report
    assert report["actions_equal"]
