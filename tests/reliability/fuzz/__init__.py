"""Fuzz harnesses for facedouble's readers (tracker issue 16); see harness.py and runner.py."""
