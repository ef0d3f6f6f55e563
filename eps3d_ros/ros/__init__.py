"""ROS 2 glue: the only package that imports rclpy. It converts messages and wires the pipeline."""
