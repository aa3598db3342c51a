"""Knowledge of the objects a Canary owns, shared by the agent and the plugin, written against
`kubectl_canary.resources.ResourceClient` only (no agent imports):

- names.py       the generated objects' names and the limits they must keep (pure)
- selectors.py   which pods each generated Service selects; names the API server would refuse
- metadata.py    the marks that make an object a Canary's (label, ownerReference, annotations)
- hashes.py      the target's revision checksum; the hash of what the writer last wrote
- builders.py    primary Deployment, its config copies, Services, HPA copy (pure)
- writer.py      `ensure` (create or update, take over) and `release` (give back)
- primary.py     Initialise and Promote: the primary side's writes
- routes.py      the weights a routing object holds, as the agent and `status` read them (pure)
- routers/       one per provider: build, steer, read and finalize the routing object
- apex.py        the apex Service at the hand-back, and whether it serves the target yet
- handback.py    the hand-back used by the agent on deletion and `kubectl canary offboard`
- gitops.py      GitOps/Helm tracking metadata never copied onto generated objects
"""
