"""What `handsign reproduce` tells the learner besides the numbers: the course's four lessons checked on
the run's own results, one terminal line per stage, and what to do next."""

from __future__ import annotations

from pathlib import Path


# what the full recipes measured (benchmarks/results/course-recipes.json, seed 0; fast-asl:
# fast-round5.json), said next to a lesson that a quick run does not show
FULL_SIZE = [
    "at full size (seed 0) train 99.99 % vs test 80.44 %: overfitting",
    "at full size (seed 0) 97.53 % vs 80.44 %",
    "at full size (seed 0) 98.51 % vs 97.53 % at the best epochs, but 97.23 % vs 97.50 % at the last ones: "
    "augmentation pays off over many epochs and is within seed noise of the plain CNN",
    "at full size fast-asl reaches 99.43-100.00 % (seeds 0-2; 0.68-0.81x the time of 3 course epochs) "
    "vs 97.53 % and 98.51 %",
]


def lessons(doc: dict) -> list[dict]:
    """The course's four lessons, checked on this run's numbers: holds True / False, or None (no data)."""
    by = {s["recipe"]: s for s in doc["stages"] + doc["fast"]["recipes"]}

    def test(recipe):
        s = by.get(recipe)
        return None if s is None or "needs_data" in s else s["accuracy"]["test"]

    mlp, cnn, aug, fast = (test(r) for r in ("course-asl-mlp", "course-asl-cnn", "course-asl-cnn-aug", "fast-asl"))
    mlp_stage = by.get("course-asl-mlp", {})
    checks = [
        ("The perceptron overfits the ASL letters (stage 2 is diagnosed as overfitting: train far above test)",
         None if mlp is None else mlp_stage["diagnosis"]["verdict"] == "overfitting",
         None if mlp is None else f"last epoch: train {mlp_stage['last']['train']:.2f} % vs test "
                                  f"{mlp_stage['last']['test']:.2f} %, {mlp_stage['diagnosis']['verdict']}"),
        ("The CNN beats the perceptron on the test file (stage 3 above stage 2)",
         None if None in (mlp, cnn) else cnn > mlp, None if None in (mlp, cnn) else f"{cnn:.2f} % vs {mlp:.2f} %"),
        ("Augmentation is no worse than the plain CNN on the test file (stage 4 at least stage 3)",
         None if None in (cnn, aug) else aug >= cnn, None if None in (cnn, aug) else f"{aug:.2f} % vs {cnn:.2f} %"),
        ("handsign's fast-asl recipe beats the course's CNNs (stages 3 and 4)",
         None if None in (cnn, aug, fast) else fast > max(cnn, aug),
         None if None in (cnn, aug, fast) else f"{fast:.2f} % vs {cnn:.2f} % and {aug:.2f} %"),
    ]
    out = []
    for (text, holds, numbers), full in zip(checks, FULL_SIZE):
        if holds is None:
            note = "not checked: a stage it needs had no data"
        elif holds:
            note = "shows in this run"
        else:
            note = "does NOT show in this run" + (f": quick mode trains on a subset for a few epochs; {full}"
                                                  if doc["quick"] else "")
        out.append({"lesson": text, "holds": holds, "numbers": numbers, "note": note})
    return out


def summary_line(number, n_total: int, s: dict) -> str:
    """One terminal line per stage; the diagnosis is of the last epoch, so are the numbers shown with it."""
    head = f"stage {number}/{n_total} {s['recipe']}:" if number else f"fast recipe {s['recipe']}:"
    if "needs_data" in s:
        return f"{head} skipped: needs data ({s['needs_data']['title']}, see above)"
    last, best = s["last"], s["accuracy"]
    line = (f"{head} epoch {last['epoch']}/{s['config']['epochs']} train {last['train']:.1f} % test "
            f"{last['test']:.1f} % -> {s['diagnosis']['verdict']} ({s['seconds']:.0f} s)")
    if s["best_epoch"] != last["epoch"]:
        line += f"; kept best epoch {s['best_epoch']} (test {best['test']:.1f} %)"
    return line


def deploy_line(n_total: int, dep: dict) -> str:
    model = f"bundled {dep['bundled']} model" if dep.get("bundled") else "stage-4 model"
    if dep["n_known"]:
        pictures = "digits drawn here" if dep["source"] == "made" else "Sign-MNIST test pictures"
        return (f"stage {n_total}/{n_total} deployment: {model} on {dep['n_images']} {pictures}, "
                f"{dep['n_correct']} of {dep['n_known']} right")
    return f"stage {n_total}/{n_total} deployment: {model} on {dep['n_images']} given pictures (truth unknown)"


def next_steps(doc: dict, out: Path) -> list[str]:
    if doc["needs_data"]:
        return ["handsign data                      # what is missing, where handsign looks, how to get it",
                "handsign data fetch                # download and verify it, then run this again",
                "handsign predict photo.jpg         # the bundled models work already (also: handsign serve)"]
    return [f"open {out / 'report.html'}",
            "handsign train --recipe fast-asl   # the full fast recipe (~1 min on 2 cores), then: handsign serve",
            "handsign reproduce --out report    # the course's recipes at full size (~15 min on 2 cores)"]
