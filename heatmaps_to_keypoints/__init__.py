"""``heatmaps_to_keypoints``: the import name of the package this course grew from.

That package decodes a batch of pose heatmaps into keypoints in C++. Its example runs unchanged
against the course's decoder::

    import torch
    import heatmaps_to_keypoints

    results = heatmaps_to_keypoints.decode_heatmaps(torch.randn(8, 17, 96, 72))
    kp = results[b][k]          # image b, keypoint k
    kp.x, kp.y, kp.score        # x, y normalised to [0, 1]

The input is a float32 ``[N, K, H, W]`` CPU tensor (or numpy array), contiguous. Decoding is
DARK with the rules of ``course_lib.decode``, in C++ (``course_lib.native``: the extension that
``pip install .`` builds ahead of time, or cppimport's build in a checkout) with the numpy
decoder as the fallback where no C++ module can be loaded; both give the same results.

This module only re-exports :func:`course_lib.heatmaps_to_keypoints.decode_heatmaps` and its
:class:`~course_lib.heatmaps_to_keypoints.Keypoint`: the normalisation (``x = x_hm / W``), the
input rules and the marker of a map without a keypoint (``x = y = -1``) are documented there.
Taught in ``07_dark_cpp.ipynb``.
"""

from course_lib.heatmaps_to_keypoints import Keypoint, decode_heatmaps

__all__ = ["Keypoint", "decode_heatmaps"]
