"""fastreid-mmt: Mutual Mean-Teaching (ICLR 2020) as a fast-reid plugin.

Importing this package first applies the fast-reid compatibility shims (``compat``), then
registers the ``MMT`` and ``SourceBaseline`` meta-architectures in fast-reid's registry.
"""

from . import compat

compat.apply()

from .config import add_mmt_config  # noqa: E402
from .modeling import MMT, SourceBaseline  # noqa: E402

__version__ = "0.1.0"
__all__ = ["MMT", "SourceBaseline", "add_mmt_config", "compat"]
