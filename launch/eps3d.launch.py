"""Launch eps3d_node (and optionally rviz).

    ros2 launch eps3d_ros eps3d.launch.py model:=/path/to/eps3d namespace:=head_camera rviz:=true

Arguments: config_file (parameters YAML, default the package's config/eps3d.yaml), namespace,
model (a model folder; empty keeps the YAML's model.weights), use_depth (auto | true | false; empty keeps
the YAML's), rviz. Topics are relative
(rgb/image, rgb/camera_info, depth/image): remap them or use the namespace.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare


def _node(context):
    overrides = {}
    use_depth = LaunchConfiguration("use_depth").perform(context).strip().lower()
    if use_depth:  # auto | true | false; empty keeps the YAML's pipeline.use_depth
        overrides["pipeline.use_depth"] = use_depth
    model = LaunchConfiguration("model").perform(context)
    if model:
        overrides["model.weights"] = model
    return [
        Node(
            package="eps3d_ros",
            executable="eps3d_node",
            name="eps3d_node",
            namespace=LaunchConfiguration("namespace"),
            parameters=[LaunchConfiguration("config_file"), overrides],
            output="screen",
            emulate_tty=True,
        )
    ]


def generate_launch_description() -> LaunchDescription:
    share = FindPackageShare("eps3d_ros")
    return LaunchDescription([
        DeclareLaunchArgument("config_file", default_value=PathJoinSubstitution([share, "config", "eps3d.yaml"]),
                              description="parameters YAML (see config/eps3d.yaml)"),
        DeclareLaunchArgument("namespace", default_value="", description="namespace of the node and its topics"),
        DeclareLaunchArgument("model", default_value="", description="model folder (model.safetensors + config.json, "
                              "with its text encoder and bundle.json when it has them)"),
        DeclareLaunchArgument("use_depth", default_value="", description="auto (use depth/image when it arrives), true "
                              "(wait for it) or false; empty keeps the YAML's (auto)"),
        DeclareLaunchArgument("rviz", default_value="false", description="start rviz with the eps3d view"),
        OpaqueFunction(function=_node),
        Node(
            package="rviz2",
            executable="rviz2",
            arguments=["-d", PathJoinSubstitution([share, "rviz", "eps3d.rviz"])],
            condition=IfCondition(LaunchConfiguration("rviz")),
            output="screen",
        ),
    ])
