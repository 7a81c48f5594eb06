"""Reading upstream checkpoint files safely, and converting them to our parameter trees (never running networks)."""
from ganlatent_jax.port.keys import CheckpointKeyError, StateDictReader, check_tree_shapes
from ganlatent_jax.port.torch_pickle import CheckpointError, UnsafeCheckpointError, flatten_state_dict, load_torch_file

__all__ = ["CheckpointError", "CheckpointKeyError", "StateDictReader", "UnsafeCheckpointError", "check_tree_shapes",
           "flatten_state_dict", "load_torch_file"]
