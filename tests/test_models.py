import pytest
import torch

from handsign.errors import HandsignError
from handsign.models import MODELS, count_parameters, create_model, flops_per_image, for_inference


@pytest.mark.parametrize("name, classes, params", [("mlp", 10, 669_706), ("mlp", 24, 676_888), ("cnn", 24, 404_099)])
def test_course_parameter_counts(name, classes, params):
    assert count_parameters(create_model(name, classes)) == params


def example(name: str, n: int) -> torch.Tensor:
    """A batch the model reads: pictures (N, 1, 28, 28), or hand-landmark features (N, 102)."""
    return torch.rand(n, 102) if name == "landmark_mlp" else torch.rand(n, 1, 28, 28)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_returns_logits_of_the_right_shape(name):
    model = create_model(name, 24).eval()
    out = model(example(name, 5))
    assert out.shape == (5, 24) and out.dtype == torch.float32
    assert not torch.allclose(out.softmax(1).sum(1), out.sum(1))  # logits, not probabilities


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_can_overfit_a_tiny_batch(name):
    torch.manual_seed(0)
    model = create_model(name, 4)
    x, y = example(name, 8), torch.arange(8) % 4
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(60):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    assert (model(x).argmax(1) == y).all() and loss.item() < 0.1


def test_cnn_layout_matches_course_state_dict_keys():
    keys = list(create_model("cnn", 24).state_dict())
    assert keys[:2] == ["0.model.0.weight", "0.model.0.bias"] and "2.model.1.running_var" in keys
    assert keys[-4:] == ["4.weight", "4.bias", "7.weight", "7.bias"]  # Linear 675->512, Linear 512->24


def test_unknown_model_lists_valid_names():
    with pytest.raises(HandsignError, match="unknown model 'resnet'; choose from: mlp, cnn"):
        create_model("resnet", 10)


def test_flops():
    assert flops_per_image(create_model("mlp", 10)) == 2 * 669_706 - 2 * (512 + 512 + 10)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_for_inference_gives_the_same_logits_and_leaves_the_model_alone(name):
    torch.manual_seed(0)
    model = create_model(name, 24)
    with torch.no_grad():  # trained-looking BatchNorm statistics and affine terms, negative scales included
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(), m.running_var.uniform_(0.3, 3), m.weight.normal_(), m.bias.normal_()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fast = for_inference(model)
    x = example(name, 32)
    model.eval()
    with torch.no_grad():
        ref, got = model(x), fast(x)
    assert torch.allclose(got, ref, rtol=1e-4, atol=1e-4 * ref.abs().max().item())
    assert (got.argmax(1) == ref.argmax(1)).all()
    assert not fast.training
    after = model.state_dict()
    assert after.keys() == before.keys() and all(torch.equal(after[k], before[k]) for k in before)
    if name == "cnn":  # the copy has the BatchNorm folded away: not a checkpoint layout
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fast.modules())


def test_flip_average_is_mirror_invariant_in_eval_and_exports_to_onnx(tmp_path):
    import numpy as np

    from handsign.saved.checkpoint import save_checkpoint
    from handsign.infer.export import export
    from handsign.infer.onnx_runner import load_onnx
    from handsign.images.preprocess import default_spec

    torch.manual_seed(0)
    model = create_model("cnn", 24, flip_average=True)
    x = torch.rand(4, 1, 28, 28)
    model.train()
    assert not torch.allclose(model(x), model(x.flip(-1)))  # training: one view, as trained
    model.eval()
    assert torch.allclose(model(x), model(x.flip(-1)), atol=1e-5)
    plain = create_model("cnn", 24).eval()
    plain.load_state_dict(model.state_dict())  # same weights and keys: the flag is not a tensor
    assert torch.allclose(model(x), (plain(x) + plain(x.flip(-1))) / 2, atol=1e-5)
    ckpt = save_checkpoint(tmp_path / "flip.safetensors", model, {
        "architecture": {"name": "cnn", "args": {"flip_average": True}}, "labels": list("abcdefghiklmnopqrstuvwxy"),
        "task": "sign_mnist", "preprocess": default_spec("sign_mnist")})
    assert export(ckpt)["max_abs_diff"] < 1e-4
    _, run = load_onnx(ckpt.with_suffix(".onnx"))
    with torch.no_grad():
        expected = model(x).numpy()
    assert np.allclose(run(x.numpy()), expected, atol=1e-4)
    assert np.allclose(run(x.flip(-1).numpy()), expected, atol=1e-4)


def test_cnn_with_two_convs_per_block_adds_them_before_the_pool_and_keeps_the_course_keys_otherwise(tmp_path):
    from handsign.saved.checkpoint import load_model, save_checkpoint
    from handsign.infer.export import export
    from handsign.images.preprocess import default_spec

    torch.manual_seed(0)
    model = create_model("cnn", 24, channels=(8, 16, 24), hidden=32, convs=(2, 2, 1))
    keys = list(model.state_dict())
    assert keys[:2] == ["0.pre.0.weight", "0.pre.0.bias"] and "1.pre.1.running_var" in keys
    assert not any(k.startswith("2.pre.") for k in keys) and "2.model.0.weight" in keys
    plain = create_model("cnn", 24, channels=(8, 16, 24), hidden=32)
    # each extra conv: out x out x 3 x 3 weights + bias, and BatchNorm's scale and shift
    extra = sum(c * c * 9 + c + 2 * c for c in (8, 16))
    assert count_parameters(model) == count_parameters(plain) + extra
    x = torch.rand(6, 1, 28, 28)
    assert model.eval()(x).shape == (6, 24)
    with torch.no_grad():  # trained-looking statistics, so folding BatchNorm into each conv is really tested
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(), m.running_var.uniform_(0.3, 3), m.weight.normal_(), m.bias.normal_()
        ref, fast = model(x), for_inference(model)(x)
    assert torch.allclose(fast, ref, rtol=1e-4, atol=1e-4 * ref.abs().max().item())
    args = {"channels": [8, 16, 24], "hidden": 32, "convs": [2, 2, 1]}
    ckpt = save_checkpoint(tmp_path / "two.safetensors", model, {
        "architecture": {"name": "cnn", "args": args}, "labels": list("abcdefghiklmnopqrstuvwxy"),
        "task": "sign_mnist", "preprocess": default_spec("sign_mnist")})
    with torch.no_grad():
        assert torch.equal(load_model(ckpt).model(x), ref)  # rebuilt from the saved arguments
    assert export(ckpt)["max_abs_diff"] < 1e-4


@pytest.mark.parametrize("convs", [(2, 2), (0, 1, 1), (1.5, 1, 1)])
def test_cnn_rejects_a_convs_per_block_that_does_not_fit(convs):
    with pytest.raises(HandsignError, match="convs must be 3 whole numbers >= 1"):
        create_model("cnn", 24, convs=convs)
