"""The course's lesson, finished: its CNN and the landmark route on real photos neither has seen.

    real_photos(course_model, out, data_dir, holdout="hand3")

The course ends by predicting "new" pictures cut to look like Sign-MNIST. Real photos are another
matter: a pixel CNN trained on Sign-MNIST has seen one background and a few hands at 28x28, so it reads
a real photo little better than chance. handsign's landmark route finds the hand with MediaPipe and
reads its shape. Here a landmark model is trained on the Massey photos of four people, and both
models then read one photo per letter of the fifth person, whom neither model has seen.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from handsign.images import preprocess as pp
from handsign.data.sources import KNOWN, resolve_data_dir
from handsign.errors import ImageError
from handsign.hands import landmarks
from handsign.train.config import make_config
from handsign.train.loop import train
from handsign.infer.predict import Predictor


WHY = ("The course's CNN learned Sign-MNIST's pixels: one plain background, a few people's hands, lit one way, "
       "28x28 gray. A real photo differs in all of these, so its pixels look like nothing the CNN has seen and "
       "it guesses. The landmark route first finds the hand and its 21 joints with MediaPipe (a hand model "
       "trained on many people and scenes), then reads the letter from the shape of the joints alone, turned, "
       "scaled and mirrored to one standard hand: background, lighting, skin and photo size no longer matter, "
       "and a model trained on four people's photos reads a fifth person's.")


def real_photos(course_model: Path, out: Path, data_dir, holdout: str = "hand3", epochs: int = 150,
                seed: int = 0, every: int = 1, log=print) -> dict | None:
    """{"rows": [...], "course_correct", "landmarks_correct", ...}, or None when the photos or the hands
    extra are missing (then `reason` says which)."""
    root = resolve_data_dir(data_dir) / KNOWN["asl_photos"].folder
    if not root.is_dir():
        return {"skipped": f"needs the ASL photos in {root} (see `handsign data`)"}
    if not landmarks.available():
        return {"skipped": f"needs hand landmarks: {landmarks.INSTALL_HINT}"}
    run = out / "runs" / "hands-asl"
    train(make_config("hands-asl", photos=str(root), holdout=holdout, epochs=epochs, seed=seed, every=every,
                      lopo=False, out=str(run)), log=lambda *a: None, show_progress=False)
    course = Predictor.load(course_model, backend="torch")
    hands = Predictor.load(run, backend="torch")
    shown = out / "deploy" / "real"
    shown.mkdir(parents=True, exist_ok=True)
    rows = []
    for letter in hands.labels:
        files = sorted((root / letter).glob(f"{holdout}_*"))
        if not files:
            continue
        path = files[len(files) // 2]  # one photo per letter, the same every run
        img = pp.decode_image(path)
        by_course = course.predict_image(img, top_k=1)
        try:
            by_hands = hands.predict_image(img, top_k=1, name=str(path))
        except ImageError:  # no hand found: a landmark-only model has no answer
            by_hands = None
        pic = img.convert("RGB")
        if by_hands is not None:
            pic = landmarks.draw_skeleton(pic, by_hands["landmarks"])
        pic.thumbnail((160, 160), Image.Resampling.LANCZOS)
        name = shown / f"{letter}.jpg"
        pic.save(name, quality=88)
        rows.append({"letter": letter, "file": path.name, "image": name.relative_to(out).as_posix(),
                     "course": by_course["label"], "course_probability": by_course["probability"],
                     "landmarks": by_hands["label"] if by_hands else "no hand found",
                     "landmarks_probability": by_hands["probability"] if by_hands else None})
    course_ok = sum(r["course"] == r["letter"] for r in rows)
    hands_ok = sum(r["landmarks"] == r["letter"] for r in rows)
    log(f"   real photos of {holdout} (never trained on): course CNN {course_ok}/{len(rows)}, "
        f"landmark route {hands_ok}/{len(rows)}")
    return {"holdout": holdout, "photos": str(root), "rows": rows, "n": len(rows), "course_correct": course_ok,
            "landmarks_correct": hands_ok, "why": WHY,
            "landmark_model": run.relative_to(out).as_posix()}
