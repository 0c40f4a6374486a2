"""The model registry: the course's MLP and CNN (with its reusable ConvBlock) and the landmark MLP.

    model = create_model("cnn", num_classes=24)      # an unknown name lists the valid ones

The names are handsign.models.nets', imported on first use (PEP 562), so that importing the torch-free
`handsign.models.kernels` (the run config reads its KERNELS) does not load torch.
"""

_NAMES = ("CNN", "MLP", "MODELS", "ConvBlock", "LandmarkMLP", "count_parameters", "create_model", "flops_per_image",
          "for_inference", "num_outputs", "set_kernels")


def __getattr__(name):
    if name in _NAMES:
        from handsign.models import nets

        return getattr(nets, name)
    raise AttributeError(f"module 'handsign.models' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_NAMES))
