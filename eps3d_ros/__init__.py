"""eps3d_ros: open-vocabulary 3D panoptic perception for ROS 2 robots (EPS3D).

Pure-Python core; only ``eps3d_ros.ros`` imports rclpy.
"""

__version__ = "0.1.0"
