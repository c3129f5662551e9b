"""Poses: the PoseSequence type, skeleton layouts, the unified skeleton, `.pose` I/O."""
from asl_motiongpt.pose.pose_io import PoseFileError, read_pose, write_pose
from asl_motiongpt.pose.sequence import PoseSequence
from asl_motiongpt.pose.skeletons import SKELETON_NAMES, Skeleton, get as get_skeleton
from asl_motiongpt.pose.transform import (Normalization, denormalize, from_unified, normalize, resample,
                                          to_unified)

__all__ = ["PoseSequence", "Skeleton", "SKELETON_NAMES", "get_skeleton", "read_pose", "write_pose",
           "PoseFileError", "to_unified", "from_unified", "normalize", "denormalize", "Normalization", "resample"]
