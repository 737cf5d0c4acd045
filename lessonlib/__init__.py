"""lessonlib: the tested companion package of the CNN course.

Each concept lives in its own module (``profiles``, ``data``, ``training``,
``models_torch``, ``models_keras``, ``plotting``, ...).  Import the module you
need; heavy frameworks (torch, TensorFlow) are only imported by the modules
that use them.
"""

import os

# PyTorch and TensorFlow each start an OpenMP thread pool.  With the default
# "active" wait policy the two pools spin against each other and torch training
# becomes about 25 times slower once TensorFlow is loaded (measured on 2 cores).
# The setting only takes effect if it is made before torch is imported, which is
# why it lives here, in the first thing a lesson imports.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from lessonlib.profiles import Profile, profile, seed_everything  # noqa: E402

__all__ = ["Profile", "profile", "seed_everything"]
__version__ = "0.1.0"
