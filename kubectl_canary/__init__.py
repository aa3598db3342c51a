"""kubectl-canary: a kubectl plugin and the library its in-cluster agent shares."""

__version__ = "0.1.0"
