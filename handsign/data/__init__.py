"""Data sets: where they live and how they are checked (sources), downloaded (fetch), read into tensors
(readers), and split for validation (splits; groups: near-copy groups for `--valid-split groups`)."""
