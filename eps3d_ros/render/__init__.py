"""Render 3D Gaussians into images: one functional entry point, a pure-PyTorch and a gsplat backend."""

from eps3d_ros.render.rasterize import DEFAULT_MAX_BYTES, RenderOutput, camera_batch_size, has_gsplat, render_gaussians

__all__ = ["RenderOutput", "render_gaussians", "has_gsplat", "camera_batch_size", "DEFAULT_MAX_BYTES"]
