"""Fixtures shared by tests and experiments, never imported by the pipeline: instance generators and an
oracle (solvers), synthetic pools and metrics, the OST toy task, the LLaVA-shaped published-format pool."""
