"""Checks for the classroom exercises: say what is right, what is wrong and by how much.

Every exercise in notebooks 01-09 is followed by a cell that calls one ``check_*`` function of
this package with the learner's answer (usually a function), e.g.
``from course_lib import checks; checks.check_oks(oks)``. The checks of each notebook live in
their own module (``nb01_coco`` for ``01_coco_keypoints.ipynb`` ... ``nb09_hrnet`` for
``09_hrnet_hrformer.ipynb``); all of them are imported here, so ``checks.<name>`` finds any.

A check compares the answer with ``course_lib``'s reference on a few fixed cases and reports
through :func:`report` (module ``reporting``): one ``[PASS]`` line, or a ``[FAIL]`` line and one
line per finding. Under ``COURSE_STRICT=1`` a failing check raises :class:`ExerciseError` (CI
runs the instructor notebooks that way); otherwise it only prints, so a student notebook still
runs top to bottom.

A check never passes vacuously: an unsolved stub (``raise NotImplementedError``) is reported
as "not implemented yet" and counts as a failure.
"""

from course_lib.checks.nb01_coco import (
    check_decode_keypoints,
    check_flip_keypoints,
    check_keypoint_box,
)
from course_lib.checks.nb02_heatmaps import check_argmax_error, check_gaussian_target
from course_lib.checks.nb03_topdown import check_box_to_center_scale, check_crop_matrix
from course_lib.checks.nb04_model import (
    check_deconv_output_size,
    check_head_parameters,
    check_make_head,
)
from course_lib.checks.nb05_training import check_masked_mse, check_warmup_lr
from course_lib.checks.nb06_decoding import check_dark_step, check_flip_back, check_quarter_decode
from course_lib.checks.nb07_cpp import (
    check_first_argmax,
    check_opencv_gaussian_kernel,
    check_taylor_step_cpp,
)
from course_lib.checks.nb08_oks import check_average_precision, check_match_image, check_oks
from course_lib.checks.nb09_hrnet import (
    check_conv_output_size,
    check_fuse_parameters,
    check_num_windows,
)
from course_lib.checks.nb10_heads import check_grid_correction, check_peak_term, check_simcc_label
from course_lib.checks.nb11_capstone import check_capstone
from course_lib.checks.reporting import ExerciseError, call, compare_arrays, report

__all__ = [
    "ExerciseError",
    "call",
    "compare_arrays",
    "report",
    # 01_coco_keypoints.ipynb
    "check_decode_keypoints",
    "check_keypoint_box",
    "check_flip_keypoints",
    # 02_gaussian_heatmaps.ipynb
    "check_gaussian_target",
    "check_argmax_error",
    # 03_topdown_data.ipynb
    "check_crop_matrix",
    "check_box_to_center_scale",
    # 04_resnet_deconv.ipynb
    "check_deconv_output_size",
    "check_head_parameters",
    "check_make_head",
    # 05_training_mse.ipynb
    "check_masked_mse",
    "check_warmup_lr",
    # 06_decoding_dark.ipynb
    "check_dark_step",
    "check_quarter_decode",
    "check_flip_back",
    # 07_dark_cpp.ipynb
    "check_opencv_gaussian_kernel",
    "check_first_argmax",
    "check_taylor_step_cpp",
    # 08_oks_evaluation.ipynb
    "check_oks",
    "check_match_image",
    "check_average_precision",
    # 09_hrnet_hrformer.ipynb
    "check_conv_output_size",
    "check_num_windows",
    "check_fuse_parameters",
    # 10_beyond_heatmaps.ipynb
    "check_grid_correction",
    "check_simcc_label",
    "check_peak_term",
    # 11_capstone.ipynb
    "check_capstone",
]
