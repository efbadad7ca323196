"""Render-farm job descriptions for a shot: `facedouble farm openjd` (Open Job Description bundles).

openjd.py  the job template (extract -> merge in N chunks via `merge --shard i/N` -> concat + sign)
cli.py     `facedouble farm openjd SHOT ...`
"""
