"""Saved models: ModelMeta, the typed description of a saved model (meta), and safetensors checkpoints that
are written atomically and loaded without unpickling anything (checkpoint)."""
