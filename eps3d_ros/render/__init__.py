"""Render 3D Gaussians into images: one functional entry point, a pure-PyTorch and a gsplat backend."""

from eps3d_ros.render.rasterize import RenderOutput, has_gsplat, render_gaussians

__all__ = ["RenderOutput", "render_gaussians", "has_gsplat"]
