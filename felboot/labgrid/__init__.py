"""labgrid support (the [labgrid] extra): the SunxiFELDevice resource and the FelbootDriver.

Load it from a labgrid environment file with::

    imports:
      - felboot.labgrid

which registers both classes with labgrid. ``import felboot`` never imports
labgrid; only this package does. See docs/labgrid.md.
"""

from __future__ import annotations

try:
    import labgrid  # noqa: F401 (checked here, so the error names the extra)
except ImportError as error:  # pragma: no cover - the tests skip without labgrid
    raise ImportError(
        f"felboot.labgrid needs labgrid: pip install 'felboot[labgrid]' ({error})"
    ) from error

from felboot.labgrid.driver import FelbootDriver
from felboot.labgrid.resource import SunxiFELDevice

__all__ = ["FelbootDriver", "SunxiFELDevice"]
