"""Names of our API the hot paths need, without importing the typed model.

`kubectl_canary.api.model` defines ~30 dataclasses, which takes longer to import than the whole
request `kubectl canary status -A` makes; the table and watch views only need these names.
A test keeps them equal to the model's.
"""

CANARY_API_VERSION = "kubectl-canary.dev/v1alpha1"
DEFAULT_THRESHOLD = 5  # AnalysisSpec.threshold: failed checks before rolling back
