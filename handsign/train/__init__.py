"""Training: the typed run configs and the recipes (config), the one loop for every model family (loop), the run
folder it writes (run), the two families' data, model and steps (pixels, landmarks), the optimizer and schedule
(optim), several processes (distributed), the plain-words diagnosis (diagnosis), learning curves and picture grids
(plots, preview), and the machine a run uses: seed, device, threads, the progress line (machine).

    from handsign.train import train          # handsign.train.loop.train, imported when first used
"""


import pkgutil

_SUBMODULES = {m.name for m in pkgutil.iter_modules(__path__)}


def __getattr__(name):
    # lazy (PEP 562): `import handsign.train.config` (the CLI's flags) must not import torch. A submodule's
    # name is not looked up in the loop: `from handsign.train import distributed` then imports the submodule
    if name in _SUBMODULES or name.startswith("__"):
        raise AttributeError(f"module 'handsign.train' has no attribute {name!r}")
    from handsign.train import loop

    try:
        return getattr(loop, name)
    except AttributeError:
        raise AttributeError(f"module 'handsign.train' has no attribute {name!r}") from None
