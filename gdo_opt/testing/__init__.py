"""Test and benchmark helpers shipped with the package: instance generators and an oracle."""
