"""The exercise checks of notebooks 04 and 05: pass on the reference, fail on a stub, and reject
plausible wrong answers ("mutants"); the 04 mutants each with a message that names the mistake."""

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


DECONV_MUTANTS = {
    "ordinary convolution": (conv_output_size, "ordinary convolution"),
    "no output_padding": (deconv_forgets_output_padding, "output_padding is missing"),
    "- padding": (lambda n, k, s, p, op=0: (n - 1) * s - p + k + op, "- 2 * padding"),
    "size * stride": (lambda n, k, s, p, op=0: n * s - 2 * p + k + op, "(size - 1) * stride"),
    "+ 2 * padding": (lambda n, k, s, p, op=0: (n - 1) * s + 2 * p + k + op, "shrinks"),
    "no kernel": (lambda n, k, s, p, op=0: (n - 1) * s - 2 * p + 1 + op, "+ kernel"),
    "always doubles": (lambda n, k, s, p, op=0: 2 * n, "general formula"),
}


@pytest.mark.parametrize("name", DECONV_MUTANTS)
def test_deconv_output_size_rejects_mutant(name, capsys):
    mutant, message = DECONV_MUTANTS[name]
    assert not checks.check_deconv_output_size(mutant)
    assert message in capsys.readouterr().out


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


def head_count(cin, k, *, kernel=4, deconvs=3, first_only=True, bias=False, bn=2, final=1,
               final_bias=True):
    ins = [cin] + [256 if first_only else cin] * (deconvs - 1)
    total = sum(c * 256 * kernel * kernel + (256 if bias else 0) for c in ins) + deconvs * bn * 256
    return total + (256 * k * final * final + (k if final_bias else 0) if final else 0)


HEAD_MUTANTS = {
    "deconv bias": (dict(bias=True), "no bias"),
    "no BatchNorm": (dict(bn=0), "a scale and a shift"),
    "running statistics counted": (dict(bn=4), "buffers"),
    "no final bias": (dict(final_bias=False), "has a bias"),
    "3x3 kernels": (dict(kernel=3), "4x4 kernels"),
    "every deconv from in_channels": (dict(first_only=False), "only the first"),
    "no final conv": (dict(final=0), "is missing"),
    "3x3 final conv": (dict(final=3), "not 3x3"),
    "two deconvs": (dict(deconvs=2), "three transposed"),
}


@pytest.mark.parametrize("name", HEAD_MUTANTS)
def test_head_parameters_rejects_mutant(name, capsys):
    options, message = HEAD_MUTANTS[name]
    assert checks.check_head_parameters(head_count)
    capsys.readouterr()
    assert not checks.check_head_parameters(lambda cin, k: head_count(cin, k, **options))
    assert message in capsys.readouterr().out


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


def head_variant(in_channels, num_keypoints, *, kernel=4, output_padding=0, bias=False,
                 relu=True, bn_after_relu=False, final_kernel=1, width=256):
    layers = []
    for i in range(3):
        conv = nn.ConvTranspose2d(in_channels if i == 0 else width, width, kernel, 2,
                                  (kernel - 2 + output_padding) // 2, output_padding, bias=bias)
        act = [nn.ReLU(inplace=True)] if relu else []
        pair = act + [nn.BatchNorm2d(width)] if bn_after_relu else [nn.BatchNorm2d(width)] + act
        layers += [conv, *pair]
    final = nn.Conv2d(width, num_keypoints, final_kernel, padding=final_kernel // 2)
    return nn.Sequential(*layers, final)


MAKE_HEAD_MUTANTS = {
    "two deconvs + upsample": (make_head_two_deconvs, "2 ConvTranspose2d"),
    "bias on the deconvs": (lambda c, k: head_variant(c, k, bias=True), "no bias"),
    "kernel 3, output_padding 1": (lambda c, k: head_variant(c, k, kernel=3, output_padding=1),
                                   "expected 4, 2, 1"),
    "no ReLU": (lambda c, k: head_variant(c, k, relu=False), "0 ReLU"),
    "ReLU before BN": (lambda c, k: head_variant(c, k, bn_after_relu=True), "in the order"),
    "3x3 final conv": (lambda c, k: head_variant(c, k, final_kernel=3), "expected 1x1"),
    "128 channels": (lambda c, k: head_variant(c, k, width=128), "expected 256"),
}


@pytest.mark.parametrize("name", MAKE_HEAD_MUTANTS)
def test_make_head_rejects_mutant(name, capsys):
    mutant, message = MAKE_HEAD_MUTANTS[name]
    assert checks.check_make_head(head_variant)
    capsys.readouterr()
    assert not checks.check_make_head(mutant)
    assert message in capsys.readouterr().out


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
