"""Original path: sgm.modules (re-exports GeneralConditioner as the original package does)."""
from sgm.modules.encoders.modules import GeneralConditioner  # noqa: F401
