"""Knowledge of the objects a Canary owns, shared by the agent and the plugin (pure functions of
plain dicts: no client, no I/O), so both read them the same way."""
