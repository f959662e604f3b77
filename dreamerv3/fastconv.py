"""2-D convolution entry point for every conv layer of the model.

All encoder/decoder convolutions go through `conv2d`, so the way they are
computed (XLA's conv, or a faster formulation of the same math on CPU) is one
switch, `jax.conv_impl`, and never a change to the model.
"""

import jax


def conv2d(x, kernel, stride=1, impl='auto'):
  """NHWC input, HWIO kernel, 'SAME' padding; same result as lax's conv."""
  del impl  # only the XLA path exists so far
  return jax.lax.conv_general_dilated(
      x, kernel, (stride, stride), 'SAME',
      dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
