"""`python3 -m kubectl_canary ...` runs the plugin, like `kubectl canary ...`."""

from kubectl_canary.cli.main import main

main()
