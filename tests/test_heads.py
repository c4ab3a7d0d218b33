"""course_lib.heads: shapes, encode -> ideal output -> decode round trips, flips, hand-computed
losses, Lightning Pose's grid correction, and that every head learns."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from course_lib import heads, transforms
from course_lib.coco import FLIP_PAIRS, flip_index
from course_lib.heads import common
from course_lib.heads import fusion as F
from course_lib.heads import integral as I
from course_lib.heads import lightning as L
from course_lib.heads import simcc as S
from course_lib.models import ResNetBackbone

HM = (24, 32)  # (W, H) heatmap size of the round trips (input 96 x 128 at stride 4)
STRIDE = 4


def random_keypoints(n=8, k=17, size=HM, margin=3.0, seed=0):
    rng = np.random.default_rng(seed)
    w, h = size
    kp = np.stack([rng.uniform(margin, w - 1 - margin, (n, k)),
                   rng.uniform(margin, h - 1 - margin, (n, k))], axis=-1)
    vis = np.full((n, k), 2)
    vis[0, :3] = 0  # a few unlabelled keypoints
    vis[1, 5] = 1
    return kp, vis


def mirrored(kp_hm, vis, *, width=HM[0], stride=STRIDE):
    """The keypoints of the mirrored crop, through the course's image flip (input px)."""
    kp_in, vis_in = transforms.flip_keypoints(kp_hm * stride, vis, width * stride)
    return kp_in / stride, vis_in


def labelled(weights):
    return np.asarray(weights) > 0


# --- registry and shapes ----------------------------------------------------------------------


def test_registry_and_build_head():
    assert set(heads.HEADS) == {"fusion", "lightning", "simcc", "integral"}
    head = heads.build_head("simcc", 512, 17, (16, 16), split_ratio=3.0)
    assert isinstance(head, heads.SimCCHead) and isinstance(head, common.Head)
    assert head.mlp_head_x.out_features == 16 * 4 * 3
    with pytest.raises(ValueError, match="expected one of"):
        heads.build_head("dsnt", 512, 17, (16, 16))
    with pytest.raises(ValueError, match="unknown options"):
        heads.build_head("fusion", 512, 17, (16, 16), split_ratio=2)
    with pytest.raises(ValueError, match="term_weights"):
        heads.build_head("fusion", 512, 17, (16, 16), term_weights={"peek": 1.0})


def test_output_shapes_on_resnet18_features():
    features = torch.randn(2, 512, 2, 2)  # ResNet-18 on 64 x 64 crops
    out = heads.build_head("fusion", 512, 17, (16, 16), deconv_channels=32)(features)
    assert out.heatmaps.shape == (2, 17, 16, 16)
    assert out.offsets.shape == out.log_variances.shape == (2, 17, 2, 16, 16)
    out = heads.build_head("simcc", 512, 17, (16, 16), deconv_channels=32)(features)
    assert out.x.shape == (2, 17, 128) and out.y.shape == (2, 17, 128)
    out = heads.build_head("integral", 512, 17, (16, 16), deconv_channels=32)(features)
    assert out.coords.shape == (2, 17, 2) and out.heatmaps.shape == (2, 17, 16, 16)
    torch.testing.assert_close(out.heatmaps.sum(dim=(-2, -1)), torch.ones(2, 17))
    for factor, size in ((1, 32), (2, 16), (3, 8)):
        head = heads.build_head("lightning", 512, 17, (size, size), downsample_factor=factor)
        maps = head(features).heatmaps
        assert maps.shape == (2, 17, size, size) and head.stride == 2**factor
        torch.testing.assert_close(maps.sum(dim=(-2, -1)), torch.ones(2, 17))
        coords, scores = head.decode(head(features))
        assert coords.shape == (2, 17, 2) and scores.shape == (2, 17)


def test_head_network_puts_a_head_on_a_resnet():
    net = heads.HeadNetwork("integral", 18, 17, (24, 32), deconv_channels=16)
    out = net(torch.randn(1, 3, 128, 96))
    assert out.coords.shape == (1, 17, 2) and out.heatmaps.shape == (1, 17, 32, 24)
    names = set(net.state_dict())
    assert "backbone.layer4.1.bn2.running_var" in names and "head.deconv.final_layer.bias" in names
    with pytest.raises(ValueError, match="N, 3, H, W"):
        net(torch.randn(3, 128, 96))


def test_simcc_without_deconvolutions_reads_the_backbone_features():
    head = heads.build_head("simcc", 512, 17, (24, 32), num_deconv=0)  # MMPose's "wo-deconv"
    assert head.mlp_head_x.in_features == 3 * 4  # 96 x 128 input -> 3 x 4 features
    out = head(torch.randn(1, 512, 4, 3))
    assert out.x.shape == (1, 17, 192) and out.y.shape == (1, 17, 256)
    with pytest.raises(ValueError, match="does not match"):
        heads.build_head("simcc", 512, 17, (25, 32), num_deconv=0)


@pytest.mark.parametrize("factor", [1, 2, 3])
def test_lightning_upsampling_stack_is_lightning_poses(factor):
    head = heads.build_head("lightning", 512, 17, (8, 8), downsample_factor=factor)
    layers = list(head.upsampling_layers)
    assert isinstance(layers[0], torch.nn.PixelShuffle) and layers[0].upscale_factor == 2
    convs = layers[1:]
    assert len(convs) == 5 - factor - 1  # log2(32) - downsample_factor - 1
    assert all(isinstance(c, torch.nn.ConvTranspose2d) for c in convs)  # no BN, no ReLU
    assert convs[0].in_channels == 128 and convs[-1].out_channels == 17
    for conv in convs:
        assert (conv.kernel_size, conv.stride, conv.padding, conv.output_padding) == \
            ((3, 3), (2, 2), (1, 1), (1, 1))
        fan = (conv.in_channels + conv.out_channels) * 9
        bound = 0.01 * math.sqrt(6.0 / fan)  # Xavier-uniform, gain 0.01
        assert bound * 0.8 < conv.weight.abs().max() <= bound
        assert torch.all(conv.bias == 0)


# --- encode -> ideal output -> decode ---------------------------------------------------------


def test_fusion_round_trip_is_exact():
    kp, vis = random_keypoints()
    targets, weights = F.encode(kp, vis, heatmap_size=HM)
    coords, scores = F.decode(F.ideal_output(targets))
    ok = labelled(weights)
    np.testing.assert_allclose(coords.numpy()[ok], kp[ok], atol=1e-4)
    np.testing.assert_allclose(scores.numpy()[ok], 1.0)
    steps = F.decode_steps(F.ideal_output(targets))
    cell = np.floor(kp + 0.5)
    np.testing.assert_array_equal(steps["argmax"].numpy()[ok], cell[ok])
    np.testing.assert_allclose(steps["gaussian_fit"].numpy()[ok], cell[ok], atol=1e-5)
    kp, vis = random_keypoints(n=20, margin=-0.45, seed=3)  # up to the map's borders
    targets, weights = F.encode(kp, vis, heatmap_size=HM)
    ok = labelled(weights)
    np.testing.assert_allclose(F.decode(F.ideal_output(targets))[0].numpy()[ok], kp[ok],
                               atol=1e-4)


def test_fusion_offset_field_recovers_a_heatmap_one_cell_off():
    kp, vis = random_keypoints(n=2)
    targets, weights = F.encode(kp, vis, heatmap_size=HM)
    ideal = F.ideal_output(targets)
    ideal.heatmaps = torch.roll(ideal.heatmaps, shifts=1, dims=-1)  # the peak one cell right
    coords, _ = F.decode(ideal)
    ok = labelled(weights)
    np.testing.assert_allclose(coords.numpy()[ok], kp[ok], atol=1e-4)


@pytest.mark.parametrize("factor, floor", [(1, 0.12), (2, 0.005), (3, 0.002)])
def test_lightning_round_trip_within_its_floor(factor, floor):
    kp, vis = random_keypoints(n=3, margin=4.0)
    targets, weights = L.encode(kp, vis, heatmap_size=HM)
    ok = labelled(weights)
    np.testing.assert_allclose(targets["heatmaps"][ok].sum(axis=(-2, -1)), 1.0, rtol=1e-5)
    assert not targets["heatmaps"][~ok].any()
    coords, scores = L.decode(L.ideal_output(targets), downsample_factor=factor)
    err = coords.numpy()[ok] - kp[ok]
    assert np.abs(err).max() < floor  # the bias is tested on a uniform sweep, below
    assert np.all((scores.numpy()[ok] > 0.8) & (scores.numpy()[ok] <= 1.0 + 1e-6))


def test_lightning_occluded_keypoints_may_get_a_uniform_map():
    kp, vis = random_keypoints(n=2)
    targets, _ = L.encode(kp, vis, heatmap_size=HM, occluded="uniform")
    np.testing.assert_allclose(targets["heatmaps"][1, 5], 1.0 / (HM[0] * HM[1]))
    gaussian, _ = L.encode(kp, vis, heatmap_size=HM)
    assert gaussian["heatmaps"][1, 5].max() > 0.05


def test_simcc_round_trip_within_half_a_bin():
    kp, vis = random_keypoints()
    targets, weights = S.encode(kp, vis, heatmap_size=HM, stride=STRIDE, split_ratio=2.0)
    ok = labelled(weights)
    coords, scores = S.decode(S.ideal_output(targets), stride=STRIDE, split_ratio=2.0)
    floor = 0.5 / (2.0 * STRIDE)  # half a bin in heatmap px
    assert np.abs(coords.numpy()[ok] - kp[ok]).max() <= floor + 1e-6
    np.testing.assert_allclose(scores.numpy()[ok], 1.0, atol=1e-3)
    on_bins = np.round(kp * 8) / 8  # keypoints on bin centres come back exactly
    targets, _ = S.encode(on_bins, vis, heatmap_size=HM)
    coords, _ = S.decode(S.ideal_output(targets))
    np.testing.assert_allclose(coords.numpy()[ok], on_bins[ok], atol=1e-6)


def test_simcc_labels_are_mmposes_gaussians():
    kp = np.array([[[3.3, 30.0], [-9.0, 5.0]]])  # x = 26.4 bins -> centre 26; far outside
    targets, weights = S.encode(kp, np.array([[2, 2]]), heatmap_size=HM, sigma=6.0)
    assert targets["x"].shape == (1, 2, 192) and targets["y"].shape == (1, 2, 256)
    np.testing.assert_array_equal(weights, [[1.0, 0.0]])
    x = targets["x"][0, 0]
    assert int(np.argmax(x)) == 26
    assert x[26] == pytest.approx(1.0 / (6.0 * math.sqrt(2 * math.pi)), rel=1e-6)
    assert x[32] / x[26] == pytest.approx(math.exp(-0.5), rel=1e-6)  # one sigma away
    assert x.sum() == pytest.approx(1.0, abs=1e-4)
    assert not targets["x"][0, 1].any()


def test_integral_round_trip_and_its_soft_argmax():
    kp, vis = random_keypoints()
    targets, weights = I.encode(kp, vis, heatmap_size=HM)
    ok = labelled(weights)
    coords, scores = I.decode(I.ideal_output(targets, heatmap_size=HM))
    np.testing.assert_allclose(coords.numpy()[ok], kp[ok], atol=1e-5)
    assert np.all((scores.numpy()[ok] > 0.9) & (scores.numpy()[ok] <= 1.0 + 1e-6))
    kp, _ = random_keypoints(margin=5.0)
    xs, ys = torch.arange(HM[0]), torch.arange(HM[1])
    pts = torch.as_tensor(kp, dtype=torch.float32)
    dx2 = ((xs - pts[..., 0:1]) ** 2)[..., None, :]  # [N, K, 1, W]
    dy2 = ((ys - pts[..., 1:2]) ** 2)[..., :, None]  # [N, K, H, 1]
    out = I.soft_argmax(-(dx2 + dy2) / 2.0, beta=1.0)  # logits: the log of a sigma-1 Gaussian
    np.testing.assert_allclose(out.coords.numpy(), kp, atol=1e-4)


# --- Lightning Pose's grid correction ---------------------------------------------------------


def test_grid_correction_derived_for_every_factor():
    assert [L.grid_correction(d) for d in (1, 2, 3)] == [-0.5, -1.5, -3.5]
    assert [L.LIGHTNING_POSE_CORRECTIONS[d] for d in (1, 2)] == [-0.5, -1.5]


@pytest.mark.parametrize("factor", [1, 2, 3])
def test_grid_correction_has_zero_bias_on_exact_targets(factor):
    w, h = 20, 20
    ints = np.stack(np.meshgrid(np.arange(5, 15, 2), np.arange(6, 14, 2)), -1).reshape(1, -1, 2)
    targets, _ = L.encode(ints, np.full(ints.shape[:2], 2), heatmap_size=(w, h))
    coords, _ = L.decode(L.ideal_output(targets), downsample_factor=factor)
    np.testing.assert_allclose(coords.numpy()[0], ints[0], atol=1e-4)  # pixel centres: exact
    frac = np.linspace(0, 1, 8, endpoint=False)  # a uniform sweep inside a pixel
    sweep = np.stack(np.meshgrid(9 + frac, 8 + frac), -1).reshape(1, -1, 2)
    targets, _ = L.encode(sweep, np.full(sweep.shape[:2], 2), heatmap_size=(w, h))
    coords, _ = L.decode(L.ideal_output(targets), downsample_factor=factor)
    bias = (coords.numpy()[0] - sweep[0]).mean(axis=0)
    assert np.abs(bias).max() < 2e-3
    theirs, _ = L.decode(L.ideal_output(targets), downsample_factor=factor,
                         correction=L.LIGHTNING_POSE_CORRECTIONS[factor])
    their_bias = (theirs.numpy()[0] - sweep[0]).mean(axis=0)
    expected = 0.125 if factor == 3 else 0.0  # one input px = 1/8 heatmap px at factor 3
    np.testing.assert_allclose(their_bias, expected, atol=2e-3)


# --- flips ------------------------------------------------------------------------------------


def test_flip_heatmaps_is_the_courses_flip_back():
    from course_lib import decode

    maps = torch.rand(2, 17, 5, 6)
    np.testing.assert_array_equal(common.flip_heatmaps(maps).numpy(),
                                  decode.flip_back(maps.numpy()))
    np.testing.assert_array_equal(common.flip_heatmaps(maps, shift=False).numpy(),
                                  maps.numpy()[:, flip_index(), :, ::-1])


def test_flip_coordinates_is_exact():
    kp, vis = random_keypoints(n=2)
    back = common.flip_coordinates(torch.as_tensor(mirrored(kp, vis)[0]), width=HM[0],
                                   stride=STRIDE)
    np.testing.assert_allclose(back.numpy(), kp, atol=1e-9)


def test_fusion_flip_brings_keypoints_back_exactly():
    kp, vis = random_keypoints()
    kp_m, vis_m = mirrored(kp, vis)
    targets, weights = F.encode(kp, vis, heatmap_size=HM)
    targets_m, _ = F.encode(kp_m, vis_m, heatmap_size=HM)
    head = heads.build_head("fusion", 512, 17, HM, stride=STRIDE, deconv_channels=8)
    back = head.flip_back(F.ideal_output(targets_m), FLIP_PAIRS)
    ok = labelled(weights)
    np.testing.assert_allclose(F.decode(back)[0].numpy()[ok], kp[ok], atol=1e-4)
    fused = head.fuse_flip(F.ideal_output(targets), F.ideal_output(targets_m))
    np.testing.assert_allclose(F.decode(fused)[0].numpy()[ok], kp[ok], atol=1e-4)


def test_integral_flip_brings_keypoints_back_exactly():
    kp, vis = random_keypoints()
    kp_m, vis_m = mirrored(kp, vis)
    targets, weights = I.encode(kp, vis, heatmap_size=HM)
    targets_m, _ = I.encode(kp_m, vis_m, heatmap_size=HM)
    head = heads.build_head("integral", 512, 17, HM, stride=STRIDE, deconv_channels=8)
    fused = head.fuse_flip(I.ideal_output(targets, heatmap_size=HM),
                           I.ideal_output(targets_m, heatmap_size=HM))
    ok = labelled(weights)
    np.testing.assert_allclose(I.decode(fused)[0].numpy()[ok], kp[ok], atol=1e-5)


def test_simcc_flip_shifts_k_minus_one_bins():
    kp, vis = random_keypoints()
    kp_m, vis_m = mirrored(kp, vis)
    targets, weights = S.encode(kp, vis, heatmap_size=HM)
    targets_m, _ = S.encode(kp_m, vis_m, heatmap_size=HM)
    ideal, ideal_m = S.ideal_output(targets), S.ideal_output(targets_m)
    back = S.flip_back(ideal_m, FLIP_PAIRS, split_ratio=2.0)
    torch.testing.assert_close(back.x[..., :-1], ideal.x[..., :-1])  # last bin: edge value
    torch.testing.assert_close(back.y, ideal.y)
    ok = labelled(weights)
    np.testing.assert_array_equal(S.decode(back)[0].numpy()[ok], S.decode(ideal)[0].numpy()[ok])
    unshifted = torch.flip(ideal_m.x, dims=[-1])[:, flip_index()]  # MMPose's flip_vectors
    shift = unshifted.argmax(-1) - ideal.x.argmax(-1)
    assert torch.all(shift[torch.as_tensor(ok)] == 1)  # k - 1 bins right
    with pytest.raises(ValueError, match="integer"):
        S.flip_back(ideal_m, split_ratio=2.5)


def test_lightning_flip_lands_one_over_stride_right():
    kp, vis = random_keypoints(margin=6.0)
    kp_m, vis_m = mirrored(kp, vis)
    targets_m, weights = L.encode(kp_m, vis_m, heatmap_size=HM)
    expected, _ = L.encode(kp + [1.0 / STRIDE, 0.0], vis, heatmap_size=HM)
    back = L.flip_back(L.ideal_output(targets_m), FLIP_PAIRS)
    ok = labelled(weights)[..., None, None] & np.ones((1, 1) + HM[::-1], bool)
    ok[..., 0] = False  # column 0 keeps the mirrored edge (HRNet's shift)
    np.testing.assert_allclose(back.heatmaps.numpy()[ok], expected["heatmaps"][ok], atol=1e-6)
    targets, _ = L.encode(kp, vis, heatmap_size=HM)
    head = heads.build_head("lightning", 512, 17, HM)
    fused = head.fuse_flip(L.ideal_output(targets), L.ideal_output(targets_m))
    coords, _ = head.decode(fused)
    lab = labelled(weights)
    np.testing.assert_allclose(coords.numpy()[lab][:, 0], kp[lab][:, 0] + 0.5 / STRIDE, atol=0.01)


# --- losses on hand-computed cases ------------------------------------------------------------


def one_hot(x, y, size=5):
    m = torch.zeros(1, 1, size, size)
    m[0, 0, y, x] = 1.0
    return m


def fusion_case(heatmaps, target, kp=(2.3, 1.6), offsets=None, log_var=None):
    out = F.FusionOutput(heatmaps, torch.zeros(1, 1, 2, 5, 5) if offsets is None else offsets,
                         torch.zeros(1, 1, 2, 5, 5) if log_var is None else log_var)
    targets = {"heatmaps": target, "keypoints": torch.tensor([[list(kp)]])}
    return F.loss_terms(out, targets, torch.ones(1, 1))


def test_fusion_terms_on_hand_computed_cases():
    t = one_hot(2, 2)
    terms = fusion_case(torch.zeros(1, 1, 5, 5), t)
    assert terms["heatmap"].item() == pytest.approx(1 / 25)  # one pixel off by 1, of 25
    # offsets 0, targets u - p on the 3 x 3 window around (2, 2): dx 1.3, 0.3, -0.7 and
    # dy 0.6, -0.4, -1.4; SmoothL1 0.8, 0.045, 0.245 and 0.18, 0.08, 0.9 -> mean 6.75 / 18
    assert terms["offset"].item() == pytest.approx(0.375, abs=1e-6)
    assert terms["variance"].item() == pytest.approx(math.log(4.0) ** 2, rel=1e-6)
    h = one_hot(4, 1)
    h[0, 0, 0, 0] = -3.0  # negative values are not mass
    assert fusion_case(h, t)["peak"].item() == pytest.approx(math.sqrt(5.0), abs=1e-5)
    assert fusion_case(0.5 * t, t)["overlap"].item() == pytest.approx(0.2, abs=1e-5)
    four = torch.zeros(1, 1, 5, 5)
    four[0, 0, 1:3, 1:3] = 1.0
    assert fusion_case(four, t)["entropy"].item() == pytest.approx(math.log(4.0), abs=1e-5)
    lv = torch.full((1, 1, 2, 5, 5), math.log(4.0))
    assert fusion_case(t, t, log_var=lv)["variance"].item() == pytest.approx(0.0, abs=1e-9)


def test_fusion_loss_is_the_weighted_sum_and_ideal_output_costs_nothing():
    kp, vis = random_keypoints(n=3)
    targets, weights = F.encode(kp, vis, heatmap_size=HM)
    ideal = F.ideal_output(targets)
    terms = F.loss_terms(ideal, targets, weights)
    assert set(terms) == set(F.TERM_WEIGHTS)
    assert all(v.item() < 2e-6 for v in terms.values())
    noisy = F.FusionOutput(ideal.heatmaps + 0.1 * torch.rand_like(ideal.heatmaps),
                           ideal.offsets + 0.2, ideal.log_variances - 0.5)
    terms = F.loss_terms(noisy, targets, weights)
    assert all(v.item() > 1e-4 for v in terms.values())
    total = sum(F.TERM_WEIGHTS[k] * v for k, v in terms.items())
    torch.testing.assert_close(F.loss(noisy, targets, weights), total)
    only_peak = F.loss(noisy, targets, weights, term_weights={k: 0.0 for k in terms} | {"peak": 2})
    torch.testing.assert_close(only_peak, 2 * terms["peak"])
    assert F.TERM_WEIGHTS == {"heatmap": 1.0, "offset": 1.0, "peak": 0.5, "variance": 0.1,
                              "overlap": 0.05, "entropy": 0.05}


def test_lightning_loss_hand_computed():
    pred = torch.full((1, 2, 2, 2), 0.25)
    target = torch.zeros(1, 2, 2, 2)
    target[0, 0, 0, 0] = 1.0
    loss = L.loss(L.LightningOutput(pred), {"heatmaps": target}, torch.tensor([[1.0, 0.0]]))
    assert loss.item() == pytest.approx(0.75**2 + 3 * 0.25**2)  # sum over the map: 0.75


def test_simcc_kl_loss_hand_computed_and_summed_over_the_batch():
    out = S.SimCCOutput(torch.zeros(1, 1, 4), torch.zeros(1, 1, 4))  # softmax: 1/4 per bin
    targets = {"x": torch.tensor([[[0.5, 0.5, 0.0, 0.0]]]), "y": torch.tensor([[[0, 0, 1.0, 0]]])}
    loss = S.loss(out, targets, torch.ones(1, 1))
    assert loss.item() == pytest.approx((math.log(2) + math.log(4)) / 4)  # mean over 4 bins
    double = S.loss(S.SimCCOutput(out.x.repeat(2, 1, 1), out.y.repeat(2, 1, 1)),
                    {k: v.repeat(2, 1, 1) for k, v in targets.items()}, torch.ones(2, 1))
    assert double.item() == pytest.approx(2 * loss.item())  # MMPose divides by K only
    assert S.loss(out, targets, torch.zeros(1, 1)).item() == 0.0


def test_integral_loss_hand_computed_with_the_js_regulariser():
    kp = torch.tensor([[[2.0, 3.0]]])
    maps = one_hot(0, 0, size=6)
    out = I.IntegralOutput(kp + torch.tensor([1.0, -2.0]), maps)
    targets = {"keypoints": kp}
    assert I.loss(out, targets, torch.ones(1, 1)).item() == pytest.approx(1.5)  # (1 + 2) / 2
    with_js = I.loss(out, targets, torch.ones(1, 1), js_weight=1.0, js_sigma=0.05)
    assert with_js.item() == pytest.approx(1.5 + math.log(2.0), abs=1e-5)  # disjoint maps
    same = I.js_divergence(maps, maps)
    assert same.abs().max().item() < 1e-6


# --- learning ---------------------------------------------------------------------------------


def blob_batch(n=4, k=17, size=64, seed=0):
    """Crops of noise with a bright square at each keypoint (heatmap px at stride 4)."""
    rng = np.random.default_rng(seed)
    kp = rng.uniform(2, size // 4 - 3, (n, k, 2))
    img = rng.normal(0, 0.1, (n, 3, size, size)).astype(np.float32)
    for i in range(n):
        for j, (x, y) in enumerate(np.round(kp[i] * 4).astype(int)):
            img[i, j % 3, y - 2:y + 2, x - 2:x + 2] += 1.0 + j / k
    vis = np.full((n, k), 2)
    vis[1, 0] = 0
    return torch.from_numpy(img), kp, vis


@pytest.fixture(scope="module")
def features():
    torch.manual_seed(0)
    images, kp, vis = blob_batch()
    with torch.no_grad():
        feats = ResNetBackbone(18).eval()(images)
    return feats, kp, vis


LEARNING_RATES = {"fusion": 1e-3, "lightning": 1e-2, "simcc": 3e-3, "integral": 3e-3}


@pytest.mark.parametrize("name", sorted(heads.HEADS))
def test_each_head_learns(name, features):
    """20 Adam steps of the head on the (fixed) ResNet-18 features of a fixed 64 x 64 batch."""
    feats, kp, vis = features
    torch.manual_seed(0)
    options = {} if name == "lightning" else {"deconv_channels": 64}
    head = heads.build_head(name, 512, 17, (16, 16), **options)
    targets, weights = head.encode(kp, vis)
    opt = torch.optim.Adam(head.parameters(), lr=LEARNING_RATES[name])
    losses = []
    for _ in range(20):
        loss = head.loss(head(feats), targets, weights)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < 0.9 * losses[0], losses


@pytest.mark.parametrize("name", sorted(heads.HEADS))
def test_each_head_trains_the_backbone_through_its_loss(name):
    torch.manual_seed(0)
    images, kp, vis = blob_batch(n=2)
    backbone = ResNetBackbone(18)
    head = heads.build_head(name, 512, 17, (16, 16), **({} if name == "lightning" else
                                                        {"deconv_channels": 16}))
    targets, weights = head.encode(kp, vis)
    head.loss(head(backbone(images)), targets, weights).backward()
    grad = backbone.conv1.weight.grad
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0
