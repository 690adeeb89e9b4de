"""Solver backends behind one interface (shipped as ``gdo_opt.solvers``)."""
