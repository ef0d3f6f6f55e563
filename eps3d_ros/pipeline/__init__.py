"""The perception pipeline between the ROS glue and the core: frames, keyframes, alignment, one inference worker."""
