"""The exercise checks of notebooks 04 and 05: pass on the reference, fail on a stub and on
plausible wrong answers."""

from __future__ import annotations

import pytest
from torch import nn

from course_lib import checks


@pytest.fixture(autouse=True)
def not_strict(monkeypatch):
    monkeypatch.setenv("COURSE_STRICT", "0")


def stub(*args, **kwargs):
    raise NotImplementedError("Exercise")


# --- 04.1 transposed convolution output size ---------------------------------------------------

def deconv_output_size(size, kernel, stride, padding, output_padding=0):
    return (size - 1) * stride - 2 * padding + kernel + output_padding


def deconv_forgets_output_padding(size, kernel, stride, padding, output_padding=0):
    return (size - 1) * stride - 2 * padding + kernel


def conv_output_size(size, kernel, stride, padding, output_padding=0):
    return (size + 2 * padding - kernel) // stride + 1


def test_deconv_output_size(capsys):
    assert checks.check_deconv_output_size(deconv_output_size)
    assert not checks.check_deconv_output_size(stub)
    assert "not implemented" in capsys.readouterr().out
    assert not checks.check_deconv_output_size(deconv_forgets_output_padding)
    assert not checks.check_deconv_output_size(conv_output_size)
    assert "ordinary convolution" in capsys.readouterr().out


# --- 04.2 parameters of the head ---------------------------------------------------------------

def head_parameters(in_channels, num_keypoints):
    deconvs = in_channels * 256 * 16 + 2 * 256 * 256 * 16
    return deconvs + 3 * 2 * 256 + 256 * num_keypoints + num_keypoints


def head_parameters_with_deconv_bias(in_channels, num_keypoints):
    return head_parameters(in_channels, num_keypoints) + 3 * 256


def head_parameters_without_bn(in_channels, num_keypoints):
    return head_parameters(in_channels, num_keypoints) - 3 * 512


def test_head_parameters(capsys):
    assert checks.check_head_parameters(head_parameters)
    assert not checks.check_head_parameters(stub)
    assert not checks.check_head_parameters(head_parameters_with_deconv_bias)
    assert "no bias" in capsys.readouterr().out
    assert not checks.check_head_parameters(head_parameters_without_bn)


def test_checks_raise_under_strict(monkeypatch):
    monkeypatch.setenv("COURSE_STRICT", "1")
    with pytest.raises(checks.ExerciseError):
        checks.check_head_parameters(stub)


# --- 04.3 the head ----------------------------------------------------------------------------

def make_head(in_channels, num_keypoints):
    layers = []
    for i in range(3):
        layers += [nn.ConvTranspose2d(in_channels if i == 0 else 256, 256, 4, 2, 1, bias=False),
                   nn.BatchNorm2d(256), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers, nn.Conv2d(256, num_keypoints, 1))


def make_head_two_deconvs(in_channels, num_keypoints):
    layers = []
    for i in range(2):
        layers += [nn.ConvTranspose2d(in_channels if i == 0 else 256, 256, 4, 2, 1, bias=False),
                   nn.BatchNorm2d(256), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers, nn.Upsample(scale_factor=2), nn.Conv2d(256, num_keypoints, 1))


def test_make_head(capsys):
    assert checks.check_make_head(make_head)
    assert not checks.check_make_head(stub)
    assert not checks.check_make_head(make_head_two_deconvs)
    assert "2 ConvTranspose2d" in capsys.readouterr().out
    assert not checks.check_make_head(lambda c, k: "a head")


# --- 05.1 masked MSE -----------------------------------------------------------------------

def masked_mse(pred, target, weights):
    return (weights[:, :, None, None] * (pred - target) ** 2).mean()


def masked_mse_hrnet(pred, target, weights):
    return 0.5 * masked_mse(pred, target, weights)


def mse_without_weights(pred, target, weights):
    return ((pred - target) ** 2).mean()


def mean_over_visible_only(pred, target, weights):
    per_map = ((pred - target) ** 2).mean(dim=(2, 3))
    return (per_map * weights).sum() / weights.sum().clamp(min=1)


def test_masked_mse(capsys):
    assert checks.check_masked_mse(masked_mse)
    assert not checks.check_masked_mse(stub)
    assert not checks.check_masked_mse(masked_mse_hrnet)
    assert "0.5" in capsys.readouterr().out
    assert not checks.check_masked_mse(mse_without_weights)
    assert "weights are ignored" in capsys.readouterr().out
    assert not checks.check_masked_mse(mean_over_visible_only)


# --- 05.2 warm-up ------------------------------------------------------------------------

def warmup_lr(step, base_lr, warmup_steps):
    return base_lr * min(1.0, (step + 1) / warmup_steps)


def warmup_lr_from_zero(step, base_lr, warmup_steps):
    return base_lr * min(1.0, step / warmup_steps)


def test_warmup_lr(capsys):
    assert checks.check_warmup_lr(warmup_lr)
    assert not checks.check_warmup_lr(stub)
    assert not checks.check_warmup_lr(warmup_lr_from_zero)
    assert "count steps from 1" in capsys.readouterr().out
    assert not checks.check_warmup_lr(lambda step, base, warm: base)
