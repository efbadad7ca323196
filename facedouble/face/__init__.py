"""Face geometry shared by every stage: face types, the alignment template and transforms, mesh contours.

Below faceset, extract, mask, train, merge and trust: it imports nothing of theirs.
"""
