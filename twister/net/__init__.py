"""Network guards: which addresses twister may reach, and the egress proxy that enforces it."""
