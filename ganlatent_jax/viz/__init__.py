"""Pictures: traversal grids, sample grids, contact sheets → PNG."""
from ganlatent_jax.viz.grids import (compare_traversals, contact_sheet, image_grid, images_to_grid, sample_grid,
                                     save_png, to_display, traversal_grid, traversal_images)

__all__ = ["compare_traversals", "contact_sheet", "image_grid", "images_to_grid", "sample_grid", "save_png",
           "to_display", "traversal_grid", "traversal_images"]
