"""The device scripts' dry runs share one persistent compile cache per test process
(`dry_compile` in ops/device_common.sh keeps the one it is given), so a program one call
compiled is loaded from disk by the next. tests/conftest.py sets it for the whole suite;
this sets it when ops/tests runs alone."""

import atexit
import os
import shutil
import tempfile

if not os.environ.get("JAX_COMPILATION_CACHE_DIR"):
    _CACHE = tempfile.mkdtemp(prefix="dreamer-ops-xla-cache-")
    atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _CACHE
