"""Scale-out: the ('data', 'fsdp', 'tensor') mesh, logical-axis rules, shardings, multi-host runtime."""
from asl_motiongpt.parallel.mesh import AXES, describe, make_mesh, mesh_from_config
from asl_motiongpt.parallel.rules import DEFAULT_RULES, rules_from_config
from asl_motiongpt.parallel.runtime import init_runtime, is_main_process
from asl_motiongpt.parallel.sharding import batch_sharding, bytes_per_device, global_batch, logical_to_shardings

__all__ = ["AXES", "make_mesh", "mesh_from_config", "rules_from_config", "describe", "DEFAULT_RULES", "init_runtime", "is_main_process", "batch_sharding",
           "bytes_per_device", "global_batch", "logical_to_shardings"]
