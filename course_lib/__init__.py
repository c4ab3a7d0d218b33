"""course_lib: the tested helper library behind the Heatmaps to Keypoints notebooks.

One module per course step (see README.md). Nothing is imported eagerly: ``import course_lib``
is instant and needs neither torch nor a compiler; import the module you need, e.g.
``from course_lib import heatmaps``.
"""

__version__ = "0.1.0"
