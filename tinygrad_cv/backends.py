"""`tc.backends.cudnn` flags (benchmark, deterministic, enabled), as torch's, so scripts
that set them run unchanged; tinygrad_cv has no cuDNN and reads none of them."""
from __future__ import annotations

import types

cudnn = types.SimpleNamespace(benchmark=False, deterministic=False, enabled=True,
                              allow_tf32=True, is_available=lambda: False)
