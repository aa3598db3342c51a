"""The in-cluster agent that runs canary releases."""
