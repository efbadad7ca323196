"""What every model of the project shares, below the stages that train or run one: checkpoints, precision.

The face swapper (train, merge) and the mask segmenter (mask) keep their model folders in one layout
(checkpoint) and pick their number format by one rule (precision).
"""
