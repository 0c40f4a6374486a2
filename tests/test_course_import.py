"""import-course-model: the course's torch.save(model) files are read without running their pickle."""

import os
import pickle
import sys

import pytest
import torch
from torch import nn

from handsign.saved.checkpoint import load_model
from handsign.cli import main


class MyConvBlock(nn.Module):
    """The course's block, as its notebook defined it (so it is pickled as __main__.MyConvBlock)."""

    def __init__(self, in_ch, out_ch, dropout_p):
        super().__init__()
        self.model = nn.Sequential(nn.Conv2d(in_ch, out_ch, 3, stride=1, padding=1), nn.BatchNorm2d(out_ch),
                                   nn.ReLU(), nn.Dropout(dropout_p), nn.MaxPool2d(2, stride=2))

    def forward(self, x):
        return self.model(x)


def _randomise_bn(model):
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
    return model.eval()


def course_cnn():
    return _randomise_bn(nn.Sequential(MyConvBlock(1, 25, 0), MyConvBlock(25, 50, 0.2), MyConvBlock(50, 75, 0),
                                       nn.Flatten(), nn.Linear(75 * 3 * 3, 512), nn.Dropout(0.3), nn.ReLU(),
                                       nn.Linear(512, 24)))


def course_flat_cnn():
    def block(i, o, p):
        return [nn.Conv2d(i, o, 3, stride=1, padding=1), nn.BatchNorm2d(o), nn.ReLU()] + \
            ([nn.Dropout(p)] if p else []) + [nn.MaxPool2d(2, stride=2)]
    return _randomise_bn(nn.Sequential(*block(1, 25, 0), *block(25, 50, 0.2), *block(50, 75, 0), nn.Flatten(),
                                       nn.Linear(675, 512), nn.Dropout(0.3), nn.ReLU(), nn.Linear(512, 24)))


def course_mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(),
                         nn.Linear(512, 10)).eval()


@pytest.fixture
def as_main(monkeypatch):
    """Make MyConvBlock look as if defined in a notebook: pickled as __main__.MyConvBlock."""
    monkeypatch.setattr(MyConvBlock, "__module__", "__main__")
    monkeypatch.setattr(sys.modules["__main__"], "MyConvBlock", MyConvBlock, raising=False)


@pytest.mark.parametrize("build, arch, labels", [(course_cnn, "cnn", 24), (course_flat_cnn, "cnn", 24),
                                                 (course_mlp, "mlp", 10)])
def test_import_gives_identical_logits(build, arch, labels, as_main, tmp_path, capsys):
    torch.manual_seed(0)
    course = build()
    torch.save(course, tmp_path / "model.pth")
    assert main(["import-course-model", str(tmp_path / "model.pth"), str(tmp_path / "course.safetensors")]) == 0
    assert "max |logit difference|" in capsys.readouterr().out
    loaded = load_model(tmp_path / "course.safetensors")
    assert loaded.meta.architecture["name"] == arch and len(loaded.labels) == labels
    assert loaded.preprocess["fit"] == ("pad" if labels == 24 else "digit")
    x = torch.rand(16, 1, 28, 28)
    with torch.inference_mode():
        assert torch.allclose(loaded.model(x), course(x), atol=1e-6, rtol=0)


class Evil:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class EvilEval:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return eval, (f"open({self.marker!r}, 'w').close()",)


def _hostile_files(tmp_path, marker):
    model = course_cnn()
    model._forward_hooks[0] = Evil(marker)  # hidden inside an otherwise genuine course model
    torch.save(model, tmp_path / "hooked.pth")
    torch.save(EvilEval(marker), tmp_path / "eval.pth")
    torch.save([nn.ReLU(), Evil(marker)], tmp_path / "proto4.pth", pickle_protocol=4)  # STACK_GLOBAL opcodes
    with open(tmp_path / "legacy.pth", "wb") as f:  # a plain pickle, not torch's zip format
        pickle.dump(Evil(marker), f, protocol=2)
    return ["hooked.pth", "eval.pth", "proto4.pth", "legacy.pth"]


def test_hostile_pickles_are_refused_and_nothing_runs(as_main, tmp_path, capsys):
    marker = tmp_path / "PWNED"
    for name in _hostile_files(tmp_path, marker):
        assert main(["import-course-model", str(tmp_path / name), str(tmp_path / "out.safetensors")]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"handsign: error: {tmp_path / name}: ") and len(err.splitlines()) == 1, err
        if name != "proto4.pth":  # protocol 4 (FRAME opcodes) is stopped earlier: "not a torch.save file..."
            assert "refused" in err and ("system" in err or "eval" in err), err
        assert not marker.exists()
    assert not (tmp_path / "out.safetensors").exists()


def test_other_files_are_one_line_errors(as_main, tmp_path, capsys):
    (tmp_path / "junk.pth").write_bytes(b"\x00junk")
    torch.save(course_cnn().state_dict(), tmp_path / "state.pth")
    torch.save(nn.Sequential(nn.Conv2d(1, 4, 5), nn.Flatten(), nn.Linear(4 * 24 * 24, 24)), tmp_path / "other.pth")
    for name, message in (("junk.pth", "not a torch.save file"), ("state.pth", "not the course's nn.Sequential"),
                          ("other.pth", "not 3x3"), ("missing.pth", "no such file")):
        assert main(["import-course-model", str(tmp_path / name), str(tmp_path / "o.safetensors")]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.splitlines()) == 1, err
