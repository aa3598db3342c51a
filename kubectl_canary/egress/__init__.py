"""Outbound calls to addresses tenants choose (metrics servers, webhooks): which are allowed
(`policy`), and one bounded HTTP exchange with an allowed address (`bounded`). Shared by the
agent and `kubectl canary doctor`, so both judge a URL the same way. docs/security.md says why
each rule exists."""
