"""Descriptor stage: one module per descriptor, a registry, the sharded runner."""
