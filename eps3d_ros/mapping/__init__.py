"""Scene memory: one persistent object map fused across windows, with stable ids (no ROS here).

    from eps3d_ros.mapping import MapConfig, ObjectMap
    m = ObjectMap(MapConfig(), map_frame="map")
    update = m.integrate(snapshot)     # per window: ids added / updated / merged / removed
    m.objects, m.query("red mug"), m.to_scene()     # map files: eps3d_ros.io.map_file (save_map, load_map)

The rules (association, fusion, forgetting, merging, bounds) are written out in
:mod:`eps3d_ros.mapping.object_map` and the modules it names.
"""

from .config import MapConfig
from .map_object import MapObject
from .object_map import ObjectMap
from .results import MapMatch, MapUpdate

__all__ = ["MapConfig", "MapObject", "MapMatch", "MapUpdate", "ObjectMap"]
