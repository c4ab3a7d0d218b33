"""The exercise checks of notebook 09: pass on the reference, fail on a stub and on plausible
wrong answers, naming the likely mistake."""

from __future__ import annotations

import math

import pytest

from course_lib import checks


@pytest.fixture(autouse=True)
def not_strict(monkeypatch):
    monkeypatch.setenv("COURSE_STRICT", "0")


def stub(*args, **kwargs):
    raise NotImplementedError("Exercise")


# --- 09.1 output size of a strided convolution -----------------------------------------------

def conv_output_size(size, kernel, stride, padding):
    return (size + 2 * padding - kernel) // stride + 1


def conv_output_size_float(size, kernel, stride, padding):
    return (size + 2 * padding - kernel) / stride + 1


def conv_output_size_no_padding(size, kernel, stride, padding):
    return (size - kernel) // stride + 1


def conv_output_size_halved(size, kernel, stride, padding):
    return size // stride


def deconv_output_size(size, kernel, stride, padding):
    return (size - 1) * stride - 2 * padding + kernel


# --- 09.2 windows of a padded map ------------------------------------------------------------

def num_windows(height, width, window):
    return math.ceil(height / window) * math.ceil(width / window)


def num_windows_floor(height, width, window):
    return (height // window) * (width // window)


def num_windows_by_area(height, width, window):
    return math.ceil(height * width / window ** 2)


def num_windows_always_padded(height, width, window):
    return (height // window + 1) * (width // window + 1)


def test_num_windows_accepts_another_correct_form(capsys):
    assert checks.check_num_windows(lambda h, w, s: -(-h // s) * -(-w // s))


# --- 09.3 parameters of the exchange unit ----------------------------------------------------

def fuse_parameters(channels):
    total = 0
    for i, ci in enumerate(channels):
        for j, cj in enumerate(channels):
            if j > i:
                total += cj * ci + 2 * ci
            elif j < i:
                total += (9 * cj * cj + 2 * cj) * (i - j - 1) + 9 * cj * ci + 2 * ci
    return total


def fuse_parameters_without_bn(channels):
    total = 0
    for i, ci in enumerate(channels):
        for j, cj in enumerate(channels):
            if j > i:
                total += cj * ci
            elif j < i:
                total += 9 * cj * cj * (i - j - 1) + 9 * cj * ci
    return total


def fuse_parameters_with_bias(channels):
    total = 0
    for i, ci in enumerate(channels):
        for j, cj in enumerate(channels):
            if j > i:
                total += cj * ci + ci + 2 * ci
            elif j < i:
                total += (9 * cj * cj + 3 * cj) * (i - j - 1) + 9 * cj * ci + 3 * ci
    return total


def fuse_parameters_one_step(channels):
    total = 0
    for i, ci in enumerate(channels):
        for j, cj in enumerate(channels):
            if j != i:
                total += (cj * ci if j > i else 9 * cj * ci) + 2 * ci
    return total


def fuse_parameters_channels_first(channels):
    total = 0
    for i, ci in enumerate(channels):
        for j, cj in enumerate(channels):
            if j > i:
                total += cj * ci + 2 * ci
            elif j < i:
                total += 9 * cj * ci + 2 * ci + (9 * ci * ci + 2 * ci) * (i - j - 1)
    return total


# --- every check: the solution passes, the stub fails, each mutant is named ----------------------

EXERCISES = {  # number: (check, solution, [(mutant, phrase its message must hold), ...])
    "09.1": (checks.check_conv_output_size, conv_output_size, [
        (conv_output_size_float, "round down"),
        (conv_output_size_no_padding, "padding is missing"),
        (conv_output_size_halved, "odd size"),
        (deconv_output_size, "transposed")]),
    "09.2": (checks.check_num_windows, num_windows, [
        (num_windows_floor, "round up"),
        (num_windows_by_area, "per axis"),
        (num_windows_always_padded, "needs no padding"),
        (lambda h, w, s: h * w, "tokens"),
        (lambda h, w, s: float(num_windows(h, w, s)), "")]),
    "09.3": (checks.check_fuse_parameters, fuse_parameters, [
        (fuse_parameters_without_bn, "scale and a shift"),
        (fuse_parameters_with_bias, "no bias"),
        (fuse_parameters_one_step, "k stride-2"),
        (fuse_parameters_channels_first, "intermediate steps")]),
}


@pytest.mark.parametrize("number", EXERCISES)
def test_the_check_passes_the_solution_and_fails_the_stub(number, capsys):
    check, solution, _ = EXERCISES[number]
    assert check(solution)
    assert f"[PASS] {number}" in capsys.readouterr().out
    assert not check(stub)
    assert "not implemented" in capsys.readouterr().out


@pytest.mark.parametrize("number, i", [(n, i) for n, (_, _, mutants) in EXERCISES.items()
                                       for i in range(len(mutants))])
def test_the_check_names_the_mistake(number, i, capsys):
    check, _, mutants = EXERCISES[number]
    mutant, phrase = mutants[i]
    assert not check(mutant)
    assert phrase in capsys.readouterr().out


def test_checks_raise_under_strict(monkeypatch):
    monkeypatch.setenv("COURSE_STRICT", "1")
    with pytest.raises(checks.ExerciseError):
        checks.check_num_windows(stub)
    with pytest.raises(checks.ExerciseError):
        checks.check_fuse_parameters(fuse_parameters_without_bn)
