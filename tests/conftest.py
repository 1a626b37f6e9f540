"""Suite-wide settings: Hypothesis profiles.

``ci`` (selected when the CI variable is set, as on our CI) is derandomized
with fixed example counts and no deadline, so a run is reproducible and its
time is bounded; ``dev`` (the default) explores with fresh randomness and
keeps its example database. Per-test ``settings(max_examples=...)`` still win.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    max_examples=60,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None, max_examples=60)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev"))
