"""The napari plugin: dock widgets (one generic :class:`TaskWidget` per task spec) and the demo.

Importing this package imports Qt but not torch (torch comes with the first run or device list).
"""

from __future__ import annotations

import os

# torch's OpenMP threads spin while waiting unless told otherwise, which starves the GUI thread;
# this must be set before torch is first imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
