"""The built-in demo checkpoint: its data, judge, training and evaluation."""
