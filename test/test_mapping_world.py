"""The ray-cast mapping world itself (helpers/mapping_world.py): its windows are realistic snapshots."""

from __future__ import annotations

import numpy as np

from helpers.mapping_world import raycast, ring, table_world, window


def test_window_is_a_realistic_snapshot() -> None:
    w = table_world()
    snap = window(w, *ring((0.1, 0.0, 0.0), 1.5, 1.0, 3), stamp=1.0)
    s = snap.scene
    things = sorted(o.label for o in s.objects if o.is_thing)
    assert things == ["ball", "bowl", "box", "lamp", "mug", "mug"]
    assert "floor" in {o.label for o in s.objects if not o.is_thing}
    mugs = sorted((o for o in s.objects if o.label == "mug"), key=lambda o: o.centroid[0])
    # ray hits lie on the visible cap of each sphere: the centroid is off-centre towards the cameras, < radius
    assert np.linalg.norm(mugs[0].centroid - [0.0, 0.0, 0.08]) < 0.08
    assert snap.cameras.depth.shape == (3, 48, 64) and np.isfinite(snap.cameras.depth).mean() > 0.5
    # a hit point projects back to its pixel with its depth
    E, K = snap.cameras.extrinsics[0], snap.cameras.intrinsics[0]
    d, p, _, _ = raycast(w, E, K, 48, 64)
    pc = p[20, 30] @ E[:, :3].T + E[:, 3]
    assert abs(pc[2] - d[20, 30]) < 1e-6 and np.allclose((K @ pc)[:2] / pc[2], [30, 20])


def test_offset_moves_points_and_cameras_together() -> None:
    w = table_world()
    a = window(w, *ring((0.0, 0.0, 0.0), 1.5, 1.0, 2), stamp=1.0)
    b = window(w, *ring((0.0, 0.0, 0.0), 1.5, 1.0, 2), stamp=1.0, offset=(0.02, -0.01, 0.0))
    np.testing.assert_allclose(b.scene.means - a.scene.means, np.broadcast_to([0.02, -0.01, 0.0], a.scene.means.shape),
                               atol=1e-6)
    p = np.array([0.3, 0.2, 0.1])
    ca = a.cameras.extrinsics[0] @ np.append(p, 1)
    cb = b.cameras.extrinsics[0] @ np.append(p + [0.02, -0.01, 0.0], 1)
    np.testing.assert_allclose(ca, cb, atol=1e-12)
